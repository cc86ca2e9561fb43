/**
 * The sync job's scan core on the in-memory id source: planning the ring, enumerating a range page by page
 * into blocks, checkpoints and continuations, and the ledger's range progress.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryQueue } from '#shared/queue/queue.ts';
import { MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import { type Block, blockSchema, type RunSettings, type ScanTask } from '#shared/sync/messages.ts';
import { cutBlocks, cutRing, desiredTasks, planRanges, scanRange } from '#shared/sync/scan.ts';
import { inRange, MIN_TOKEN, rangeWidth, splitRange, tokenOf } from '#shared/sync/tokens.ts';

const RING = 2n ** 64n;
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

function task(
  range: { rangeNo: number; start: string; end: string },
  over: Partial<RunSettings> = {},
): ScanTask {
  return { type: 'scan', run: run(over), keyspace: 'ks', table: 'user', ...range };
}

async function drainBlocks(q: MemoryQueue): Promise<Block[]> {
  q.close();
  const out: Block[] = [];
  for (let b = await q.take(); b !== null; b = await q.take()) out.push(blockSchema.parse(JSON.parse(b)));
  return out;
}

/** Ranges tile the ring: contiguous, in order, covering every token exactly once. */
function assertTiles(ranges: Array<{ start: string; end: string }>): void {
  assert.equal(ranges[0]!.start, MIN_TOKEN);
  assert.equal(ranges.at(-1)!.end, MIN_TOKEN);
  for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i]!.start, ranges[i - 1]!.end);
  assert.equal(
    ranges.reduce((w, r) => w + rangeWidth(r), 0n),
    RING,
  );
}

describe('token ring', () => {
  test('a split range is tiled exactly by its parts, whatever the number of parts', () => {
    const range = { start: '-1000', end: '1000' };
    for (const n of [1, 2, 3, 7, 2000, 5000]) {
      const parts = splitRange(range, n);
      assert.equal(parts[0]!.start, '-1000');
      assert.equal(parts.at(-1)!.end, '1000');
      for (let i = 1; i < parts.length; i++) assert.equal(parts[i]!.start, parts[i - 1]!.end);
      assert.equal(
        parts.reduce((w, r) => w + rangeWidth(r), 0n),
        2000n,
      );
      assert.ok(parts.length <= Math.min(n, 2000));
    }
  });

  test('a range is (start, end]: the start token is outside, the end token inside; an end at MIN runs to the end of the ring', () => {
    assert.equal(inRange(5n, { start: '5', end: '10' }), false);
    assert.equal(inRange(10n, { start: '5', end: '10' }), true);
    assert.equal(inRange(2n ** 63n - 1n, { start: '5', end: MIN_TOKEN }), true);
    assert.equal(inRange(4n, { start: '5', end: MIN_TOKEN }), false);
  });

  test('the in-memory source hashes ids onto the whole ring and its vnode ranges tile it', async () => {
    const src = new MemoryIdSource({}, { vnodes: 16 });
    const ranges = await src.tokenRanges();
    assert.equal(ranges.length, 16);
    assertTiles(ranges);
    for (const id of ids(50)) assert.equal(ranges.filter((r) => inRange(tokenOf(id), r)).length, 1, id);
  });
});

describe('planning the scan', () => {
  test('a small table becomes one task (contiguous vnode ranges merged), as the original made two calls for 200 orgs', async () => {
    const src = new MemoryIdSource({ 'ks.organisation': ids(200, 'org') });
    const plan = await planRanges(src, 'ks', 'organisation', { blockSize: 100, minTasks: 64 });
    assert.equal(plan.length, 1);
    assertTiles(plan);
  });

  test('a large table gets at least minTasks tasks, and the tasks tile the ring', async () => {
    const src = new MemoryIdSource({ 'ks.user': [] });
    src.estimate = 1_000_000;
    const plan = await planRanges(src, 'ks', 'user', { blockSize: 100, minTasks: 64 });
    assert.ok(plan.length >= 64, String(plan.length));
    assert.deepEqual(
      plan.map((p) => p.rangeNo),
      plan.map((_, i) => i),
    );
    assertTiles(plan);
  });

  test('rows per task bound the tasks of a huge table', () => {
    assert.equal(desiredTasks(100_000_000, 16, { rowsPerTask: 2_000_000, minTasks: 64, blockSize: 100 }), 64);
    assert.equal(
      desiredTasks(400_000_000, 16, { rowsPerTask: 2_000_000, minTasks: 64, blockSize: 100 }),
      200,
    );
    assert.equal(desiredTasks(0, 16, { minTasks: 64 }), 1, 'an empty table is one task');
  });

  test('when the store has not sized the table, a probe of every vnode range estimates it', async () => {
    const src = new MemoryIdSource({ 'ks.user': ids(50_000) });
    src.estimate = 0;
    const plan = await planRanges(src, 'ks', 'user', { blockSize: 100, minTasks: 32 });
    assert.ok(plan.length >= 16, `a 50k table is not mistaken for a small one (${plan.length} tasks)`);
  });

  test('an unsized small table is counted exactly, so its task count does not depend on sampling luck', async () => {
    for (const seed of ['a', 'b', 'c', 'd']) {
      const src = new MemoryIdSource({ 'ks.user': ids(450, seed) });
      // 450 ids in blocks of 10 fill two tasks of 20 blocks, no more.
      assert.equal((await planRanges(src, 'ks', 'user', { blockSize: 10, minTasks: 4 })).length, 2, seed);
    }
  });

  test('splitsPerRange forces the number of sub-ranges', async () => {
    const src = new MemoryIdSource({}, { vnodes: 8 });
    assert.equal((await planRanges(src, 'ks', 'user', { splitsPerRange: 3 })).length, 24);
  });

  test('cutRing merges groups of contiguous ranges when fewer tasks are wanted', () => {
    const ranges = splitRange({ start: MIN_TOKEN, end: '0' }, 8);
    const merged = cutRing(ranges, 3);
    assert.equal(merged.length, 3);
    assert.equal(merged[0]!.start, MIN_TOKEN);
    assert.equal(merged.at(-1)!.end, '0');
  });
});

describe('scanning a range', () => {
  test('cutBlocks keeps a partial block as carry until the last page', () => {
    assert.deepEqual(cutBlocks(['a', 'b', 'c', 'd', 'e'], 2, false), {
      blocks: [
        ['a', 'b'],
        ['c', 'd'],
      ],
      carry: ['e'],
    });
    assert.deepEqual(cutBlocks(['a', 'b', 'c'], 2, true), { blocks: [['a', 'b'], ['c']], carry: [] });
    assert.deepEqual(cutBlocks([], 2, true), { blocks: [], carry: [] });
  });

  test('every id of the table is enqueued exactly once, in blocks of the run size numbered from 0 per range', async () => {
    const all = ids(2_345);
    const src = new MemoryIdSource({ 'ks.user': all });
    const plan = await planRanges(src, 'ks', 'user', { splitsPerRange: 2 });
    const q = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    for (const r of plan) {
      const res = await scanRange(task(r), { ids: src, queue: q, fetchSize: 37 });
      assert.equal(res.done, true);
    }
    const blocks = await drainBlocks(q);
    assert.deepEqual(blocks.flatMap((b) => b.ids).sort(), [...all].sort());
    for (const r of plan) {
      const mine = blocks.filter((b) => b.rangeNo === r.rangeNo);
      assert.deepEqual(
        mine.map((b) => b.seq),
        mine.map((_, i) => i),
      );
      // Only the last block of a range may be short: the carry joins pages into full blocks.
      for (const b of mine.slice(0, -1)) assert.equal(b.ids.length, 10);
      for (const b of mine) for (const id of b.ids) assert.ok(inRange(tokenOf(id), r));
    }
  });

  test('an empty range is done at once and sends nothing', async () => {
    const src = new MemoryIdSource({ 'ks.user': [] });
    const q = new MemoryQueue();
    const res = await scanRange(task({ rangeNo: 0, start: MIN_TOKEN, end: MIN_TOKEN }), {
      ids: src,
      queue: q,
    });
    assert.deepEqual(res, { done: true, ids: 0, blocks: 0 });
    assert.equal(q.size, 0);
  });

  test('out of time, the scan stops at a page boundary with a checkpoint; continuing from it loses and repeats nothing', async () => {
    const all = ids(500);
    const src = new MemoryIdSource({ 'ks.user': all }, { vnodes: 1 });
    const [range] = await src.tokenRanges();
    const q = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    let t: ScanTask = task({ rangeNo: 0, ...range! });
    let hops = 0;
    for (;;) {
      const res = await scanRange(t, { ids: src, queue: q, fetchSize: 45, shouldStop: () => true });
      if (res.done) break;
      hops++;
      assert.equal(res.continuation.checkpoint?.hops, hops);
      assert.ok(res.continuation.checkpoint?.pageState);
      t = res.continuation;
    }
    assert.ok(hops >= 10, 'one page per invocation');
    const blocks = await drainBlocks(q);
    assert.deepEqual(blocks.flatMap((b) => b.ids).sort(), [...all].sort());
    assert.deepEqual(
      blocks.map((b) => b.seq),
      blocks.map((_, i) => i),
      'block numbers continue across continuations',
    );
    assert.ok(
      blocks.slice(0, -1).every((b) => b.ids.length === 10),
      'the carry joins ids across invocations',
    );
  });

  test('a retried task (from its older checkpoint) re-sends the same blocks with the same numbers', async () => {
    const src = new MemoryIdSource({ 'ks.user': ids(300) }, { vnodes: 1 });
    const [range] = await src.tokenRanges();
    const first = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    const again = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    const t = task({ rangeNo: 3, ...range! });
    await scanRange(t, { ids: src, queue: first, fetchSize: 50 });
    await scanRange(t, { ids: src, queue: again, fetchSize: 50 });
    assert.deepEqual(await drainBlocks(again), await drainBlocks(first));
  });

  test('progress is checkpointed in the ledger per page and the range is marked done at the end', async () => {
    const src = new MemoryIdSource({ 'ks.user': ids(95) }, { vnodes: 1 });
    const [range] = await src.tokenRanges();
    const ledger = new MemoryRunLedger();
    const seen: number[] = [];
    await scanRange(task({ rangeNo: 0, ...range! }), {
      ids: src,
      queue: new MemoryQueue(Number.MAX_SAFE_INTEGER),
      ledger,
      fetchSize: 20,
      onPage: (p) => seen.push(p.ids),
    });
    assert.deepEqual(seen, [20, 20, 20, 20, 15]);
    const [progress] = await ledger.ranges('r1');
    assert.deepEqual(
      { ids: progress?.ids, blocks: progress?.blocks, done: progress?.done },
      { ids: 95, blocks: 10, done: true },
    );
  });

  test('reading ahead: the next page is requested while this page is enqueued, so pages are read once each', async () => {
    const src = new MemoryIdSource({ 'ks.user': ids(100) }, { vnodes: 1 });
    const [range] = await src.tokenRanges();
    await scanRange(task({ rangeNo: 0, ...range! }), {
      ids: src,
      queue: new MemoryQueue(1000),
      fetchSize: 10,
    });
    assert.equal(src.pagesRead, 10);
  });
});
