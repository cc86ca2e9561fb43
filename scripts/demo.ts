/**
 * `npm run demo`: the whole sync job on this machine in about a minute, for real.
 *
 * Starts the local services it needs (Cassandra, ElasticMQ), creates the schema, seeds a sample dataset
 * (deterministic upserts, so running it again changes nothing), starts the Sync API stand-in in process,
 * then runs a real (not dry) full resync of users and then of organisations through the real queue
 * chain: token-range scanners → the `sunbird-dataops-local-sync` ElasticMQ queue → paced workers →
 * Sync API. Prints each run's report from the ledger and leaves the original-format logs in out/demo/.
 *
 * Options: `--users 5000 --orgs 200 --block-size 100 --sleep-ms 20 --out out/demo`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary } from '#cli/report.ts';
import { LOCAL_QUEUES, localQueueUrl, SQS_ENDPOINT, SQS_REGION } from '#scripts/services/elasticmq.ts';
import { ensureServices } from '#scripts/services.ts';
import { startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import { createSqsClient } from '#shared/clients/sqs.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import { DEFAULT_KEYSPACES, migrate } from '#shared/schema.ts';
import { seed } from '#shared/seed/seed.ts';
import { Ledger, summarise } from '#shared/sync/ledger.ts';
import { runLocal } from '#shared/sync/local.ts';
import type { StartRunRequest } from '#shared/sync/run.ts';
import { TalendLogs } from '#shared/sync/talend-log.ts';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '5000' },
    orgs: { type: 'string', default: '200' },
    'block-size': { type: 'string', default: '100' },
    'sleep-ms': { type: 'string', default: '20' },
    out: { type: 'string', default: 'out/demo' },
  },
});

function whole(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`demo: --${name} expects a whole number ≥ ${min}, got "${v}"`);
    process.exit(2);
  }
  return n;
}

const users = whole('users', values.users, 1);
const orgs = whole('orgs', values.orgs, 1);
const blockSize = whole('block-size', values['block-size'], 1);
const sleepMs = whole('sleep-ms', values['sleep-ms'], 0);
const outDir = resolve(values.out!);
const { sunbird: keyspace, ops: opsKeyspace } = DEFAULT_KEYSPACES;
const syncQueue = LOCAL_QUEUES.find((q) => q.name.endsWith('-sync'))!.name;

const step = (msg: string) => console.log(`\n▸ ${msg}`);
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** Rows in a table, counted up to `cap` (enough to warn about a table far bigger than the sample). */
async function rowsUpTo(client: CassandraClient, table: string, cap: number): Promise<number> {
  const rs = await client.execute(`SELECT id FROM ${keyspace}.${table} LIMIT ?`, [cap], { fetchSize: cap });
  return rs.rowLength;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  step('services (Cassandra, ElasticMQ)');
  const services = await ensureServices(['cassandra', 'elasticmq'], {
    log: (line) => console.log(`  ${line}`),
  });
  console.log(`  ${services.map((s) => `${s.name}: ${s.state.replace('-', ' ')}`).join(', ')}`);

  const cassandra = createCassandraClient({
    hosts: ['127.0.0.1'],
    port: 9042,
    localDataCenter: 'datacenter1',
    coreConnectionsPerHost: 2,
  });
  const sqs = createSqsClient({ region: SQS_REGION, endpoint: SQS_ENDPOINT });
  const apiKey = `demo-${randomBytes(12).toString('hex')}`;
  const standin = await startSyncApiStandin({ port: 0, apiKey, maxRecorded: 100_000 });
  const syncApi = new SyncApiClient({ endpoint: `${standin.url}/v1/data/sync`, apiKey });
  try {
    step(`schema: keyspaces ${keyspace} and ${opsKeyspace}`);
    await migrate(cassandra, { only: ['sunbird', 'ops'] });

    step(`sample data: ${users.toLocaleString('en')} users, ${orgs} organisations (seed 42)`);
    let t = performance.now();
    await seed(cassandra, {
      users,
      orgs,
      courses: 0,
      courseUsers: 0,
      contentsPerCourse: 0,
      seed: 42,
      keyspace,
      coursesKeyspace: DEFAULT_KEYSPACES.courses,
    });
    console.log(`  upserted in ${seconds(t)}`);
    const cap = 10 * users + 1;
    if ((await rowsUpTo(cassandra, 'user', cap)) >= cap)
      console.log(`  note: ${keyspace}.user holds more than ${cap - 1} rows; the resync covers them all`);

    console.log(`  Sync API stand-in: ${standin.url}/v1/data/sync (Bearer key required)`);
    const ledger = new Ledger(cassandra, opsKeyspace);
    const queueUrl = localQueueUrl(syncQueue);
    for (const objectType of ['user', 'organisation'] as const) {
      step(`full resync of ${objectType === 'user' ? 'users' : 'organisations'} via ${syncQueue}`);
      const req: StartRunRequest = {
        job: 'sync',
        objectType,
        table: objectType,
        keyspace,
        dryRun: false,
        verify: false,
        blockSize,
        sleepMs,
        source: 'demo',
        plan: { minTasks: 8 },
      };
      const logDir = join(outDir, objectType);
      await mkdir(logDir, { recursive: true });
      const logs = await TalendLogs.open(logDir);
      const callsBefore = standin.requests().length;
      t = performance.now();
      let result: Awaited<ReturnType<typeof runLocal>>;
      try {
        result = await runLocal(
          req,
          { cassandra, ledger, syncApi, sqs: { client: sqs, url: queueUrl } },
          {
            onStarted: (run) => console.log(`  run ${run.runId}: ${run.tasks} token sub-ranges`),
            onCall: (_block, r, n) => logs.append(r.ok, n, r.requestBody, r.responseBody || r.error || ''),
            log: (m) => console.log(`  ${m}`),
          },
          { scanConcurrency: 4, workerConcurrency: 4 },
        );
      } finally {
        await logs.close();
      }
      const calls = standin.requests().length - callsBefore;
      console.log(
        `  done in ${seconds(t)}: ${result.idsEnumerated.toLocaleString('en')} ids, ${result.blocks} blocks, ` +
          `${calls} Sync API calls received by the stand-in`,
      );
      const summary = await summarise(ledger, result.runId);
      if (!summary) throw new Error(`run ${result.runId} is missing from the ledger`);
      console.log(`\n${formatSummary(summary)}`);
      console.log(`  logs: ${relative(process.cwd(), logs.successPath)}`);
      console.log(`        ${relative(process.cwd(), logs.failurePath)}`);
      console.log(`  again later: sunbird-dataops report ${result.runId}`);
      if (result.idsFailed > 0) throw new Error(`${result.idsFailed} ids failed in run ${result.runId}`);
    }
    step(`demo finished in ${seconds(t0)}; logs under ${relative(process.cwd(), outDir) || '.'}/`);
  } finally {
    await syncApi.close();
    await standin.close();
    await cassandra.shutdown();
    sqs.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
