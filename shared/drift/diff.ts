/**
 * The diff between a Cassandra table and its search index, in bounded memory whatever their sizes
 * (passes.ts reads both as streams of pages). Ids found go straight to the sink (files on disk); the
 * diff keeps only counts and fixed-size structures: two digests of id sets (digest.ts, 3 MB each) and,
 * without --stale, a Bloom filter of the index's ids (bloom.ts, at most 64 MB).
 *
 * Without --stale (one look-up per id avoided):
 * 1. The index is listed into the Bloom filter and a digest (`listed`).
 * 2. Cassandra is scanned. An id the filter does not hold is certainly not in the listing: it is looked
 *    up in the index (real time, so a document indexed since the listing counts) and is missing if the
 *    index lacks it. An id the filter holds is taken as indexed and goes into a second digest (`claimed`).
 * With --stale every page is looked up instead (the dates must be compared anyway): the index listing and
 * the scan run at once, and `claimed` holds the ids the look-ups found.
 *
 * Every claimed id has a row. So wherever `claimed` and `listed` agree, bucket by bucket, the index holds
 * no orphan (and no claimed id is a false positive of the filter). Only where they differ:
 * 3. the index is listed again and the documents of those buckets are looked up in Cassandra by key:
 *    those without a row are the orphans, and are added to `claimed`;
 * 4. if buckets still differ, the filter has let a missing id pass as indexed (about one in a million
 *    missing ids): Cassandra is scanned again and the claimed ids of those buckets are looked up.
 * With no orphans (the usual case) the diff is one listing and one scan; look-ups are as many as needed.
 */
import { BloomFilter } from '#shared/drift/bloom.ts';
import { type CheckDeps, checkIds } from '#shared/drift/check.ts';
import { IdDigest } from '#shared/drift/digest.ts';
import type { DiffKind } from '#shared/drift/outputs.ts';
import {
  type DiffDeps,
  eachCassandraPage,
  eachIndexPage,
  retryingReads,
  Stop,
  type StreamOptions,
} from '#shared/drift/passes.ts';

export type { DiffDeps };

export interface DiffRequest extends StreamOptions {
  /** Also find documents older than their rows (`stale.txt`). */
  stale: boolean;
  /** Digest size (2^bits buckets); more buckets, fewer documents checked per differing bucket. */
  digestBits?: number;
  /** Most memory of the Bloom filter of the index's ids. */
  bloomMaxBytes?: number;
}

export interface DiffSink {
  write(kind: DiffKind, ids: readonly string[]): Promise<void>;
}

export interface DiffCounts {
  /** Ids read from Cassandra. */
  cassandraIds: number;
  /** Documents read from the index (first listing). */
  indexDocs: number;
  missing: number;
  orphans: number;
  stale: number;
  /** Ids looked up in the index. */
  indexLookups: number;
  /** Documents looked up in Cassandra (those in buckets where the two sides differ). */
  docsLookedUp: number;
}

export interface DiffResult extends DiffCounts {
  durationMs: number;
  ranges: number;
  /** Digest buckets where the two sides differed after the first pass (0: nothing more to check). */
  bucketsDiffering: number;
  /** How long each step took, in ms, in order (`list+scan` when they ran at once, with --stale). */
  steps: Record<string, number>;
}

export interface DiffHooks {
  /** After each page, with the running counts. */
  onProgress?: (counts: Readonly<DiffCounts>) => void;
  /** A further pass starts over the buckets that differ. */
  onPass?: (pass: 'orphans' | 'recheck', buckets: number) => void;
}

interface Run {
  req: DiffRequest;
  deps: DiffDeps;
  sink: DiffSink;
  counts: DiffCounts;
  hooks: DiffHooks;
  stop: Stop;
}

async function missingFound(run: Run, ids: string[]): Promise<void> {
  await run.sink.write('missing', ids);
  run.counts.missing += ids.length;
}

/** The ids among `ids` the index lacks, by real-time look-up. */
async function absent(run: Run, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  run.counts.indexLookups += ids.length;
  const found = await run.deps.search.lookup(run.req.index, ids);
  return ids.filter((id) => !found.has(id));
}

/** Step 2 without --stale: only the ids the Bloom filter does not hold are looked up. */
function checkAbsent(run: Run, bloom: BloomFilter, claimed: IdDigest): Promise<number> {
  return eachCassandraPage(run.req, run.deps.ids, run.stop, async (ids) => {
    const candidates: string[] = [];
    for (const id of ids) {
      if (bloom.has(id)) claimed.add(id);
      else candidates.push(id);
    }
    await missingFound(run, await absent(run, candidates));
    run.counts.cassandraIds += ids.length;
    run.hooks.onProgress?.(run.counts);
  });
}

/** Step 2 with --stale: every page looked up, with the documents' and the rows' dates. */
function checkEveryPage(run: Run, claimed: IdDigest): Promise<number> {
  const { req, deps } = run;
  const check: CheckDeps = { search: deps.search, rows: deps.rows, indexOf: () => req.index };
  return eachCassandraPage(req, deps.ids, run.stop, async (ids) => {
    const r = await checkIds(ids, req, check, true);
    await missingFound(run, r.missing);
    await run.sink.write('stale', r.stale);
    const missing = new Set(r.missing);
    for (const id of ids) if (!missing.has(id)) claimed.add(id);
    run.counts.indexLookups += ids.length;
    run.counts.cassandraIds += ids.length;
    run.counts.stale += r.stale.length;
    run.hooks.onProgress?.(run.counts);
  });
}

function listIndex(run: Run, listed: IdDigest, bloom?: BloomFilter): Promise<void> {
  return eachIndexPage(run.req, run.deps.search, run.stop, async (docs) => {
    for (const d of docs) {
      listed.add(d.id);
      bloom?.add(d.id);
    }
    run.counts.indexDocs += docs.length;
    run.hooks.onProgress?.(run.counts);
  });
}

/** Step 3: the documents of the differing buckets, looked up in Cassandra; orphans join `claimed`. */
function findOrphans(run: Run, listed: IdDigest, differing: Uint8Array, claimed: IdDigest): Promise<void> {
  return eachIndexPage(run.req, run.deps.search, run.stop, async (docs) => {
    const ids = docs.map((d) => d.id).filter((id) => differing[listed.bucketOf(id)] === 1);
    if (ids.length === 0) return;
    const rows = await run.deps.rows.rows(run.req.keyspace, run.req.table, ids);
    const orphans = ids.filter((id) => !rows.has(id));
    await run.sink.write('orphans', orphans);
    claimed.addAll(orphans);
    run.counts.docsLookedUp += ids.length;
    run.counts.orphans += orphans.length;
    run.hooks.onProgress?.(run.counts);
  });
}

/** Step 4: the claimed ids of the buckets that still differ, looked up in the index. */
async function recheckClaimed(run: Run, bloom: BloomFilter, digest: IdDigest, differing: Uint8Array) {
  await eachCassandraPage(run.req, run.deps.ids, run.stop, async (ids) => {
    const suspects = ids.filter((id) => differing[digest.bucketOf(id)] === 1 && bloom.has(id));
    await missingFound(run, await absent(run, suspects));
    run.hooks.onProgress?.(run.counts);
  });
}

/** Runs both streams at once; the first failure stops the other and is thrown. */
async function both<T>(stop: Stop, a: Promise<unknown>, b: Promise<T>): Promise<T> {
  const guard = <U>(p: Promise<U>) => p.catch((err: unknown) => stop.fail(err));
  const [, second] = await Promise.allSettled([guard(a), guard(b)]);
  if (stop.error) throw stop.error.error;
  return (second as PromiseFulfilledResult<T>).value;
}

export async function runDiff(
  req: DiffRequest,
  deps: DiffDeps,
  sink: DiffSink,
  hooks: DiffHooks = {},
): Promise<DiffResult> {
  const started = Date.now();
  await deps.search.requireIndex(req.index);
  const counts: DiffCounts = {
    ...{ cassandraIds: 0, indexDocs: 0, missing: 0, orphans: 0, stale: 0 },
    ...{ indexLookups: 0, docsLookedUp: 0 },
  };
  const run: Run = { req, deps: retryingReads(deps), sink, counts, hooks, stop: new Stop() };
  const listed = new IdDigest(req.digestBits);
  const claimed = new IdDigest(req.digestBits);
  let bloom: BloomFilter | undefined;
  let ranges = 0;
  const steps: Record<string, number> = {};
  const step = async (name: string, work: () => Promise<unknown>) => {
    const at = Date.now();
    await work();
    steps[name] = Date.now() - at;
  };
  if (req.stale) {
    await step('list+scan', async () => {
      ranges = await both(run.stop, listIndex(run, listed), checkEveryPage(run, claimed));
    });
  } else {
    bloom = new BloomFilter(await deps.search.count(req.index), req.bloomMaxBytes);
    await step('list', () => listIndex(run, listed, bloom));
    await step('scan', async () => {
      ranges = await checkAbsent(run, bloom!, claimed).catch((err: unknown) => run.stop.fail(err));
    });
  }
  const first = claimed.differing(listed);
  if (first.count > 0) {
    hooks.onPass?.('orphans', first.count);
    await step('orphans', () => findOrphans(run, listed, first.buckets, claimed));
    const still = claimed.differing(listed);
    if (bloom && still.count > 0) {
      hooks.onPass?.('recheck', still.count);
      await step('recheck', () => recheckClaimed(run, bloom!, listed, still.buckets));
    }
  }
  return { ...counts, ranges, bucketsDiffering: first.count, steps, durationMs: Date.now() - started };
}
