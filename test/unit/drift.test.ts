/**
 * Drift repair's cores on the in-memory adapters (no services): the per-batch index check and what
 * counts as stale, the digest that finds the buckets where Cassandra and the index differ, the diff
 * (missing, orphans, stale; an empty or missing index; an engine failing mid-way), its files, the sync
 * job's id filter that `--only-missing` stands on, and how the adapter picks its listing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { engineInfoOf, listingOf } from '#shared/clients/opensearch.ts';
import { BadInputError, ServiceUnavailableError } from '#shared/core/errors.ts';
import { BloomFilter } from '#shared/drift/bloom.ts';
import { checkIds, indexFor, isStale } from '#shared/drift/check.ts';
import { type DiffRequest, runDiff } from '#shared/drift/diff.ts';
import { IdDigest } from '#shared/drift/digest.ts';
import { DRIFT_FILTER, driftFilterName, driftFilters, filteredPlan } from '#shared/drift/filter.ts';
import { DiffFiles, type DiffKind } from '#shared/drift/outputs.ts';
import { startPayloadSchema } from '#shared/fanout/payload.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import { MemorySearchIndex } from '#shared/search/memory.ts';
import { runLocal } from '#shared/sync/local.ts';
import { FakeSyncApi, MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import { type Block, blockSchema } from '#shared/sync/messages.ts';
import type { IdSource } from '#shared/sync/ports.ts';
import { startRun } from '#shared/sync/run.ts';
import { planRanges, scanRange } from '#shared/sync/scan.ts';
import { summarise } from '#shared/sync/summary.ts';

const ids = (n: number, prefix = 'u'): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const date = (day: number) => `2024-01-${String(day).padStart(2, '0')} 10:00:00:000+0000`;
const sorted = (xs: Iterable<string>) => [...xs].sort();

/** A sink that keeps what a diff writes, by kind. */
function memorySink() {
  const got: Record<DiffKind, string[]> = { missing: [], orphans: [], stale: [] };
  return { got, write: async (kind: DiffKind, xs: readonly string[]) => void got[kind].push(...xs) };
}

function request(over: Partial<DiffRequest> = {}): DiffRequest {
  return {
    keyspace: 'ks',
    table: 'user',
    index: 'users',
    stale: false,
    fetchSize: 50,
    indexPageSize: 70,
    ...over,
  };
}

describe('drift: what counts as missing and stale', () => {
  test("a document is stale when the row's updateddate is later, or when only the row has one", () => {
    assert.equal(isStale(date(2), date(1)), true);
    assert.equal(isStale(date(1), date(1)), false);
    assert.equal(isStale(date(1), date(2)), false);
    assert.equal(isStale(date(1), null), true);
    assert.equal(isStale(null, date(1)), false);
    // Sunbird's offsets are honoured: 10:00+0530 is 04:30 UTC, earlier than 05:00 UTC.
    assert.equal(isStale('2024-01-01 10:00:00:000+0530', '2024-01-01 05:00:00:000+0000'), false);
    // An ISO date in the document compares by time; unreadable dates count when they differ.
    assert.equal(isStale(date(2), '2024-01-01T10:00:00.000Z'), true);
    assert.equal(isStale('garbled', 'garbled'), false);
    assert.equal(isStale('garbled', 'other'), true);
  });

  test('checkIds lists the ids the index lacks and, when asked, the stale ones, in the batch order', async () => {
    const search = new MemorySearchIndex({ users: { 'u-1': date(1), 'u-2': date(5), 'u-4': date(1) } });
    const rows = new MemoryIdSource({ 'ks.user': ['u-1', 'u-2', 'u-3', 'u-4'] });
    rows.setColumns('ks.user', { 'u-1': { updateddate: date(3) }, 'u-2': { updateddate: date(4) } });
    const deps = { search, rows, indexOf: () => 'users' };
    const target = { keyspace: 'ks', table: 'user' };
    const batch = ['u-4', 'u-3', 'u-2', 'u-1'];
    assert.deepEqual(await checkIds(batch, target, deps, false), { missing: ['u-3'], stale: [] });
    assert.equal(rows.lookedUp, 0, 'without stale, Cassandra is not read');
    // u-4's row has no updateddate: nothing says it changed.
    assert.deepEqual(await checkIds(batch, target, deps, true), { missing: ['u-3'], stale: ['u-1'] });
  });

  test("a table's index is the configured one, or userorg-service's alias", () => {
    assert.equal(indexFor('user'), 'user_alias');
    assert.equal(indexFor('organisation'), 'org_alias');
    assert.equal(indexFor('user', 'users-v3'), 'users-v3');
  });
});

describe('drift: the Bloom filter of the index ids', () => {
  test('never says "absent" for an added id; sized for one false positive in a million', () => {
    const added = ids(50_000);
    const bloom = new BloomFilter(added.length);
    for (const id of added) bloom.add(id);
    assert.ok(added.every((id) => bloom.has(id)));
    const others = ids(200_000, 'other');
    assert.ok(others.filter((id) => bloom.has(id)).length <= 2);
    assert.ok(bloom.bytes < 200_000, `${bloom.bytes} bytes for 50,000 ids`);
  });

  test('a cap on its memory holds whatever the count (the false-positive rate rises instead)', () => {
    const bloom = new BloomFilter(100_000_000, 1024);
    assert.equal(bloom.bytes, 1024);
    bloom.add('x');
    assert.equal(bloom.has('x'), true);
  });
});

describe('drift: the digest of an id set', () => {
  test('equal sets give equal digests whatever the order; one id more shows in exactly its bucket', () => {
    const all = ids(20_000);
    const a = new IdDigest(12);
    const b = new IdDigest(12);
    a.addAll(all);
    b.addAll([...all].reverse());
    assert.equal(a.differing(b).count, 0);
    b.add('orphan-1');
    const d = a.differing(b);
    assert.equal(d.count, 1);
    assert.equal(d.buckets[b.bucketOf('orphan-1')], 1);
  });

  test('swapping one id for another in the same bucket is still seen (sums, not only counts)', () => {
    const a = new IdDigest(4);
    const b = new IdDigest(4);
    const x = 'x-0';
    const y = ids(1000, 'y').find((id) => a.bucketOf(id) === a.bucketOf(x))!;
    a.add(x);
    b.add(y);
    assert.deepEqual(
      [a.differing(b).count, a.differing(b).buckets[a.bucketOf(x)]],
      [1, 1],
      'same count in the bucket, different ids',
    );
  });
});

describe('drift: the diff on in-memory adapters', () => {
  test('missing and orphans are exactly the ids removed from and added to the index', async () => {
    const table = ids(3000);
    const removed = table.filter((_, i) => i % 97 === 0);
    const added = ids(25, 'ghost');
    const src = new MemoryIdSource({ 'ks.user': table });
    const search = new MemorySearchIndex({
      users: [...table.filter((id) => !removed.includes(id)), ...added],
    });
    const sink = memorySink();
    const r = await runDiff(request(), { ids: src, rows: src, search }, sink);
    assert.deepEqual(sorted(sink.got.missing), sorted(removed));
    assert.deepEqual(sorted(sink.got.orphans), sorted(added));
    assert.deepEqual(
      [r.cassandraIds, r.indexDocs, r.missing, r.orphans],
      [3000, 3000 - removed.length + 25, removed.length, 25],
    );
    // Only the documents sharing a bucket with an orphan were looked up in Cassandra, not the index.
    assert.ok(r.docsLookedUp >= 25 && r.docsLookedUp < 200, `looked up ${r.docsLookedUp}`);
    assert.equal(search.openContexts, 0);
  });

  test('with no orphans the index is listed once and nothing is looked up in Cassandra', async () => {
    const table = ids(1000);
    const src = new MemoryIdSource({ 'ks.user': table });
    const search = new MemorySearchIndex({ users: table.slice(10) });
    const sink = memorySink();
    const r = await runDiff(request(), { ids: src, rows: src, search }, sink);
    assert.deepEqual(sorted(sink.got.missing), sorted(table.slice(0, 10)));
    assert.deepEqual([r.orphans, r.bucketsDiffering, r.docsLookedUp, src.lookedUp], [0, 0, 0, 0]);
    // The Bloom filter of the listing spares the look-ups: only the 10 ids it does not hold are asked for.
    assert.deepEqual([r.indexLookups, search.lookedUp], [10, 10]);
  });

  test('a Bloom filter too small to tell ids apart costs passes, never correctness', async () => {
    const table = ids(2000);
    const removed = table.filter((_, i) => i % 13 === 0);
    const added = ids(7, 'ghost');
    const src = new MemoryIdSource({ 'ks.user': table });
    const search = new MemorySearchIndex({
      users: [...table.filter((id) => !removed.includes(id)), ...added],
    });
    const sink = memorySink();
    const passes: string[] = [];
    const r = await runDiff(
      request({ bloomMaxBytes: 8, digestBits: 10 }),
      { ids: src, rows: src, search },
      sink,
      { onPass: (p) => passes.push(p) },
    );
    assert.deepEqual(sorted(sink.got.missing), sorted(removed));
    assert.deepEqual(sorted(sink.got.orphans), sorted(added));
    assert.deepEqual(
      passes,
      ['orphans', 'recheck'],
      'false positives of the filter were caught by the digests',
    );
    assert.ok(
      r.indexLookups > removed.length,
      'the recheck looked the claimed ids of the differing buckets up',
    );
  });

  test('--stale finds the rows updated after their documents were indexed', async () => {
    const table = ids(400);
    const src = new MemoryIdSource({ 'ks.user': table });
    const docs = Object.fromEntries(table.map((id) => [id, date(1)]));
    const search = new MemorySearchIndex({ users: docs });
    const updated = table.filter((_, i) => i % 50 === 7);
    src.setColumns('ks.user', Object.fromEntries(table.map((id) => [id, { updateddate: date(1) }])));
    src.setColumns('ks.user', Object.fromEntries(updated.map((id) => [id, { updateddate: date(9) }])));
    const sink = memorySink();
    const r = await runDiff(request({ stale: true }), { ids: src, rows: src, search }, sink);
    assert.deepEqual(sorted(sink.got.stale), sorted(updated));
    assert.deepEqual([r.missing, r.orphans, r.stale], [0, 0, updated.length]);
  });

  test('an index with no documents: every id is missing and there are no orphans', async () => {
    const table = ids(250);
    const src = new MemoryIdSource({ 'ks.user': table });
    const search = new MemorySearchIndex({ users: [] });
    const sink = memorySink();
    const r = await runDiff(request(), { ids: src, rows: src, search }, sink);
    assert.deepEqual(sorted(sink.got.missing), sorted(table));
    assert.deepEqual([r.indexDocs, r.orphans], [0, 0]);
  });

  test('a missing index is bad input naming it and the indices there are, before anything is read', async () => {
    const src = new MemoryIdSource({ 'ks.user': ids(10) });
    const search = new MemorySearchIndex({ org_alias: [], user_alias: [] });
    await assert.rejects(
      runDiff(request({ index: 'usr' }), { ids: src, rows: src, search }, memorySink()),
      (err: Error) =>
        err instanceof BadInputError && /"usr" not found.*org_alias, user_alias/.test(err.message),
    );
    assert.equal(src.pagesRead, 0);
  });

  test('a Cassandra read that fails once (an overloaded node dropping it) is retried, not fatal', async () => {
    const table = ids(600);
    const src = new MemoryIdSource({ 'ks.user': table });
    let failures = 0;
    const flaky: IdSource = {
      tokenRanges: () => src.tokenRanges(),
      estimateRows: () => src.estimateRows(),
      countIds: (...a) => src.countIds(...a),
      page: (...a) =>
        a[3] !== null && failures++ === 0
          ? Promise.reject(new Error('Server failure during read query'))
          : src.page(...a),
    };
    const search = new MemorySearchIndex({ users: table.slice(5) });
    const sink = memorySink();
    const r = await runDiff(request(), { ids: flaky, rows: src, search }, sink);
    assert.equal(failures > 1, true);
    assert.deepEqual([r.cassandraIds, sorted(sink.got.missing)], [600, sorted(table.slice(0, 5))]);
  });

  test('an engine failing mid-diff stops both sides and the error is thrown (the caller discards files)', async () => {
    const table = ids(5000);
    const src = new MemoryIdSource({ 'ks.user': table });
    const search = new MemorySearchIndex({ users: table });
    search.failAfter = 12;
    await assert.rejects(
      runDiff(request(), { ids: src, rows: src, search }, memorySink()),
      ServiceUnavailableError,
    );
    assert.ok(src.pagesRead < 100, `read ${src.pagesRead} of 100 pages after the failure`);
    assert.equal(search.openContexts, 0, 'the listing context is released');
  });
});

describe('drift: the diff files', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), `drift-files-${randomBytes(3).toString('hex')}-`));
    dirs.push(d);
    return d;
  };

  test('ids go to .partial files, renamed to their names only on commit', async () => {
    const dir = await tmp();
    const files = await DiffFiles.open(dir, ['missing', 'orphans']);
    await files.write('missing', ['a', 'ü-1']);
    await files.write('missing', ['b']);
    assert.deepEqual(sorted(await readdir(dir)), ['missing.txt.partial', 'orphans.txt.partial']);
    const paths = await files.commit();
    assert.deepEqual(sorted(await readdir(dir)), ['missing.txt', 'orphans.txt']);
    assert.equal(await readFile(paths.missing, 'utf8'), 'a\nü-1\nb\n');
    assert.equal(await readFile(paths.orphans, 'utf8'), '');
    assert.deepEqual(files.counts, { missing: 3, orphans: 0, stale: 0 });
  });

  test("a failed diff leaves nothing, and a new diff removes an earlier one's results first", async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'stale.txt'), 'old\n');
    await writeFile(join(dir, 'keep.csv'), 'mine\n');
    const files = await DiffFiles.open(dir, ['missing', 'orphans']);
    await files.write('orphans', ['x']);
    await files.abandon();
    assert.deepEqual(await readdir(dir), ['keep.csv']);
    await assert.rejects(access(join(dir, 'stale.txt')));
  });
});

describe('drift: sync only what the index lacks (the scan filter)', () => {
  const run = (over = {}) => ({
    runId: 'r1',
    job: 'sync',
    objectType: 'user' as const,
    dryRun: false,
    verify: false,
    blockSize: 10,
    sleepMs: 0,
    ...over,
  });

  test('the filter names: --stale alone is refused, --only-missing picks one of two', () => {
    assert.equal(driftFilterName({}), undefined);
    assert.equal(driftFilterName({ onlyMissing: true }), DRIFT_FILTER.missing);
    assert.equal(driftFilterName({ onlyMissing: true, stale: true }), DRIFT_FILTER.missingOrStale);
    assert.throws(() => driftFilterName({ stale: true }), BadInputError);
  });

  test('a filtered run is cut into few sub-ranges: each ends with a partial block', () => {
    assert.deepEqual(filteredPlan({ minTasks: 64, rowsPerTask: 2_000_000 }), {
      minTasks: 4,
      rowsPerTask: 2_000_000,
    });
    assert.deepEqual(filteredPlan({ minTasks: 2 }), { minTasks: 2 });
    assert.deepEqual(filteredPlan(undefined), { minTasks: 4 });
  });

  test('a filtered scan cuts only the kept ids into blocks, and counts what it read', async () => {
    const table = ids(1000);
    const src = new MemoryIdSource({ 'ks.user': table }, { vnodes: 1 });
    const missing = table.filter((_, i) => i % 40 === 3);
    const search = new MemorySearchIndex({ users: table.filter((id) => !missing.includes(id)) });
    const filters = driftFilters({ search, rows: src, indexOf: () => 'users' });
    const [range] = await planRanges(src, 'ks', 'user', { splitsPerRange: 1 });
    const queue = new MemoryQueue(10_000);
    let kept = 0;
    const r = await scanRange(
      { type: 'scan', run: run({ filter: DRIFT_FILTER.missing }), keyspace: 'ks', table: 'user', ...range! },
      {
        ids: src,
        queue,
        filters,
        fetchSize: 100,
        onPage: (p) => {
          kept += p.kept;
        },
      },
    );
    queue.close();
    const blocks: Block[] = [];
    for (let b = await queue.take(); b !== null; b = await queue.take())
      blocks.push(blockSchema.parse(JSON.parse(b)));
    assert.deepEqual(sorted(blocks.flatMap((b) => b.ids)), sorted(missing));
    assert.ok(
      blocks.slice(0, -1).every((b) => b.ids.length === 10),
      'full blocks, across pages',
    );
    assert.deepEqual([r.ids, kept], [1000, missing.length]);
  });

  test('a run naming a filter the scanning side cannot resolve is refused', async () => {
    const src = new MemoryIdSource({ 'ks.user': ids(5) }, { vnodes: 1 });
    const [range] = await planRanges(src, 'ks', 'user', { splitsPerRange: 1 });
    await assert.rejects(
      scanRange(
        {
          type: 'scan',
          run: run({ filter: DRIFT_FILTER.missing }),
          keyspace: 'ks',
          table: 'user',
          ...range!,
        },
        { ids: src, queue: new MemoryQueue(10) },
      ),
      /names filter "missing-from-index", which is not available here/,
    );
  });

  test('a local run sends exactly the missing and stale ids; the ledger tells checked from sent', async () => {
    const table = ids(800);
    const src = new MemoryIdSource({ 'ks.user': table });
    const missing = table.filter((_, i) => i % 33 === 0);
    const stale = table.filter((_, i) => i % 33 === 1);
    const present = table.filter((id) => !missing.includes(id));
    const search = new MemorySearchIndex({ users: Object.fromEntries(present.map((id) => [id, date(1)])) });
    src.setColumns('ks.user', Object.fromEntries(stale.map((id) => [id, { updateddate: date(2) }])));
    const ledger = new MemoryRunLedger();
    const syncApi = new FakeSyncApi();
    const result = await runLocal(
      { ...run({ filter: DRIFT_FILTER.missingOrStale }), table: 'user', keyspace: 'ks', source: 'test' },
      { ids: src, ledger, syncApi, filters: driftFilters({ search, rows: src, indexOf: () => 'users' }) },
    );
    assert.deepEqual(sorted(syncApi.ids), sorted([...missing, ...stale]));
    assert.deepEqual([result.idsEnumerated, result.idsKept], [800, missing.length + stale.length]);
    const summary = (await summarise(ledger, result.runId))!;
    assert.equal(summary.run.filter, DRIFT_FILTER.missingOrStale);
    assert.deepEqual([summary.idsEnumerated, summary.idsInBlocks], [800, missing.length + stale.length]);
  });

  test('a filter with given ids is refused: it applies to a full scan', async () => {
    const src = new MemoryIdSource({});
    const q = new MemoryQueue(10);
    await assert.rejects(
      startRun(
        { ...run({ filter: DRIFT_FILTER.missing }), table: 'user', keyspace: 'ks', source: 't', ids: ['a'] },
        { ids: src, ledger: new MemoryRunLedger(), scanQueue: q, blockQueue: q },
      ),
      BadInputError,
    );
  });

  test('the fan-out payload {"objectType":"user","onlyMissing":true} is accepted; the fixture is one', async () => {
    const p = startPayloadSchema.parse({ objectType: 'user', onlyMissing: true });
    assert.deepEqual([p.job, p.job === 'sync' && p.onlyMissing], ['sync', true]);
    const fixture = JSON.parse(
      await readFile(new URL('../../events/fanout-drift-repair-user.json', import.meta.url), 'utf8'),
    );
    const f = startPayloadSchema.parse(fixture);
    assert.deepEqual([f.job === 'sync' && f.onlyMissing, f.dryRun], [true, false]);
  });
});

describe('drift: how the adapter lists an index', () => {
  test('point in time on Elasticsearch ≥ 7.12 (_shard_doc), scroll otherwise unless pit is asked for', () => {
    const es = (v: string) => engineInfoOf({ version: { number: v } });
    const os = (v: string) => engineInfoOf({ version: { number: v, distribution: 'opensearch' } });
    assert.deepEqual(listingOf(es('8.15.0'), 'auto'), { kind: 'pit', sort: '_shard_doc' });
    assert.deepEqual(listingOf(es('7.11.2'), 'auto'), { kind: 'scroll', sort: '_doc' });
    assert.deepEqual(listingOf(es('6.8.23'), 'auto'), { kind: 'scroll', sort: '_doc' });
    assert.deepEqual(listingOf(os('2.19.4'), 'auto'), { kind: 'scroll', sort: '_doc' });
    assert.deepEqual(listingOf(os('2.19.4'), 'pit'), { kind: 'pit', sort: '_id' });
    assert.deepEqual(listingOf(es('8.15.0'), 'scroll'), { kind: 'scroll', sort: '_doc' });
    assert.throws(() => listingOf(os('1.3.0'), 'pit'), /no point in time.*--es-paging scroll/);
    assert.throws(() => engineInfoOf({}), BadInputError);
  });
});
