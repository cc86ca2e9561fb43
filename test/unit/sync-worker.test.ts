/**
 * The sync job's block worker, pacing, run start and whole local runs, on in-memory adapters (queue,
 * ledger, id source, Sync API) and a manual clock: the rules, in milliseconds.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BadInputError } from '#shared/core/errors.ts';
import { ManualClock } from '#shared/core/time.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import { runLocal } from '#shared/sync/local.ts';
import { FakeSyncApi, MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import { type Block, blockSchema, type RunSettings } from '#shared/sync/messages.ts';
import { FixedPacer } from '#shared/sync/pacing.ts';
import {
  idBlocks,
  newRunId,
  RunNotFoundError,
  retryRequest,
  type StartRunRequest,
  startRun,
} from '#shared/sync/run.ts';
import { formatSummary, summarise } from '#shared/sync/summary.ts';
import { processBlock, reasonOf } from '#shared/sync/worker.ts';

const ids = (n: number, prefix = 'u'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function run(over: Partial<RunSettings> = {}): RunSettings {
  return {
    runId: 'r1',
    job: 'sync',
    objectType: 'user',
    dryRun: false,
    verify: false,
    blockSize: 10,
    sleepMs: 0,
    ...over,
  };
}

function block(over: Partial<Block> = {}, runOver: Partial<RunSettings> = {}): Block {
  return { type: 'block', run: run(runOver), rangeNo: 2, seq: 5, ids: ['a', 'b', 'c'], ...over };
}

function request(over: Partial<StartRunRequest> = {}): StartRunRequest {
  return {
    job: 'sync',
    objectType: 'user',
    table: 'user',
    keyspace: 'ks',
    dryRun: false,
    verify: false,
    blockSize: 10,
    sleepMs: 0,
    source: 'test',
    ...over,
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function taken(q: MemoryQueue): Promise<Block[]> {
  q.close();
  const out: Block[] = [];
  for (let b = await q.take(); b !== null; b = await q.take()) out.push(blockSchema.parse(JSON.parse(b)));
  return out;
}

describe('block worker', () => {
  test('HTTP 200: the block succeeds and its outcome is in the ledger', async () => {
    const ledger = new MemoryRunLedger();
    const api = new FakeSyncApi();
    const { outcome, retryable } = await processBlock(block(), { syncApi: api, ledger });
    assert.equal(outcome.status, 'succeeded');
    assert.deepEqual(outcome.failedIds, []);
    assert.equal(retryable, false);
    assert.deepEqual(api.calls[0]?.ids, ['a', 'b', 'c']);
    const recorded = (await collect(ledger.blocks('r1')))[0];
    assert.deepEqual([recorded?.rangeNo, recorded?.seq, recorded?.status], [2, 5, 'succeeded']);
  });

  for (const [status, retryable] of [
    [500, true],
    [503, true],
    [429, true],
    [408, true],
    [400, false],
    [401, false],
    [403, false],
    [413, false],
    [501, false],
  ] as const) {
    test(`HTTP ${status}: every id of the block fails; ${retryable ? 'worth another delivery' : 'a permanent rejection'}`, async () => {
      const r = await processBlock(block(), { syncApi: new FakeSyncApi({ script: [{ status }] }) });
      assert.equal(r.outcome.status, 'failed');
      assert.deepEqual(r.outcome.failedIds, ['a', 'b', 'c']);
      assert.equal(r.outcome.httpStatus, status);
      assert.equal(r.retryable, retryable);
    });
  }

  test('no response at all is a network failure, worth another delivery', async () => {
    const r = await processBlock(block(), {
      syncApi: new FakeSyncApi({ script: [{ network: 'ECONNRESET' }] }),
    });
    assert.equal(r.outcome.status, 'failed');
    assert.equal(r.retryable, true);
    assert.equal(r.outcome.reason, 'network error: ECONNRESET');
  });

  test('the failure reason carries the API error code and message from the envelope', () => {
    const reason = reasonOf({
      ok: false,
      status: 400,
      requestBody: '',
      responseBody: '{"params":{"err":"UOS_0072","errmsg":"Invalid Object Type."}}',
      attempts: 3,
    });
    assert.equal(reason, 'HTTP 400: UOS_0072 Invalid Object Type. after 3 attempts');
  });

  test('verified mode: ids missing from esSyncResponse are failed, the block is partial', async () => {
    const api = new FakeSyncApi({ script: [{ confirm: ['a', 'c'] }] });
    const r = await processBlock(block({}, { verify: true }), { syncApi: api });
    assert.equal(api.calls[0]?.verify, true);
    assert.equal(r.outcome.status, 'partial');
    assert.deepEqual(r.outcome.failedIds, ['b']);
    assert.equal(r.outcome.reason, 'not confirmed by esSyncResponse');
  });

  test('dry run: no API call, the block is recorded as dry-run', async () => {
    const api = new FakeSyncApi();
    const ledger = new MemoryRunLedger();
    const r = await processBlock(block({}, { dryRun: true }), { syncApi: api, ledger });
    assert.equal(api.calls.length, 0);
    assert.equal(r.outcome.status, 'dry-run');
    assert.equal(ledger.blockWrites, 1);
  });

  test('the Talend hook sees every real call with its request and response', async () => {
    const seen: string[] = [];
    await processBlock(block(), { syncApi: new FakeSyncApi(), onCall: (_b, r) => seen.push(r.requestBody) });
    assert.deepEqual(seen, [
      '{"params":{},"request":{"objectType":"user","operationFor":"es","objectIds":["a","b","c"]}}',
    ]);
  });
});

describe('chain continuation', () => {
  test('an accepted block of a run that names a next stage goes on to that stage, context untouched', async () => {
    const next = new MemoryQueue();
    const b = block({ context: { realm: 'sunbird' } }, { next: 'delete' });
    await processBlock(b, {
      syncApi: new FakeSyncApi(),
      stage: (name) => {
        assert.equal(name, 'delete');
        return next;
      },
    });
    const [forwarded] = await taken(next);
    assert.deepEqual(forwarded, b);
  });

  test('a block whose sync failed never reaches the next stage', async () => {
    const next = new MemoryQueue();
    await processBlock(block({}, { next: 'delete' }), {
      syncApi: new FakeSyncApi({ script: [{ status: 500 }] }),
      stage: () => next,
    });
    assert.equal(next.size, 0);
  });

  test('in verified mode only the confirmed ids go on', async () => {
    const next = new MemoryQueue();
    await processBlock(block({}, { next: 'delete', verify: true }), {
      syncApi: new FakeSyncApi({ script: [{ confirm: ['b'] }] }),
      stage: () => next,
    });
    assert.deepEqual(
      (await taken(next)).map((b) => b.ids),
      [['b']],
    );
  });

  test('a dry run goes on too (the next stage decides what a dry run means)', async () => {
    const next = new MemoryQueue();
    await processBlock(block({}, { next: 'delete', dryRun: true }), {
      syncApi: new FakeSyncApi(),
      stage: () => next,
    });
    assert.equal(next.size, 1);
  });

  test('a run without a next stage ends at the sync', async () => {
    await processBlock(block(), {
      syncApi: new FakeSyncApi(),
      stage: () => assert.fail('no stage asked for'),
    });
  });

  test('a next stage with no queue here is a clear configuration error, after the outcome is recorded', async () => {
    const ledger = new MemoryRunLedger();
    await assert.rejects(
      processBlock(block({}, { next: 'delete' }), { syncApi: new FakeSyncApi(), ledger }),
      BadInputError,
    );
    assert.equal(ledger.blockWrites, 1);
  });
});

describe('pacing', () => {
  test('consecutive calls are spaced by the sleep time (the original slept after each call)', async () => {
    const clock = new ManualClock(1_000);
    const pacer = new FixedPacer(clock);
    const r = run({ sleepMs: 5_000 });
    const starts: number[] = [];
    for (let i = 0; i < 4; i++) {
      await pacer.before(r);
      starts.push(clock.now());
      clock.advance(300); // the call itself
      pacer.after(r);
    }
    for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! - starts[i - 1]! >= 5_300, String(starts));
    assert.equal(starts[0], 1_000, 'the first call does not wait');
  });

  test('a slow call still leaves the full sleep after it ends', async () => {
    const clock = new ManualClock();
    const pacer = new FixedPacer(clock);
    const r = run({ sleepMs: 1_000 });
    await pacer.before(r);
    clock.advance(4_000);
    pacer.after(r);
    const ended = clock.now();
    await pacer.before(r);
    assert.equal(clock.now() - ended, 1_000);
  });

  test('dry runs and a sleep of 0 are not paced', async () => {
    const clock = new ManualClock();
    const pacer = new FixedPacer(clock);
    for (const r of [run({ dryRun: true, sleepMs: 5_000 }), run({ sleepMs: 0 })]) {
      for (let i = 0; i < 3; i++) {
        await pacer.before(r);
        pacer.after(r);
      }
    }
    assert.deepEqual(clock.sleeps, []);
  });

  test('an abort ends the wait early', async () => {
    const clock = new ManualClock();
    const pacer = new FixedPacer(clock);
    const r = run({ sleepMs: 10_000 });
    await pacer.before(r);
    pacer.after(r);
    const ctl = new AbortController();
    ctl.abort();
    await pacer.before(r, ctl.signal);
    assert.deepEqual(clock.sleeps, []);
  });
});

describe('starting a run', () => {
  test('run ids say the job and object type and are unique', () => {
    const a = newRunId('sync', 'user', new Date('2026-11-23T03:45:34.123Z'));
    assert.match(a, /^sync-user-20261123T034534Z-[0-9a-f]{6}$/);
    assert.notEqual(a, newRunId('sync', 'user', new Date('2026-11-23T03:45:34.123Z')));
  });

  test('given ids are cut into blocks now; the ledger has the run and one done range', async () => {
    const ledger = new MemoryRunLedger();
    const blocks = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    const started = await startRun(request({ ids: ids(25) }), {
      ids: new MemoryIdSource({}),
      ledger,
      scanQueue: new MemoryQueue(),
      blockQueue: blocks,
    });
    assert.deepEqual([started.tasks, started.ids, started.blocks], [0, 25, 3]);
    assert.deepEqual(
      (await taken(blocks)).map((b) => b.ids.length),
      [10, 10, 5],
    );
    const [range] = await ledger.ranges(started.runId);
    assert.deepEqual([range?.start, range?.ids, range?.blocks, range?.done], ['ids', 25, 3, true]);
    assert.equal((await ledger.getRun(started.runId))?.source, 'test');
  });

  test('id groups never share a block, and each block carries its group’s context', () => {
    const blocks = idBlocks(run({ blockSize: 2 }), [
      { ids: ['a', 'b', 'c'], context: { realm: 'one' } },
      { ids: ['d'], context: { realm: 'two' } },
    ]);
    assert.deepEqual(
      blocks.map((b) => [b.seq, b.ids, b.context?.realm]),
      [
        [0, ['a', 'b'], 'one'],
        [1, ['c'], 'one'],
        [2, ['d'], 'two'],
      ],
    );
  });

  test('a full scan hands out one scan task per planned sub-range and records them as not done', async () => {
    const ledger = new MemoryRunLedger();
    const scans = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    const started = await startRun(request({ plan: { splitsPerRange: 2 } }), {
      ids: new MemoryIdSource({ 'ks.user': ids(10) }, { vnodes: 4 }),
      ledger,
      scanQueue: scans,
      blockQueue: new MemoryQueue(),
    });
    assert.equal(started.tasks, 8);
    assert.equal(scans.size, 8);
    const ranges = await ledger.ranges(started.runId);
    assert.equal(ranges.length, 8);
    assert.ok(ranges.every((r) => !r.done));
  });

  test('retry asks for exactly the failed ids, as a sync run linked to its parent', async () => {
    const ledger = new MemoryRunLedger();
    const api = new FakeSyncApi({
      answer: (c) => (c.ids.includes('u-3') ? { status: 500 } : { status: 200 }),
    });
    const result = await runLocal(request({ ids: ids(30), job: 'delete-keycloak-users', next: 'delete' }), {
      ids: new MemoryIdSource({}),
      ledger,
      syncApi: api,
      stage: () => new MemoryQueue(Number.MAX_SAFE_INTEGER),
    });
    const retry = await retryRequest(ledger, result.runId, 'ks');
    assert.deepEqual(retry?.ids, ids(10));
    assert.equal(retry?.job, 'sync');
    assert.equal(retry?.next, undefined, 'a retry never repeats a later stage');
    assert.equal(retry?.parentRun, result.runId);
  });

  test('retry of a run with no failures is nothing; of an unknown run, bad input', async () => {
    const ledger = new MemoryRunLedger();
    const result = await runLocal(request({ ids: ids(5) }), {
      ids: new MemoryIdSource({}),
      ledger,
      syncApi: new FakeSyncApi(),
    });
    assert.equal(await retryRequest(ledger, result.runId, 'ks'), null);
    await assert.rejects(retryRequest(ledger, 'nope', 'ks'), RunNotFoundError);
  });
});

describe('local runs', () => {
  const table = ids(1_234);

  test('a full scan syncs every id of the table exactly once and the ledger says the run is complete', async () => {
    const ledger = new MemoryRunLedger();
    const api = new FakeSyncApi();
    const result = await runLocal(
      request({ plan: { splitsPerRange: 2 } }),
      { ids: new MemoryIdSource({ 'ks.user': table }), ledger, syncApi: api },
      {},
      { workerConcurrency: 3, scanConcurrency: 2, fetchSize: 33 },
    );
    assert.deepEqual([...api.ids].sort(), [...table].sort());
    assert.equal(result.idsEnumerated, table.length);
    assert.equal(result.idsSucceeded, table.length);
    const summary = await summarise(ledger, result.runId);
    assert.equal(summary?.complete, true);
    assert.equal(summary?.idsSucceeded, table.length);
    assert.equal(summary?.blocksPending, 0);
    assert.match(formatSummary(summary!), /: finished\n/);
  });

  test('failed blocks are counted and listed with their reason; the run still completes', async () => {
    const ledger = new MemoryRunLedger();
    const api = new FakeSyncApi({
      answer: (c) => (c.ids.includes('u-7') ? { status: 400 } : { status: 200 }),
    });
    const result = await runLocal(request({ ids: ids(40) }), {
      ids: new MemoryIdSource({}),
      ledger,
      syncApi: api,
    });
    assert.deepEqual([result.blocksFailed, result.idsFailed, result.idsSucceeded], [1, 10, 30]);
    const summary = await summarise(ledger, result.runId);
    assert.equal(summary?.failures.length, 10);
    assert.match(summary!.failures[0]!.reason, /^HTTP 400/);
    assert.match(formatSummary(summary!), /finished with failures/);
  });

  test('a dry run makes no call and records every block as dry-run', async () => {
    const ledger = new MemoryRunLedger();
    const api = new FakeSyncApi();
    const result = await runLocal(request({ dryRun: true }), {
      ids: new MemoryIdSource({ 'ks.user': table }),
      ledger,
      syncApi: api,
    });
    assert.equal(api.calls.length, 0);
    assert.equal(result.idsEnumerated, table.length);
    const summary = await summarise(ledger, result.runId);
    assert.equal(summary?.blocks['dry-run'], summary?.blocksExpected);
  });

  test('more given ids than the in-process queue holds still run (all blocks are enqueued up front)', async () => {
    const api = new FakeSyncApi();
    const result = await runLocal(request({ ids: ids(3_000), blockSize: 5 }), {
      ids: new MemoryIdSource({}),
      ledger: new MemoryRunLedger(),
      syncApi: api,
    });
    assert.equal(result.blocks, 600);
    assert.equal(api.calls.length, 600);
  });

  test('the Talend request numbers count real calls 1, 2, 3 … in order', async () => {
    const numbers: number[] = [];
    await runLocal(
      request({ ids: ids(50) }),
      { ids: new MemoryIdSource({}), ledger: new MemoryRunLedger(), syncApi: new FakeSyncApi() },
      { onCall: (_b, _r, n) => numbers.push(n) },
    );
    assert.deepEqual(numbers, [1, 2, 3, 4, 5]);
  });

  test('pacing holds across several workers: no two calls start closer than the sleep time', async () => {
    const clock = new ManualClock();
    const api = new FakeSyncApi({ now: () => clock.now() });
    await runLocal(
      request({ ids: ids(60), sleepMs: 2_000 }),
      {
        ids: new MemoryIdSource({}),
        ledger: new MemoryRunLedger(),
        syncApi: api,
        pacer: new FixedPacer(clock),
      },
      {},
      { workerConcurrency: 4 },
    );
    const at = api.calls.map((c) => c.at).sort((a, b) => a - b);
    for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! >= 2_000, String(at));
  });

  test('a stopped run hands every block it did not process to onSkipped, and calls the API for none of them', async () => {
    const ctl = new AbortController();
    const api = new FakeSyncApi({
      answer: () => {
        ctl.abort();
        return { status: 200 };
      },
    });
    const skipped: Block[] = [];
    const result = await runLocal(
      request({ ids: ids(50) }),
      { ids: new MemoryIdSource({}), ledger: new MemoryRunLedger(), syncApi: api },
      { onSkipped: (b) => void skipped.push(b) },
      { signal: ctl.signal },
    );
    assert.equal(api.calls.length, 1);
    assert.equal(result.blocks, 1);
    assert.deepEqual(
      skipped.map((b) => b.seq),
      [1, 2, 3, 4],
    );
  });

  test('a run that names a next stage hands its accepted blocks to that stage’s queue', async () => {
    const next = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    await runLocal(
      request({
        groups: [{ ids: ids(15), context: { realm: 'r' } }],
        next: 'delete',
        job: 'delete-keycloak-users',
      }),
      {
        ids: new MemoryIdSource({}),
        ledger: new MemoryRunLedger(),
        syncApi: new FakeSyncApi(),
        stage: () => next,
      },
    );
    const forwarded = await taken(next);
    assert.deepEqual(forwarded.flatMap((b) => b.ids).sort(), ids(15).sort());
    assert.ok(forwarded.every((b) => b.context?.realm === 'r' && b.run.next === 'delete'));
  });

  test('a block of another run on a shared queue is handed back untouched, and a malformed one is skipped', async () => {
    const shared = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    await shared.send(['{"type":"block"', JSON.stringify(block({}, { runId: 'someone-else' }))]);
    const logs: string[] = [];
    const api = new FakeSyncApi();
    const result = await runLocal(
      request({ ids: ids(20) }),
      { ids: new MemoryIdSource({}), ledger: new MemoryRunLedger(), syncApi: api, blocks: shared },
      { log: (m) => logs.push(m) },
    );
    assert.equal(result.idsSucceeded, 20);
    assert.ok(!api.ids.includes('a'), 'the other run’s ids were not synced by this run');
    assert.match(logs.join('\n'), /skipping malformed message/);
  });
});
