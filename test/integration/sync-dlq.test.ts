/**
 * Blocks that keep failing end in the dead-letter queue, and nothing is lost: the real sync-block
 * handler behind the project's SQS bridge (partial batch responses, as the event source mapping
 * honours them) and ElasticMQ's own redrive policy.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { runSqsBridge } from '#scripts/offline/sqs-bridge.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { SqsQueue } from '#shared/queue/sqs.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import { blockSchema, type RunSettings } from '#shared/sync/messages.ts';
import { summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { drain, isolatedQueue, testSqs } from '#test/helpers/sqs.ts';

const KEY = 'dlq-test-key-0987';
let client: CassandraClient;
let ks: { ops: string };
let drop: () => Promise<void>;
let sqs: SQSClient;
let standin: SyncApiStandin;
let q: Awaited<ReturnType<typeof isolatedQueue>>;

before(async () => {
  const iso = await isolatedKeyspaces('dlq', ['ops']);
  ({ client, drop } = iso);
  ks = iso.ks;
  sqs = testSqs();
  standin = await startSyncApiStandin({
    port: 0,
    apiKey: KEY,
    faults: { failureRate: 1, failureStatus: 503 },
  });
  q = await isolatedQueue(sqs, 'dlq-sync', { maxReceiveCount: 2, visibilityTimeout: 1 });
  Object.assign(process.env, {
    SYNC_API_ENDPOINT: `${standin.url}/v1/data/sync`,
    SYNC_API_KEY: KEY,
    SYNC_API_MAX_RETRIES: '0',
    DATAOPS_KEYSPACE: ks.ops,
    LOG_LEVEL: 'SILENT',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
});

after(async () => {
  await (await import('#functions/sync-block.ts')).close();
  await standin.close();
  await q.drop();
  sqs.destroy();
  await drop();
});

async function bridgeUntil(done: () => Promise<boolean>, limitMs: number): Promise<void> {
  const { handler } = await import('#functions/sync-block.ts');
  const ctx = { getRemainingTimeInMillis: () => 60_000 } as never;
  const abort = new AbortController();
  const bridge = runSqsBridge({
    sqs,
    queueUrl: q.url,
    fn: 'sync-block',
    invoke: (_fn, event) => handler(event as never, ctx),
    signal: abort.signal,
    maximumConcurrency: 2,
  });
  const deadline = Date.now() + limitMs;
  try {
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error('condition not reached in time');
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    abort.abort();
    await bridge;
  }
}

test('blocks that keep failing move to the dead-letter queue with their ids, and a redrive after recovery completes them', async () => {
  const run: RunSettings = {
    runId: `dlq-run-${Date.now()}`,
    job: 'sync',
    objectType: 'user',
    dryRun: false,
    verify: false,
    blockSize: 3,
    sleepMs: 0,
  };
  const blocks = [0, 1].map((seq) => ({
    type: 'block' as const,
    run,
    rangeNo: 0,
    seq,
    ids: [`d${seq}a`, `d${seq}b`, `d${seq}c`],
  }));
  await new CassandraRunLedger(client, ks.ops).createRun(run, { source: 'test', ranges: 1 });
  await new CassandraRunLedger(client, ks.ops).setRanges(run.runId, [
    {
      rangeNo: 0,
      start: 'ids',
      end: 'ids',
      ids: 6,
      blocks: 2,
      done: true,
      hops: 0,
    },
  ]);
  await new SqsQueue(sqs, q.url).send(blocks.map((b) => JSON.stringify(b)));

  // Given a Sync API that answers 503 to everything, the bridge keeps handing the blocks back …
  const inDlq: string[] = [];
  await bridgeUntil(async () => {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: q.dlqUrl!, MaxNumberOfMessages: 10, VisibilityTimeout: 30 }),
    );
    inDlq.push(...(out.Messages ?? []).map((m) => m.Body ?? ''));
    return inDlq.length >= 2;
  }, 60_000);

  // … until the redrive policy moves them, intact, to the dead-letter queue.
  assert.deepEqual(inDlq.map((b) => blockSchema.parse(JSON.parse(b)).seq).sort(), [0, 1]);
  assert.ok(standin.requests().length >= 4, 'each block was attempted on every receive');
  const failed = await summarise(new CassandraRunLedger(client, ks.ops), run.runId);
  assert.equal(failed?.blocks.failed, 2);
  assert.deepEqual(new Set(failed?.failures.map((f) => f.id)), new Set(blocks.flatMap((b) => b.ids)));
  assert.match(failed!.failures[0]!.reason, /HTTP 503/);

  // When the API recovers, draining the DLQ back into the queue completes the run.
  standin.setFaults({});
  standin.reset();
  standin.setFaults({});
  await drain(sqs, q.dlqUrl!);
  await new SqsQueue(sqs, q.url).send(inDlq);
  await bridgeUntil(
    async () => (await summarise(new CassandraRunLedger(client, ks.ops), run.runId))?.blocks.succeeded === 2,
    30_000,
  );
  const done = await summarise(new CassandraRunLedger(client, ks.ops), run.runId);
  assert.equal(done?.idsFailed, 0);
  assert.equal(done?.complete, true);
});
