/**
 * End to end through serverless-offline (issue 6), the way `npm run offline` runs the stack
 * (scripts/offline/start.ts): the functions run in serverless-offline's workers, built by
 * serverless-esbuild exactly as packaged, and the project's bridges play the SQS and MSK event sources.
 *
 * 1. A scheduled-resync payload invoked on fanout through the Lambda Invoke endpoint → scan tasks on the
 *    scan queue → fanout (SQS) → blocks on the sync queue → sync-block (SQS) → the Sync API stand-in,
 *    which must receive every id of the seeded user table, with the run ledger complete.
 * 2. A merge request on the input topic → MSK bridge → merge-user-courses → batch-enrolment-sync events
 *    on the course-batch topic, read back with a real consumer.
 *
 * Everything is the file's own: keyspaces, queues, topics (a unique SUNBIRD_ENV), Sync API port,
 * Lambda port and esbuild work folder, so it runs beside the other test files.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { runOffline } from '#scripts/offline/start.ts';
import { samplePair, seedPair } from '#scripts/seed/merge-data.ts';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import {
  createConsumer,
  createProducer,
  ensureTopics,
  type KafkaOptions,
  produce,
} from '#shared/clients/kafka.ts';
import type { Keyspaces } from '#shared/schema.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import { type RunSummary, summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { isolatedQueue, SQS_ENDPOINT, testSqs } from '#test/helpers/sqs.ts';

const execFileP = promisify(execFile);

const ROOT = path.resolve(import.meta.dirname, '../..');
const STAGE = 'local';
const USERS = 450; // 5 blocks of 100 over several token sub-ranges
const SEED = 61;
const tag = randomBytes(3).toString('hex');
/** Topics follow SUNBIRD_ENV in serverless.yml (`${sunbirdEnv}.lms.user.account.merge`, …). */
const sunbirdEnv = `e2e-${tag}`;
const topics = {
  input: `${sunbirdEnv}.lms.user.account.merge`,
  failed: `${sunbirdEnv}.learning.events.failed`,
  courseBatch: `${sunbirdEnv}.coursebatch.job.request`,
};
const kafka: KafkaOptions = { brokers: ['127.0.0.1:9092'], clientId: `e2e-${tag}` };
const API_KEY = `e2e-key-${tag}`;
const ESBUILD_FOLDER = `.esbuild-e2e-${tag}`;

let client: CassandraClient;
let ks: Keyspaces;
let dropKeyspaces: (() => Promise<void>) | undefined;
let sqs: SQSClient;
const queues: Array<{ drop: () => Promise<void> }> = [];
let standin: SyncApiStandin | undefined;
let offlineEndpoint = '';
let lambda: LambdaClient | undefined;
const controller = new AbortController();
let offline: Promise<void> | undefined;
/** serverless-offline's and the bridges' output, shown when something fails. */
const offlineLog: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lastLog = (n = 40) => offlineLog.slice(-n).join('\n');

/** Polls `check` until it returns a value; fails with `what` and the offline log after `timeoutMs`. */
async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got !== undefined) return got;
    if (Date.now() > until)
      assert.fail(
        `timed out after ${timeoutMs} ms waiting for ${what}\n--- offline log (last lines) ---\n${lastLog()}`,
      );
    await sleep(250);
  }
}

/** serverless-offline prints `(λ: <function>) RequestId: … Duration: …` after each invocation. */
function loggedInvocation(fn: string): Promise<true> {
  return waitFor(
    `serverless-offline to log an invocation of ${fn}`,
    () => offlineLog.some((l) => l.includes(`(λ: ${fn})`)) || undefined,
    10_000,
  );
}

before(async () => {
  const iso = await isolatedKeyspaces('e2e', ['sunbird', 'courses', 'ops']);
  client = iso.client;
  ks = iso.ks;
  dropKeyspaces = iso.drop;
  await seed(client, {
    users: USERS,
    orgs: 0,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: SEED,
    keyspace: ks.sunbird,
    coursesKeyspace: ks.courses,
  });
  sqs = testSqs();
  const scanQ = await isolatedQueue(sqs, 'e2e-scan', { visibilityTimeout: 60 });
  queues.push(scanQ);
  const syncQ = await isolatedQueue(sqs, 'e2e-sync');
  queues.push(syncQ);
  const deleteQ = await isolatedQueue(sqs, 'e2e-delete');
  queues.push(deleteQ);
  standin = await startSyncApiStandin({ port: 0, apiKey: API_KEY });
  await ensureTopics(kafka, Object.values(topics));

  const env: Record<string, string> = {
    SUNBIRD_ENV: sunbirdEnv,
    LOG_LEVEL: 'WARN',
    POWERTOOLS_LOG_LEVEL: 'WARN',
    CASSANDRA_CONSISTENCY: 'LOCAL_ONE',
    SUNBIRD_KEYSPACE: ks.sunbird,
    COURSES_KEYSPACE: ks.courses,
    DATAOPS_KEYSPACE: ks.ops,
    SQS_ENDPOINT,
    SCAN_QUEUE_URL: scanQ.url,
    SYNC_QUEUE_URL: syncQ.url,
    DELETE_QUEUE_URL: deleteQ.url,
    SYNC_API_ENDPOINT: `${standin.url}/v1/data/sync`,
    SYNC_API_KEY: API_KEY,
    SYNC_SLEEP_TIME: '1',
    SYNC_BLOCK_SIZE: '10',
    SCAN_MIN_TASKS: '4',
    KAFKA_BROKERS: kafka.brokers.join(','),
    MERGE_INPUT_TOPIC: topics.input,
    MERGE_FAILED_TOPIC: topics.failed,
    MERGE_COURSE_BATCH_TOPIC: topics.courseBatch,
    MERGE_GROUP_ID: `${sunbirdEnv}-merge-user-courses-group`,
  };
  let ready!: (endpoint: string) => void;
  const isReady = new Promise<string>((resolve) => {
    ready = resolve;
  });
  offline = runOffline({
    stage: STAGE,
    env,
    lambdaPort: 0,
    esbuildFolder: ESBUILD_FOLDER,
    signal: controller.signal,
    log: (line) => {
      offlineLog.push(line);
      if (offlineLog.length > 2000) offlineLog.splice(0, 1000);
    },
    onReady: ({ endpoint }) => ready(endpoint),
  });
  const endpoint = await Promise.race([
    isReady,
    offline.then(
      () => assert.fail('serverless offline stopped before it was ready'),
      (err: unknown) => assert.fail(`serverless offline did not start: ${String(err)}\n${lastLog()}`),
    ),
  ]);
  offlineEndpoint = endpoint;
  lambda = new LambdaClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'offline', secretAccessKey: 'offline' },
    maxAttempts: 1,
  });
});

after(async () => {
  controller.abort();
  // Stops the bridges, then serverless-offline (SIGTERM, SIGKILL after 10 s).
  await offline?.catch((err: unknown) => process.stderr.write(`offline stopped with: ${String(err)}\n`));
  lambda?.destroy();
  await Promise.allSettled(queues.map((q) => q.drop()));
  sqs?.destroy();
  await standin?.close();
  await dropKeyspaces?.();
  await rm(path.join(ROOT, ESBUILD_FOLDER), { recursive: true, force: true });
});

async function invoke(fn: string, payload: unknown): Promise<unknown> {
  assert.ok(lambda, 'serverless offline is up');
  const out = await lambda.send(
    new InvokeCommand({
      FunctionName: `sunbird-dataops-${STAGE}-${fn}`,
      InvocationType: 'RequestResponse',
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
  );
  const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
  assert.equal(out.FunctionError, undefined, `${fn} failed: ${text}\n${lastLog()}`);
  return text ? JSON.parse(text) : undefined;
}

describe('offline end to end (serverless-offline + SQS/MSK bridges)', () => {
  test('a scheduled resync fans out over SQS and the sync worker sends every user id to the Sync API', async () => {
    const started = (await invoke('fanout', { objectType: 'user', dryRun: false })) as {
      runId: string;
      tasks: number;
    };
    assert.match(started.runId, /^sync-user-/);
    assert.ok(started.tasks >= 2, `several scan tasks (got ${started.tasks})`);

    const rs = await client.execute(`SELECT id FROM ${ks.sunbird}.user`, [], { fetchSize: 10_000 });
    const tableIds = new Set(rs.rows.map((r) => r.get('id') as string));
    assert.equal(tableIds.size, USERS);
    assert.deepEqual(tableIds, new Set(seededUserIds(SEED, USERS)));

    const received = () => {
      const ids = new Set<string>();
      for (const r of standin!.requests()) {
        const req = (r.body as { request?: { objectType?: string; objectIds?: string[] } } | undefined)
          ?.request;
        if (r.status === 200 && req?.objectType === 'user') for (const id of req.objectIds ?? []) ids.add(id);
      }
      return ids;
    };
    const ids = await waitFor(
      `the Sync API stand-in to receive all ${USERS} ids`,
      () => {
        const got = received();
        return got.size >= USERS ? got : undefined;
      },
      90_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n(received ${received().size} of ${USERS} ids so far)`);
    });
    assert.deepEqual(ids, tableIds, 'exactly the ids of the user table were synced');
    for (const r of standin!.requests()) assert.equal(r.auth, 'matched', 'SYNC_API_KEY reached sync-block');

    const ledger = new CassandraRunLedger(client, ks.ops);
    const summary = await waitFor<RunSummary>(
      'the run ledger to be complete',
      async () => {
        const s = await summarise(ledger, started.runId);
        return s?.complete ? s : undefined;
      },
      30_000,
    );
    assert.equal(summary.complete, true);
    assert.equal(summary.run.dryRun, false);
    assert.equal(summary.idsEnumerated, USERS);
    assert.equal(summary.idsSucceeded, USERS);
    assert.equal(summary.idsFailed, 0);
    assert.equal(summary.blocks.succeeded, summary.blocksExpected);
    assert.equal(summary.blocksPending, 0);
    assert.equal(summary.ranges.done, started.tasks);
    // serverless-offline logs each invocation: the scan tasks and blocks really went through its workers.
    // (The line comes once the invocation has returned, so it may trail what it did.)
    await loggedInvocation('fanout');
    await loggedInvocation('sync-block');
  });

  test('a merge event on the input topic reaches merge-user-courses and its batch-enrolment-sync events reach the output topic', async () => {
    const from = `from-${randomUUID()}`;
    const to = `to-${randomUUID()}`;
    await seedPair(client, ks.courses, samplePair(from, to));
    const event = JSON.parse(
      readFileSync(path.join(ROOT, 'events', 'merge-user-courses-event.json'), 'utf8'),
    ) as { edata: Record<string, unknown> };
    event.edata.fromAccountId = from;
    event.edata.toAccountId = to;

    // The reader joins before the event is produced, from the earliest offset of this run's own topic.
    const consumer = createConsumer({ ...kafka, groupId: `e2e-reader-${tag}` });
    const stream = await consumer.consume({ topics: [topics.courseBatch], mode: 'earliest' });
    const producer = createProducer(kafka);
    // biome-ignore lint/suspicious/noExplicitAny: decoded Kafka JSON, checked field by field below
    const got: Array<{ key: string | undefined; event: Record<string, any> }> = [];
    const timer = setTimeout(() => void stream.close(), 60_000);
    try {
      await produce(producer, [{ topic: topics.input, key: from, value: JSON.stringify(event) }]);
      for await (const m of stream) {
        if (m.value.includes(to)) got.push({ key: m.key, event: JSON.parse(m.value) });
        if (got.length >= 3) break;
      }
    } finally {
      clearTimeout(timer);
      await stream.close().catch(() => undefined);
      await Promise.allSettled([consumer.close(true), producer.close(true)]);
    }
    assert.equal(got.length, 3, `three batch-enrolment-sync events within 60 s\n${lastLog()}`);
    assert.deepEqual(got.map((g) => g.event.edata.batchId).sort(), ['b1', 'b2', 'b3']);
    for (const { key, event: e } of got) {
      assert.equal(key, to);
      assert.deepEqual(Object.keys(e).sort(), ['actor', 'context', 'edata', 'eid', 'ets', 'mid', 'object']);
      assert.equal(e.eid, 'BE_JOB_REQUEST');
      assert.deepEqual(e.actor, { id: 'Course Batch Updater', type: 'System' });
      assert.deepEqual(e.edata, {
        action: 'batch-enrolment-sync',
        iteration: 1,
        batchId: e.edata.batchId,
        userId: to,
        courseId: { b1: 'do_course_1', b2: 'do_course_2', b3: 'do_course_3' }[e.edata.batchId as string],
        reset: ['completionPercentage', 'status', 'progress'],
      });
      assert.deepEqual(e.object, { id: `${e.edata.batchId}_${to}`, type: 'CourseBatchEnrolment' });
    }
    await loggedInvocation('merge-user-courses');
  });

  test('`sunbird-dataops invoke` reaches the offline stack: a run id on success, one line and exit 1 on a bad payload', async () => {
    const cliPath = path.join(ROOT, 'bin', 'sunbird-dataops.js');
    const ok = await execFileP(process.execPath, [
      cliPath,
      'invoke',
      'fanout',
      '--payload',
      path.join(ROOT, 'events', 'fanout-specific-ids.json'),
      '--endpoint',
      offlineEndpoint,
      '--stage',
      STAGE,
    ]);
    assert.match(ok.stdout, /"runId": "sync-user-/);
    const dir = await mkdtemp(path.join(tmpdir(), 'invoke-'));
    await writeFile(path.join(dir, 'bad.json'), '{"objectType":"users"}');
    const bad = await execFileP(process.execPath, [
      cliPath,
      'invoke',
      'fanout',
      '--payload',
      path.join(dir, 'bad.json'),
      '--endpoint',
      offlineEndpoint,
      '--stage',
      STAGE,
    ]).then(
      () => assert.fail('an invalid payload must fail'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.trim(), /^sunbird-dataops: .*invalid fan-out payload: objectType/);
  });
});
