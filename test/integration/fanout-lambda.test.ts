/**
 * The fan-out function end to end on real services: a schedule/console payload starts a run, scan
 * tasks land on a real (ElasticMQ) scan queue, SQS-triggered invocations scan them under a time budget
 * that runs out, continuations go back on the scan queue, and every id reaches the sync queue.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { toSqsEvent } from '#scripts/offline/sqs-bridge.ts';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import { blockSchema } from '#shared/sync/messages.ts';
import { summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { drain, isolatedQueue, SQS_ENDPOINT, testSqs } from '#test/helpers/sqs.ts';

const execFileAsync = promisify(execFile);
const USERS = 6000;
let client: CassandraClient;
let drop: () => Promise<void>;
let ks: { sunbird: string; ops: string };
let sqs: SQSClient;
let scanQ: Awaited<ReturnType<typeof isolatedQueue>>;
let syncQ: Awaited<ReturnType<typeof isolatedQueue>>;

before(async () => {
  const iso = await isolatedKeyspaces('fanout', ['sunbird', 'ops']);
  ({ client, drop } = iso);
  ks = iso.ks;
  await seed(client, {
    users: USERS,
    orgs: 0,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: 5,
    keyspace: ks.sunbird,
    coursesKeyspace: 'unused',
  });
  sqs = testSqs();
  scanQ = await isolatedQueue(sqs, 'fanout-scan', { visibilityTimeout: 60 });
  syncQ = await isolatedQueue(sqs, 'fanout-sync');
  Object.assign(process.env, {
    SCAN_QUEUE_URL: scanQ.url,
    SYNC_QUEUE_URL: syncQ.url,
    SQS_ENDPOINT,
    SUNBIRD_KEYSPACE: ks.sunbird,
    DATAOPS_KEYSPACE: ks.ops,
    SCAN_MIN_TASKS: '8',
    SYNC_BLOCK_SIZE: '10',
    SCAN_FETCH_SIZE: '100',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    LOG_LEVEL: 'ERROR',
  });
});

after(async () => {
  await (await import('#functions/fanout.ts')).close();
  await scanQ.drop();
  await syncQ.drop();
  sqs.destroy();
  await drop();
});

/** A Lambda context whose invocation has just over the safety margin left: every scan stops after one page. */
function nearlyOutOfTime(): Context {
  return {
    getRemainingTimeInMillis: () => 60_001,
    functionName: 'fanout',
    awsRequestId: 'r',
  } as unknown as Context;
}

test('a full resync payload fans out, scans under an exhausted time budget with checkpoints, and enqueues every id', async () => {
  const { handler } = await import('#functions/fanout.ts');
  const payload = JSON.parse(
    await readFile(join(import.meta.dirname, '..', '..', 'events', 'fanout-full-user-resync.json'), 'utf8'),
  );
  const started = (await handler(payload, nearlyOutOfTime())) as { runId: string; tasks: number };
  assert.ok(started.runId.startsWith('sync-user-'));
  assert.ok(started.tasks > 1, `the ring is cut into several tasks (${started.tasks})`);

  // Play the SQS event source: receive scan messages, invoke, delete those not reported as failures.
  let invocations = 0;
  let continuations = 0;
  for (let idle = 0; idle < 2; ) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: scanQ.url,
        MaxNumberOfMessages: 1,
        WaitTimeSeconds: idle ? 1 : 0,
      }),
    );
    const m = out.Messages?.[0];
    if (!m) {
      idle++;
      continue;
    }
    idle = 0;
    if (JSON.parse(m.Body!).checkpoint) continuations++;
    const event = toSqsEvent([m], 'arn:aws:sqs:us-east-1:000000000000:scan', 'us-east-1');
    const res = (await handler(event, nearlyOutOfTime())) as { batchItemFailures: unknown[] };
    assert.deepEqual(res.batchItemFailures, []);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: scanQ.url, ReceiptHandle: m.ReceiptHandle }));
    invocations++;
  }
  assert.ok(continuations > 0, 'budgets ran out and checkpoints were handed on');
  assert.ok(invocations > started.tasks);

  const ids = (await drain(sqs, syncQ.url)).flatMap((b) => blockSchema.parse(JSON.parse(b)).ids);
  assert.equal(ids.length, USERS, 'no id enqueued twice');
  assert.deepEqual(new Set(ids), new Set(seededUserIds(5, USERS)));
  const summary = await summarise(new CassandraRunLedger(client, ks.ops), started.runId);
  assert.equal(summary?.idsEnumerated, USERS);
  assert.equal(summary?.ranges.done, started.tasks);
  assert.equal(summary?.run.dryRun, false);
});

test('an invalid payload is refused with a clear error', async () => {
  const { handler } = await import('#functions/fanout.ts');
  await assert.rejects(
    handler({ objectType: 'users' }, nearlyOutOfTime()),
    /objectType must be "user" or "organisation"/,
  );
  await assert.rejects(handler({ objectType: 'user', dryrun: false }, nearlyOutOfTime()), /dryrun/);
});

/** Invokes the fan-out once in a process of its own (a separate Lambda container). */
async function invokeInOwnProcess(payload: unknown, requestId: string): Promise<Record<string, unknown>> {
  const script = join(import.meta.dirname, '..', 'helpers', 'invoke-fanout.ts');
  const { stdout } = await execFileAsync(process.execPath, [script, JSON.stringify(payload), requestId], {
    env: process.env,
    timeout: 120_000,
  });
  return JSON.parse(stdout);
}

test('a schedule event delivered twice, to two containers at once, starts one run; another event starts another', async () => {
  const eventId = randomUUID();
  const payload = { job: 'sync', objectType: 'user', dryRun: true, idempotencyKey: eventId };
  const runsBefore = (await new CassandraRunLedger(client, ks.ops).recentRuns(100)).length;
  const both = await Promise.all([
    invokeInOwnProcess(payload, 'delivery-1'),
    invokeInOwnProcess(payload, 'delivery-2'),
  ]);
  const [first, second] = both.sort((a, b) => Number(b.tasks) - Number(a.tasks));
  assert.equal(first!.runId, second!.runId, 'both answer with the same run');
  assert.equal(first!.duplicate, undefined);
  assert.ok(Number(first!.tasks) > 1);
  assert.ok(
    ['busy', 'started'].includes(String(second!.duplicate)),
    `the repeat started nothing (${second!.duplicate})`,
  );
  assert.equal(second!.tasks, 0);

  // Delivered again later (an EventBridge retry): the completed start is found.
  const later = await invokeInOwnProcess(payload, 'delivery-3');
  assert.deepEqual([later.runId, later.duplicate], [first!.runId, 'started']);

  const tasks = await drain(sqs, scanQ.url);
  assert.equal(tasks.length, first!.tasks, 'one set of scan tasks, not two');
  assert.ok(tasks.every((t) => JSON.parse(t).run.runId === first!.runId));

  const other = await invokeInOwnProcess({ ...payload, idempotencyKey: randomUUID() }, 'delivery-4');
  assert.notEqual(other.runId, first!.runId);
  assert.equal(other.duplicate, undefined);
  await drain(sqs, scanQ.url);
  const runs = await new CassandraRunLedger(client, ks.ops).recentRuns(100);
  assert.equal(runs.length, runsBefore + 2);
});

test('without a key, a retried asynchronous invocation (same request id) starts one run', async () => {
  const payload = { job: 'sync', objectType: 'user', dryRun: true };
  const requestId = randomUUID();
  const first = await invokeInOwnProcess(payload, requestId);
  const retry = await invokeInOwnProcess(payload, requestId);
  assert.deepEqual([retry.runId, retry.duplicate, retry.tasks], [first.runId, 'started', 0]);
  const fresh = await invokeInOwnProcess(payload, randomUUID());
  assert.notEqual(fresh.runId, first.runId);
  await drain(sqs, scanQ.url);
});
