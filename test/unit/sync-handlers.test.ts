/**
 * The sync job's trigger handlers and start paths on in-memory adapters: the sync-block function's partial
 * batch response, the scan queue under a time budget, the fan-out's two triggers told apart by schema, and
 * the run request built from configuration.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type { Context } from 'aws-lambda';
import { toSqsEvent } from '#scripts/offline/sqs-bridge.ts';
import { loadFlatConfig } from '#shared/config.ts';
import { BadInputError } from '#shared/core/errors.ts';
import { TallyMetrics } from '#shared/core/metrics.ts';
import { createFanoutHandler, parseFanoutTrigger } from '#shared/fanout/handler.ts';
import { parseStartPayload } from '#shared/fanout/payload.ts';
import { createLogger } from '#shared/logger.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import {
  createScanHandler,
  createSyncBlockHandler,
  SCAN_METRIC,
  SYNC_METRIC,
  syncStarter,
} from '#shared/sync/handler.ts';
import { FakeSyncApi, MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import { type Block, type ScanTask, scanTaskSchema } from '#shared/sync/messages.ts';
import { syncRequest } from '#shared/sync/request.ts';
import type { StartedRun } from '#shared/sync/run.ts';
import { formatSummary, summarise } from '#shared/sync/summary.ts';

const ARN = 'arn:aws:sqs:us-east-1:000000000000:q';
const context = (remainingMs = 900_000) =>
  ({
    getRemainingTimeInMillis: () => remainingMs,
    awsRequestId: 'req-1',
    functionName: 'fn',
  }) as unknown as Context;

function sqsEvent(bodies: string[]) {
  return toSqsEvent(
    bodies.map((Body, i) => ({ MessageId: `m${i}`, ReceiptHandle: `h${i}`, Body })),
    ARN,
    'us-east-1',
  );
}

function block(seq: number, ids: string[]): Block {
  return {
    type: 'block',
    run: {
      runId: 'run-1',
      job: 'sync',
      objectType: 'user',
      dryRun: false,
      verify: false,
      blockSize: 10,
      sleepMs: 0,
    },
    rangeNo: 0,
    seq,
    ids,
  };
}

function capture() {
  const sink = new PassThrough();
  const lines: string[] = [];
  sink.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)));
  return {
    logger: createLogger({ serviceName: 'test', level: 'INFO', sink }),
    lines: () => lines.map((l) => JSON.parse(l)),
  };
}

describe('the sync-block handler', () => {
  test('a retryable failure and a malformed record come back alone; the rest are done and recorded', async () => {
    const ledger = new MemoryRunLedger();
    const metrics = new TallyMetrics();
    const api = new FakeSyncApi({
      answer: (c) => (c.ids.includes('bad') ? { status: 503 } : { status: 200 }),
    });
    const { logger, lines } = capture();
    const handler = createSyncBlockHandler({
      syncApi: () => api,
      ledger: () => ledger,
      stage: () => new MemoryQueue(),
      logger,
      metrics,
    });
    const res = await handler(
      sqsEvent([JSON.stringify(block(0, ['a', 'b'])), JSON.stringify(block(1, ['bad'])), '{"type":"blo']),
      context(),
    );
    assert.deepEqual(res.batchItemFailures, [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }]);
    assert.equal(ledger.blockWrites, 2);
    assert.deepEqual(
      [
        metrics.counts[SYNC_METRIC.idsSynced],
        metrics.counts[SYNC_METRIC.idsFailed],
        metrics.counts[SYNC_METRIC.blocksFailed],
      ],
      [2, 1, 1],
    );
    const done = lines().filter((l) => l.message === 'block done');
    assert.deepEqual(
      done.map((l) => [l.runId, l.block, l.status]),
      [
        ['run-1', '0/0', 'succeeded'],
        ['run-1', '0/1', 'failed'],
      ],
      'every line of a block carries its run and block, without repeating them in each call',
    );
    assert.ok(lines().some((l) => l.message === 'malformed message' && l.messageId === 'm2'));
  });

  test('near the timeout, no block is started: the rest of the batch comes back unstarted and unrecorded', async () => {
    const ledger = new MemoryRunLedger();
    const api = new FakeSyncApi();
    const { logger, lines } = capture();
    const handler = createSyncBlockHandler({
      syncApi: () => api,
      ledger: () => ledger,
      stage: () => new MemoryQueue(),
      logger,
      reserveMs: 60_000,
    });
    // The invocation's clock: 70 s left at the first record, 50 s at the second (a slow first block).
    const left = [70_000, 50_000, 49_000];
    const ctx = { ...context(), getRemainingTimeInMillis: () => left.shift() ?? 0 } as unknown as Context;
    const res = await handler(
      sqsEvent([0, 1, 2].map((seq) => JSON.stringify(block(seq, [`id-${seq}`])))),
      ctx,
    );
    assert.deepEqual(res.batchItemFailures, [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }]);
    assert.deepEqual(
      api.calls.map((c) => c.ids),
      [['id-0']],
      'only the block started in time reached the Sync API',
    );
    assert.deepEqual(
      (await collect(ledger.blocks('run-1'))).map((b) => b.seq),
      [0],
    );
    const warn = lines().find(
      (l) => l.message === 'invocation near its timeout: records given back unstarted',
    );
    assert.deepEqual([warn?.givenBack, warn?.reserveMs], [2, 60_000]);
  });

  test('a permanent rejection (400) is recorded as failed and not handed back', async () => {
    const api = new FakeSyncApi({ script: [{ status: 400 }] });
    const ledger = new MemoryRunLedger();
    const handler = createSyncBlockHandler({
      syncApi: () => api,
      ledger: () => ledger,
      stage: () => new MemoryQueue(),
      logger: createLogger({ level: 'SILENT' }),
    });
    const res = await handler(sqsEvent([JSON.stringify(block(0, ['a']))]), context());
    assert.deepEqual(res.batchItemFailures, []);
    const [b] = await collect(ledger.blocks('run-1'));
    assert.equal(b?.status, 'failed');
  });

  test('anything but an SQS event is refused by its schema', async () => {
    const handler = createSyncBlockHandler({
      syncApi: () => new FakeSyncApi(),
      ledger: () => new MemoryRunLedger(),
      stage: () => new MemoryQueue(),
      logger: createLogger({ level: 'SILENT' }),
    });
    await assert.rejects(handler({ objectType: 'user' }, context()), BadInputError);
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('the scan-queue handler', () => {
  const ids = Array.from({ length: 300 }, (_, i) => `u${i}`);
  const setup = () => {
    const source = new MemoryIdSource({ 'ks.user': ids }, { vnodes: 1 });
    const scanQueue = new MemoryQueue(1000);
    const syncQueue = new MemoryQueue(1000);
    const metrics = new TallyMetrics();
    const handler = createScanHandler({
      ids: () => source,
      ledger: () => new MemoryRunLedger(),
      scanQueue: () => scanQueue,
      syncQueue: () => syncQueue,
      fetchSize: 50,
      reserveMs: 60_000,
      logger: createLogger({ level: 'SILENT' }),
      metrics,
    });
    return { source, scanQueue, syncQueue, metrics, handler };
  };
  const task = async (source: MemoryIdSource): Promise<ScanTask> => {
    const [r] = await source.tokenRanges();
    return {
      type: 'scan',
      run: {
        runId: 'run-1',
        job: 'sync',
        objectType: 'user',
        dryRun: false,
        verify: false,
        blockSize: 10,
        sleepMs: 0,
      },
      keyspace: 'ks',
      table: 'user',
      rangeNo: 0,
      ...r!,
    };
  };

  test('with time to spare, a range is scanned to its end in one invocation', async () => {
    const s = setup();
    const res = await s.handler(sqsEvent([JSON.stringify(await task(s.source))]), context());
    assert.deepEqual(res.batchItemFailures, []);
    assert.equal(s.syncQueue.size, 30);
    assert.equal(s.scanQueue.size, 0);
    assert.deepEqual(
      [s.metrics.counts[SCAN_METRIC.tasksDone], s.metrics.counts[SCAN_METRIC.idsEnumerated]],
      [1, 300],
    );
  });

  test('out of time, it stops at a page and hands its checkpoint on to the scan queue', async () => {
    const s = setup();
    await s.handler(sqsEvent([JSON.stringify(await task(s.source))]), context(60_000));
    assert.equal(s.syncQueue.size, 5, 'one page of 50 ids');
    s.scanQueue.close();
    const next = scanTaskSchema.parse(JSON.parse((await s.scanQueue.take())!));
    assert.equal(next.checkpoint?.nextSeq, 5);
    assert.equal(s.metrics.counts[SCAN_METRIC.tasksDone], undefined);
  });
});

describe('the fan-out’s triggers', () => {
  test('an SQS event is the scan queue; anything else must be a start payload', () => {
    assert.equal(parseFanoutTrigger(sqsEvent(['{}'])).kind, 'scan-queue');
    const start = parseFanoutTrigger({ objectType: 'user', dryRun: false });
    assert.equal(start.kind, 'start');
    assert.equal(start.kind === 'start' && start.payload.job, 'sync', 'the job defaults to sync');
  });

  test('a bad payload is refused in one line naming the key', () => {
    assert.throws(
      () => parseFanoutTrigger({ objectType: 'users' }),
      /invalid fan-out payload: objectType: objectType must be "user" or "organisation"/,
    );
    assert.throws(() => parseStartPayload({ objectType: 'user', colour: 'red' }), /unknown key\(s\) colour/);
    assert.throws(
      () => parseStartPayload({ objectType: 'user', realm: 'sunbird' }),
      /unknown key\(s\) realm/,
      'realm is a key of the Keycloak job only',
    );
    assert.throws(
      () => parseStartPayload({ job: 'reindex', objectType: 'user' }),
      /job must be "sync" or "delete-keycloak-users"/,
    );
  });

  test('each job’s payload goes to that job’s starter', async () => {
    const seen: string[] = [];
    const started = (runId: string) => ({ runId, run: {} as StartedRun['run'], tasks: 0, ids: 0, blocks: 0 });
    const handler = createFanoutHandler({
      scan: async () => ({ batchItemFailures: [] }),
      starters: {
        sync: async (p) => {
          seen.push(`sync:${p.objectType}`);
          return started('s');
        },
        'delete-keycloak-users': async (p) => {
          seen.push(`kc:${p.realm}`);
          return started('k');
        },
      },
      logger: createLogger({ level: 'SILENT' }),
    });
    await handler({ objectType: 'organisation' }, context());
    await handler({ job: 'delete-keycloak-users', objectType: 'user', realm: 'sunbird' }, context());
    assert.deepEqual(seen, ['sync:organisation', 'kc:sunbird']);
  });

  test('the sync starter: given ids become blocks on the sync queue, a full scan becomes scan tasks', async () => {
    const cfg = loadFlatConfig({ env: {} });
    const scanQueue = new MemoryQueue(1000);
    const syncQueue = new MemoryQueue(1000);
    const start = syncStarter({
      cfg,
      ids: () => new MemoryIdSource({ 'sunbird.user': ['a', 'b', 'c'] }),
      ledger: () => new MemoryRunLedger(),
      scanQueue: () => scanQueue,
      syncQueue: () => syncQueue,
    });
    const byIds = await start({ objectType: 'user', ids: ['x', 'y'], dryRun: false });
    assert.deepEqual([byIds.blocks, byIds.ids, syncQueue.size], [1, 2, 1]);
    const scan = await start({ objectType: 'user' });
    assert.ok(scan.tasks >= 1);
    assert.equal(scanQueue.size, scan.tasks);
    assert.equal(scan.run.dryRun, true, 'dry run is the default, as in the original');
  });
});

describe('the run request from configuration', () => {
  const cfg = (overrides: Record<string, unknown>) => loadFlatConfig({ env: {}, overrides });

  test('the table and the object type follow each other', () => {
    assert.deepEqual(
      [syncRequest(cfg({ sunbird_cassandra_table: 'organisation' }), { source: 's' }).objectType],
      ['organisation'],
    );
    assert.equal(syncRequest(cfg({ sunbird_sync_object_type: 'user' }), { source: 's' }).table, 'user');
  });

  test('nothing to sync, or objectType location, is bad input with the reason', () => {
    assert.throws(() => syncRequest(cfg({}), { source: 's' }), /--table user\|organisation/);
    assert.throws(
      () => syncRequest(cfg({ sunbird_sync_object_type: 'location' }), { source: 's' }),
      /location has no Cassandra table/,
    );
  });

  test('the original’s pacing fallbacks: block size ≤ 0 → 100, sleep ≤ 0 → block size × 100 ms', () => {
    const r = syncRequest(
      cfg({ sunbird_cassandra_table: 'user', sunbird_sync_block_size: '0', sunbird_sync_sleep_time: '-5' }),
      { source: 's' },
    );
    assert.deepEqual([r.blockSize, r.sleepMs], [100, 10_000]);
  });

  test('a console payload overrides the configuration', () => {
    const r = syncRequest(cfg({ sunbird_cassandra_table: 'user' }), {
      source: 's',
      over: { dryRun: false, blockSize: 7, sleepMs: 1, runId: 'r-7' },
    });
    assert.deepEqual([r.dryRun, r.blockSize, r.sleepMs, r.runId], [false, 7, 1, 'r-7']);
  });
});

describe('run summaries', () => {
  test('a run reads enumerating, then syncing, then finished', async () => {
    const ledger = new MemoryRunLedger();
    const run = {
      runId: 'r',
      job: 'sync',
      objectType: 'user' as const,
      dryRun: false,
      verify: false,
      blockSize: 2,
      sleepMs: 0,
    };
    await ledger.createRun(run, { source: 't', ranges: 2 });
    await ledger.setRanges('r', [
      { rangeNo: 0, start: '0', end: '1', ids: 4, blocks: 2, done: true, hops: 0 },
      { rangeNo: 1, start: '1', end: '2', ids: 0, blocks: 0, done: false, hops: 0 },
    ]);
    assert.match(formatSummary((await summarise(ledger, 'r'))!), /: enumerating/);
    await ledger.setRanges('r', [
      { rangeNo: 1, start: '1', end: '2', ids: 0, blocks: 0, done: true, hops: 0 },
    ]);
    assert.match(formatSummary((await summarise(ledger, 'r'))!), /: syncing/);
    for (const seq of [0, 1]) {
      await ledger.recordBlock('r', {
        rangeNo: 0,
        seq,
        stage: 'sync',
        status: 'succeeded',
        ids: ['a', 'b'],
        failedIds: [],
        reason: null,
        attempts: 1,
        httpStatus: 200,
        response: '',
      });
    }
    const done = (await summarise(ledger, 'r'))!;
    assert.deepEqual([done.complete, done.idsSucceeded, done.blocksPending], [true, 4, 0]);
    assert.match(formatSummary(done), /: finished\n/);
    assert.equal(await summarise(ledger, 'unknown'), null);
  });
});
