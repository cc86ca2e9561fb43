/**
 * `npm run demo`: the whole sync job on this machine in about a minute, for real.
 *
 * Starts the local services it needs (Cassandra, ElasticMQ, OpenSearch), creates the schema, seeds a
 * sample dataset (deterministic upserts, so running it again changes nothing), starts the Sync API
 * stand-in in process, indexing into OpenSearch as userorg-service does, then runs a real (not dry)
 * full resync of users and then of organisations through the real queue chain: token-range scanners →
 * the `sunbird-dataops-local-sync` ElasticMQ queue → paced workers → Sync API → OpenSearch. Prints
 * each run's report from the ledger, leaves the original-format logs in out/demo/, and ends with
 * Cassandra's rows against the indexed documents per table, and one sample document.
 *
 * Options: `--users 5000 --orgs 200 --block-size 100 --sleep-ms 20 --out out/demo`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { LOCAL_QUEUES, localQueueUrl, SQS_ENDPOINT, SQS_REGION } from '#scripts/services/elasticmq.ts';
import { OPENSEARCH_URL } from '#scripts/services/opensearch.ts';
import { ensureServices } from '#scripts/services.ts';
import {
  DEFAULT_INDEX_NAMES,
  OpenSearchClient,
  type SyncApiStandin,
  startSyncApiStandin,
} from '#scripts/sync-api-standin/index.ts';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import { createSqsClient } from '#shared/clients/sqs.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import { SqsQueue } from '#shared/queue/sqs.ts';
import { DEFAULT_KEYSPACES, migrate } from '#shared/schema.ts';
import { CassandraIdSource } from '#shared/sync/cassandra-ids.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import { runLocal } from '#shared/sync/local.ts';
import type { StartRunRequest } from '#shared/sync/run.ts';
import { formatSummary, summarise } from '#shared/sync/summary.ts';
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

/** Every row of a table, counted page by page (the demo's tables are small; this stays bounded in memory). */
async function countRows(client: CassandraClient, table: string): Promise<number> {
  let n = 0;
  for await (const _ of await client.execute(`SELECT id FROM ${keyspace}.${table}`, [], { fetchSize: 5000 }))
    n++;
  return n;
}

/** The last step: Cassandra's rows against the documents the stand-in indexed, per table; then one. */
async function compareWithIndex(cassandra: CassandraClient, standin: SyncApiStandin, firstUserId: string) {
  step(`Cassandra rows vs documents indexed in OpenSearch (${OPENSEARCH_URL})`);
  await standin.idle(); // the default mode indexes right after answering
  const opensearch = new OpenSearchClient({ url: OPENSEARCH_URL });
  try {
    const tables = [
      { table: 'user', index: DEFAULT_INDEX_NAMES.user },
      { table: 'organisation', index: DEFAULT_INDEX_NAMES.organisation },
    ];
    const rows = [['table', 'rows', 'index', 'documents', '']];
    let equal = true;
    for (const { table, index } of tables) {
      const [inCassandra, inIndex] = await Promise.all([
        countRows(cassandra, table),
        opensearch.count(index),
      ]);
      equal &&= inCassandra === inIndex;
      rows.push([
        `${keyspace}.${table}`,
        String(inCassandra),
        index,
        String(inIndex),
        inCassandra === inIndex ? 'equal' : 'DIFFERENT',
      ]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows)
      console.log(
        `  ${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}`,
      );
    const sample = await opensearch.get(DEFAULT_INDEX_NAMES.user, firstUserId);
    console.log(`\n  sample document ${DEFAULT_INDEX_NAMES.user}/${firstUserId}:`);
    console.log(JSON.stringify(sample, null, 2).replace(/^/gm, '  '));
    if (!equal)
      throw new Error('the index does not hold exactly the rows of Cassandra (see the table above)');
  } finally {
    await opensearch.close();
  }
}

async function resync(
  objectType: 'user' | 'organisation',
  deps: Parameters<typeof runLocal>[1] & { ledger: CassandraRunLedger },
  standin: SyncApiStandin,
): Promise<void> {
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
  const t = performance.now();
  let result: Awaited<ReturnType<typeof runLocal>>;
  try {
    result = await runLocal(
      req,
      deps,
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
  const summary = await summarise(deps.ledger, result.runId);
  if (!summary) throw new Error(`run ${result.runId} is missing from the ledger`);
  console.log(`\n${formatSummary(summary)}`);
  console.log(`  logs: ${relative(process.cwd(), logs.successPath)}`);
  console.log(`        ${relative(process.cwd(), logs.failurePath)}`);
  console.log(`  again later: sunbird-dataops report ${result.runId}`);
  if (result.idsFailed > 0) throw new Error(`${result.idsFailed} ids failed in run ${result.runId}`);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  step('services (Cassandra, ElasticMQ, OpenSearch)');
  const services = await ensureServices(['cassandra', 'elasticmq', 'opensearch'], {
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
  const standin = await startSyncApiStandin({
    port: 0,
    apiKey,
    maxRecorded: 100_000,
    index: { cassandra, keyspace, opensearch: { url: OPENSEARCH_URL } },
  });
  const syncApi = new SyncApiClient({ endpoint: `${standin.url}/v1/data/sync`, apiKey });
  try {
    step(`schema: keyspaces ${keyspace} and ${opsKeyspace}`);
    await migrate(cassandra, { only: ['sunbird', 'ops'] });

    step(`sample data: ${users.toLocaleString('en')} users, ${orgs} organisations (seed 42)`);
    const t = performance.now();
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

    console.log(
      `  Sync API stand-in: ${standin.url}/v1/data/sync (Bearer key required), indexing into OpenSearch`,
    );
    const deps = {
      ids: new CassandraIdSource(cassandra),
      ledger: new CassandraRunLedger(cassandra, opsKeyspace),
      syncApi,
      blocks: new SqsQueue(sqs, localQueueUrl(syncQueue), { visibilityTimeoutS: 120 }),
    };
    for (const objectType of ['user', 'organisation'] as const) await resync(objectType, deps, standin);
    await compareWithIndex(cassandra, standin, seededUserIds(42, 1)[0]!);
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
