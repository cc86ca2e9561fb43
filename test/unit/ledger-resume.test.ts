/**
 * The run ledger's contract, held by both the in-memory and the embedded (SQLite) adapter, and resuming an
 * interrupted run from it: unscanned ranges from their checkpoints, pending blocks once more, nothing
 * confirmed twice.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openStateDb } from '#shared/clients/sqlite.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import { resumeLocal, runLocal } from '#shared/sync/local.ts';
import { FakeSyncApi, MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import type { RunSettings } from '#shared/sync/messages.ts';
import type { BlockOutcome, RunLedger } from '#shared/sync/ports.ts';
import { planResume } from '#shared/sync/resume.ts';
import { type StartRunRequest, startRun } from '#shared/sync/run.ts';
import { SqliteRunLedger } from '#shared/sync/sqlite-ledger.ts';
import { summarise } from '#shared/sync/summary.ts';

const ids = (n: number, prefix = 'u'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const run: RunSettings = {
  runId: 'r1',
  job: 'sync',
  objectType: 'user',
  dryRun: false,
  verify: false,
  blockSize: 3,
  sleepMs: 0,
};

function outcome(seq: number, over: Partial<BlockOutcome> = {}): BlockOutcome {
  return {
    rangeNo: 0,
    seq,
    stage: 'sync',
    status: 'succeeded',
    ids: ['a', 'b', 'c'],
    failedIds: [],
    reason: null,
    attempts: 1,
    httpStatus: 200,
    response: '{"responseCode":"OK"}',
    ...over,
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const ledgers: Array<[string, () => RunLedger]> = [
  ['in-memory', () => new MemoryRunLedger()],
  ['embedded (SQLite)', () => new SqliteRunLedger(openStateDb(mkdtempSync(join(tmpdir(), 'ledger-'))))],
];

for (const [name, make] of ledgers) {
  describe(`run ledger contract: ${name}`, () => {
    test('a run is recorded with its settings and found again; recent runs come newest first', async () => {
      const l = make();
      await l.createRun(run, { source: 'test', ranges: 2, params: { table: 'user' } });
      await new Promise((r) => setTimeout(r, 5));
      await l.createRun(
        { ...run, runId: 'r2', next: 'delete' },
        { source: 'test', ranges: 1, parentRun: 'r1' },
      );
      const r1 = await l.getRun('r1');
      assert.deepEqual(
        [r1?.blockSize, r1?.source, r1?.params.table, r1?.parentRun],
        [3, 'test', 'user', null],
      );
      assert.equal((await l.getRun('r2'))?.next, 'delete');
      assert.deepEqual(
        (await l.recentRuns(10)).map((r) => r.runId),
        ['r2', 'r1'],
      );
      assert.equal(await l.getRun('nope'), null);
    });

    test('a run’s optional settings (next stage, filter, pacing) come back as they were given', async () => {
      const l = make();
      const extras = {
        ...run,
        runId: 'r-x',
        next: 'delete',
        filter: 'missing-from-index',
        pace: 'auto' as const,
        maxRate: 2.5,
      };
      await l.createRun(extras, { source: 't', ranges: 1, params: { out: '/tmp/x' } });
      const got = await l.getRun('r-x');
      assert.deepEqual(
        [got?.next, got?.filter, got?.pace, got?.maxRate, got?.params.out],
        ['delete', 'missing-from-index', 'auto', 2.5, '/tmp/x'],
      );
      await l.createRun({ ...run, runId: 'r-plain' }, { source: 't', ranges: 1 });
      const plain = await l.getRun('r-plain');
      assert.deepEqual(
        [plain?.next, plain?.filter, plain?.pace, plain?.maxRate],
        [undefined, undefined, undefined, undefined],
      );
    });

    test('annotate merges into the run’s parameters', async () => {
      const l = make();
      await l.createRun(run, { source: 't', ranges: 1, params: { a: 1 } });
      await l.annotate('r1', { b: 2 });
      assert.deepEqual((await l.getRun('r1'))?.params, { a: 1, b: 2 });
    });

    test('range progress is an upsert and keeps its checkpoint', async () => {
      const l = make();
      const cp = { pageState: 'p1', nextSeq: 4, carry: ['x'], idsSoFar: 13, hops: 0 };
      await l.setRanges('r1', [
        { rangeNo: 1, start: '0', end: '9', ids: 0, blocks: 0, done: false, hops: 0 },
      ]);
      await l.setRanges('r1', [
        { rangeNo: 1, start: '0', end: '9', ids: 13, blocks: 4, done: false, hops: 0, checkpoint: cp },
      ]);
      const [r] = await l.ranges('r1');
      assert.deepEqual([r?.ids, r?.blocks, r?.checkpoint], [13, 4, cp]);
    });

    test('a block enqueued is pending until its outcome replaces it; an outcome is never downgraded to pending', async () => {
      const l = make();
      await l.enqueued('r1', [
        { rangeNo: 0, seq: 0, ids: ['a', 'b', 'c'], context: { realm: 'x' } },
        { rangeNo: 0, seq: 1, ids: ['d'] },
      ]);
      await l.recordBlock('r1', outcome(0, { context: { realm: 'x' } }));
      await l.enqueued('r1', [{ rangeNo: 0, seq: 0, ids: ['a', 'b', 'c'] }]); // a re-scanned page on resume
      const blocks = await collect(l.blocks('r1'));
      assert.deepEqual(
        blocks.map((b) => [b.seq, b.status, b.context?.realm]),
        [
          [0, 'succeeded', 'x'],
          [1, 'pending', undefined],
        ],
      );
      assert.deepEqual(blocks[1]?.ids, ['d']);
    });

    test('block outcomes are upserts by (stage, range, seq), read in order per stage, ids and failures intact', async () => {
      const l = make();
      await l.recordBlock(
        'r1',
        outcome(1, { status: 'failed', failedIds: ['a', 'b', 'c'], reason: 'HTTP 500' }),
      );
      await l.recordBlock('r1', outcome(0));
      await l.recordBlock('r1', outcome(1, { status: 'partial', failedIds: ['b'] }));
      await l.recordBlock('r1', outcome(0, { stage: 'delete', status: 'skipped' }));
      const sync = await collect(l.blocks('r1', 'sync'));
      assert.deepEqual(
        sync.map((b) => [b.seq, b.status, b.failedIds]),
        [
          [0, 'succeeded', []],
          [1, 'partial', ['b']],
        ],
      );
      assert.deepEqual(
        (await collect(l.blocks('r1', 'delete'))).map((b) => b.status),
        ['skipped'],
      );
    });

    test('a summary counts pending blocks as not yet done', async () => {
      const l = make();
      await l.createRun(run, { source: 't', ranges: 1 });
      await l.enqueued(
        'r1',
        [0, 1].map((seq) => ({ rangeNo: 0, seq, ids: ['a', 'b', 'c'] })),
        {
          rangeNo: 0,
          start: 'ids',
          end: 'ids',
          ids: 6,
          blocks: 2,
          done: true,
          hops: 0,
        },
      );
      await l.recordBlock('r1', outcome(0));
      const s = await summarise(l, 'r1');
      assert.deepEqual([s?.complete, s?.blocksPending, s?.blocks.pending, s?.idsSucceeded], [false, 1, 1, 3]);
    });

    test('a start key is claimed once: later claims get the holder’s run, busy within the lease, taken over past it or once released', async () => {
      const l = make();
      const lease = 1000;
      assert.deepEqual(await l.claimStart('evt-1', 'run-a', 10_000, lease), {
        runId: 'run-a',
        state: 'claimed',
      });
      assert.deepEqual(await l.claimStart('evt-1', 'run-b', 10_500, lease), {
        runId: 'run-a',
        state: 'busy',
      });
      assert.deepEqual(await l.claimStart('evt-1', 'run-b', 11_001, lease), {
        runId: 'run-a',
        state: 'claimed',
      });
      assert.deepEqual(await l.claimStart('evt-1', 'run-c', 11_002, lease), {
        runId: 'run-a',
        state: 'busy',
      });
      await l.releaseStart('evt-1');
      assert.deepEqual(await l.claimStart('evt-1', 'run-c', 11_003, lease), {
        runId: 'run-a',
        state: 'claimed',
      });
      await l.markStarted('evt-1');
      await l.releaseStart('evt-1');
      assert.deepEqual(await l.claimStart('evt-1', 'run-d', 99_999, lease), {
        runId: 'run-a',
        state: 'started',
      });
      assert.deepEqual(await l.claimStart('evt-2', 'run-e', 11_004, lease), {
        runId: 'run-e',
        state: 'claimed',
      });
    });
  });
}

describe('idempotent starts', () => {
  for (const [name, make] of ledgers) {
    test(`${name}: a start repeated with its key starts nothing and returns the first run; another key starts another run`, async () => {
      const ledger = make();
      const blockQueue = new MemoryQueue();
      const deps = { ids: new MemoryIdSource({}), ledger, scanQueue: new MemoryQueue(), blockQueue };
      const req = request({ ids: ids(25), idempotencyKey: 'key:evt-1' });
      const first = await startRun(req, deps);
      const again = await startRun(req, deps);
      assert.equal(first.duplicate, undefined);
      assert.deepEqual([again.duplicate, again.runId, again.blocks], ['started', first.runId, 0]);
      assert.equal(blockQueue.size, 3);
      const other = await startRun({ ...req, idempotencyKey: 'key:evt-2' }, deps);
      assert.notEqual(other.runId, first.runId);
      assert.equal(blockQueue.size, 6);
      assert.equal((await ledger.recentRuns(10)).length, 2);
    });
  }

  test('a start that failed is completed by the repeat, under the same run id; one still running is left alone', async () => {
    const ledger = new MemoryRunLedger();
    const blockQueue = new MemoryQueue();
    const deps = { ids: new MemoryIdSource({}), ledger, scanQueue: new MemoryQueue(), blockQueue };
    const req = request({ ids: ids(5), idempotencyKey: 'key:evt-1' });
    const failing = { ...deps, blockQueue: { send: async () => Promise.reject(new Error('queue down')) } };
    await assert.rejects(startRun(req, failing as never), /queue down/);
    const [first] = await ledger.recentRuns(1);
    const started = await startRun(req, deps);
    assert.deepEqual([started.runId, started.duplicate, started.blocks], [first!.runId, undefined, 1]);

    await ledger.claimStart('key:evt-2', 'sync-user-elsewhere', Date.now(), 60_000);
    const busy = await startRun({ ...req, idempotencyKey: 'key:evt-2' }, deps);
    assert.deepEqual([busy.runId, busy.duplicate, blockQueue.size], ['sync-user-elsewhere', 'busy', 1]);
  });
});

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

/** A Sync API that stops the run (as Ctrl-C would) after `n` calls. */
function stopAfter(n: number, ctl: AbortController): FakeSyncApi {
  return new FakeSyncApi({
    answer: (c) => {
      if (c && n-- <= 1) ctl.abort();
      return { status: 200 };
    },
  });
}

describe('resuming an interrupted run', () => {
  for (const [name, make] of ledgers) {
    test(`${name}: a full scan stopped part-way is completed by resume; every id synced, none confirmed twice`, async () => {
      const table = ids(2_000);
      const source = new MemoryIdSource({ 'ks.user': table });
      const ledger = make();
      const ctl = new AbortController();
      const first = stopAfter(30, ctl);
      const r1 = await runLocal(
        request({ plan: { splitsPerRange: 2 } }),
        { ids: source, ledger, syncApi: first },
        {},
        { signal: ctl.signal, workerConcurrency: 2, scanConcurrency: 2, fetchSize: 25 },
      );
      assert.equal(r1.interrupted, true);
      const before = await summarise(ledger, r1.runId);
      assert.equal(before?.complete, false);
      const plan = await planResume(ledger, r1.runId);
      assert.ok(plan.scanTasks.length > 0 || plan.pending.length > 0);
      const second = new FakeSyncApi();
      const r2 = await resumeLocal(
        plan,
        { ids: source, ledger, syncApi: second },
        {},
        { workerConcurrency: 2 },
      );
      assert.equal(r2.interrupted, false);
      assert.deepEqual([...new Set([...first.ids, ...second.ids])].sort(), [...table].sort());
      const twice = second.ids.filter((id) => first.ids.includes(id));
      assert.deepEqual(twice, [], 'a block whose outcome was recorded is not sent again');
      const after = await summarise(ledger, r1.runId);
      assert.deepEqual([after?.complete, after?.idsSucceeded, after?.blocksPending], [true, table.length, 0]);
    });
  }

  test('a block cancelled in flight stays pending and is the only one sent again', async () => {
    const ledger = new MemoryRunLedger();
    const stop = new AbortController();
    const cancel = new AbortController();
    let calls = 0;
    const api = new FakeSyncApi({
      answer: () => {
        if (++calls === 3) {
          stop.abort();
          cancel.abort(); // this call's outcome is lost with the process
        }
        return { status: 200 };
      },
    });
    const r1 = await runLocal(
      request({ ids: ids(50) }),
      { ids: new MemoryIdSource({}), ledger, syncApi: api },
      {},
      { signal: stop.signal, abort: cancel.signal },
    );
    const plan = await planResume(ledger, r1.runId);
    assert.deepEqual(
      plan.pending.map((b) => b.seq),
      [2, 3, 4],
      'the cancelled block and the never-started ones',
    );
    const again = new FakeSyncApi();
    await resumeLocal(plan, { ids: new MemoryIdSource({}), ledger, syncApi: again });
    assert.deepEqual(again.calls.length, 3);
    assert.equal((await summarise(ledger, r1.runId))?.complete, true);
  });

  test('new pacing on resume: new blocks use the new size; the ledger keeps the original settings', async () => {
    const ledger = new MemoryRunLedger();
    const source = new MemoryIdSource({ 'ks.user': ids(300) }, { vnodes: 1 });
    const ctl = new AbortController();
    const r1 = await runLocal(
      request({ blockSize: 10 }),
      { ids: source, ledger, syncApi: stopAfter(2, ctl) },
      {},
      { signal: ctl.signal, fetchSize: 40 },
    );
    const plan = await planResume(ledger, r1.runId, { blockSize: 25, sleepMs: 0 });
    assert.equal(plan.run.blockSize, 25);
    assert.equal((await ledger.getRun(r1.runId))?.blockSize, 10);
    const api = new FakeSyncApi();
    await resumeLocal(plan, { ids: source, ledger, syncApi: api });
    const sizes = api.calls.map((c) => c.ids.length);
    assert.ok(
      sizes.some((n) => n === 25),
      String(sizes),
    );
  });

  test('a run whose accepted blocks go on to a later stage: resume hands that stage the blocks it never got', async () => {
    const ledger = new MemoryRunLedger();
    const r = await runLocal(request({ ids: ids(20), next: 'delete', job: 'delete-keycloak-users' }), {
      ids: new MemoryIdSource({}),
      ledger,
      syncApi: new FakeSyncApi(),
      stage: () => new MemoryQueue(100), // a stage that lost its queue with the process
    });
    await ledger.recordBlock(r.runId, { ...outcome(0), ids: ids(10), stage: 'delete' });
    const plan = await planResume(ledger, r.runId);
    assert.deepEqual(
      plan.forward.map((b) => b.seq),
      [1],
    );
    assert.deepEqual(plan.pending, []);
  });

  test('an unknown run cannot be resumed (bad input)', async () => {
    await assert.rejects(planResume(new MemoryRunLedger(), 'nope'), /no run nope/);
  });
});
