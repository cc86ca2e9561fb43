/**
 * The diff between a Cassandra table and its search index, in bounded memory whatever their sizes.
 *
 * Pass 1 runs two sides at once:
 * - Cassandra → index (missing, stale): the table is read with the sync job's token-range scan (its
 *   `planRanges` and the id source's pages, a few sub-ranges at a time) and each page is checked against
 *   the index with one `_mget`-style look-up (`checkIds`). The ids the index holds go into a digest.
 *   Memory: one page per sub-range in flight.
 * - index → Cassandra: the index is listed from one consistent view (scroll or point in time) and every
 *   document id goes into a second digest. Memory: two pages.
 *
 * A document is an orphan when Cassandra has no row for it. Every id in the first digest has a row, so
 * where the two digests agree (bucket by bucket, see `digest.ts`) the index holds no orphan; only the
 * buckets where they differ are checked, in pass 2: the index is listed again and the documents of those
 * buckets are looked up in Cassandra by partition key. With no orphans (the usual case) pass 2 is
 * skipped; with many, it looks up as many documents as it must, page by page.
 *
 * Ids found go straight to the sink (files on disk); only counts and the fixed-size digests are kept.
 * When either side fails, the other stops at its next page and the first error is thrown, so the caller
 * can discard its outputs.
 */
import { forEachLimit } from '#shared/core/concurrency.ts';
import { isRetryable } from '#shared/core/errors.ts';
import { DEFAULT_RETRY, withRetry } from '#shared/core/retry.ts';
import { type CheckDeps, checkIds } from '#shared/drift/check.ts';
import { IdDigest } from '#shared/drift/digest.ts';
import type { DiffKind } from '#shared/drift/outputs.ts';
import type { IndexedDoc, SearchIndex } from '#shared/search/ports.ts';
import type { IdSource, RowLookup } from '#shared/sync/ports.ts';
import { DEFAULT_FETCH_SIZE, type PlanOptions, planRanges } from '#shared/sync/scan.ts';

export interface DiffDeps {
  ids: IdSource;
  rows: RowLookup;
  search: SearchIndex;
}

export interface DiffRequest {
  keyspace: string;
  table: string;
  index: string;
  /** Also find documents older than their rows (`stale.txt`). */
  stale: boolean;
  /** Token sub-ranges read at once. */
  scanConcurrency?: number;
  /** Ids per Cassandra page (and so per index look-up). */
  fetchSize?: number;
  /** Documents per page of the index listing. */
  indexPageSize?: number;
  /** Digest size (2^bits buckets); more buckets, fewer documents checked per differing bucket. */
  digestBits?: number;
  plan?: PlanOptions;
}

export interface DiffSink {
  write(kind: DiffKind, ids: readonly string[]): Promise<void>;
}

export interface DiffCounts {
  /** Ids read from Cassandra. */
  cassandraIds: number;
  /** Documents read from the index (pass 1). */
  indexDocs: number;
  missing: number;
  orphans: number;
  stale: number;
  /** Documents looked up in Cassandra in pass 2 (those in buckets where the two sides differ). */
  docsLookedUp: number;
}

export interface DiffResult extends DiffCounts {
  durationMs: number;
  ranges: number;
  /** Digest buckets where the two sides differed (0: pass 2 was not needed). */
  bucketsDiffering: number;
}

export interface DiffHooks {
  /** After each page of either side, with the running counts. */
  onProgress?: (counts: Readonly<DiffCounts>) => void;
  /** Pass 2 starts: this many buckets differ. */
  onOrphanCheck?: (buckets: number) => void;
}

/**
 * Cassandra reads are idempotent (a page from its paging state, a look-up by key): a transient failure
 * — an overloaded node dropping a read, seen here as "1 failed" — is retried with the one retry policy
 * before a long diff gives up. Bad input is not retried.
 */
function retryingReads(deps: DiffDeps): DiffDeps {
  const policy = { ...DEFAULT_RETRY, maxRetries: 3 };
  const again = <T>(read: () => Promise<T>) => withRetry(read, { policy, retryable: isRetryable });
  return {
    ...deps,
    ids: {
      tokenRanges: () => again(() => deps.ids.tokenRanges()),
      estimateRows: (ks, t) => deps.ids.estimateRows(ks, t),
      countIds: (ks, t, r, limit) => again(() => deps.ids.countIds(ks, t, r, limit)),
      page: (ks, t, r, state, size) => again(() => deps.ids.page(ks, t, r, state, size)),
    },
    rows: { rows: (ks, t, ids, columns) => again(() => deps.rows.rows(ks, t, ids, columns)) },
  };
}

/** Stops the other side once one has failed. */
class Stop {
  error: { error: unknown } | undefined;
  get stopped(): boolean {
    return this.error !== undefined;
  }
  fail(error: unknown): never {
    this.error ??= { error };
    throw error;
  }
}

interface Side {
  req: DiffRequest;
  deps: DiffDeps;
  sink: DiffSink;
  counts: DiffCounts;
  hooks: DiffHooks;
  stop: Stop;
}

async function cassandraSide(s: Side, found: IdDigest): Promise<number> {
  const { req, deps } = s;
  const ranges = await planRanges(deps.ids, req.keyspace, req.table, req.plan);
  const check: CheckDeps = { search: deps.search, rows: deps.rows, indexOf: () => req.index };
  const target = { keyspace: req.keyspace, table: req.table };
  const fetchSize = req.fetchSize ?? DEFAULT_FETCH_SIZE;
  const scan = async (range: (typeof ranges)[number]): Promise<void> => {
    const fetch = (state: string | null) => deps.ids.page(req.keyspace, req.table, range, state, fetchSize);
    let page = await fetch(null);
    while (!s.stop.stopped) {
      // Read the next page while this one is checked.
      const next = page.next ? fetch(page.next) : undefined;
      next?.catch(() => undefined);
      const r = await checkIds(page.ids, target, check, req.stale);
      await s.sink.write('missing', r.missing);
      if (req.stale) await s.sink.write('stale', r.stale);
      const missing = new Set(r.missing);
      for (const id of page.ids) if (!missing.has(id)) found.add(id);
      s.counts.cassandraIds += page.ids.length;
      s.counts.missing += r.missing.length;
      s.counts.stale += r.stale.length;
      s.hooks.onProgress?.(s.counts);
      if (!next) return;
      page = await next;
    }
  };
  // A failing range stops the others at their next page (not only at the end of their range).
  await forEachLimit(ranges, req.scanConcurrency ?? 4, (range) => scan(range).catch((e) => s.stop.fail(e)));
  return ranges.length;
}

/** Every page of the index, the next one fetched while the caller handles this one. */
async function eachIndexPage(s: Side, handle: (docs: IndexedDoc[]) => Promise<void>): Promise<void> {
  const pages = s.deps.search
    .list(s.req.index, { pageSize: s.req.indexPageSize ?? 10_000 })
    [Symbol.asyncIterator]();
  try {
    let next = pages.next();
    while (!s.stop.stopped) {
      const page = await next;
      if (page.done) return;
      next = pages.next();
      next.catch(() => undefined);
      await handle(page.value);
    }
  } finally {
    // Releases the engine's scroll or point in time, also when stopped early.
    await pages.return?.(undefined);
  }
}

async function indexSide(s: Side, listed: IdDigest): Promise<void> {
  await eachIndexPage(s, async (docs) => {
    for (const d of docs) listed.add(d.id);
    s.counts.indexDocs += docs.length;
    s.hooks.onProgress?.(s.counts);
  });
}

/** Pass 2: the documents of the differing buckets, looked up in Cassandra. */
async function orphanSide(s: Side, digest: IdDigest, differing: Uint8Array): Promise<void> {
  await eachIndexPage(s, async (docs) => {
    const ids = docs.map((d) => d.id).filter((id) => differing[digest.bucketOf(id)] === 1);
    if (ids.length === 0) return;
    const rows = await s.deps.rows.rows(s.req.keyspace, s.req.table, ids);
    const orphans = ids.filter((id) => !rows.has(id));
    await s.sink.write('orphans', orphans);
    s.counts.docsLookedUp += ids.length;
    s.counts.orphans += orphans.length;
    s.hooks.onProgress?.(s.counts);
  });
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
    cassandraIds: 0,
    indexDocs: 0,
    missing: 0,
    orphans: 0,
    stale: 0,
    docsLookedUp: 0,
  };
  const s: Side = { req, deps: retryingReads(deps), sink, counts, hooks, stop: new Stop() };
  const found = new IdDigest(req.digestBits);
  const listed = new IdDigest(req.digestBits);
  const guard = <T>(p: Promise<T>) => p.catch((err: unknown) => s.stop.fail(err));
  const [ranges] = await Promise.allSettled([guard(cassandraSide(s, found)), guard(indexSide(s, listed))]);
  if (s.stop.error) throw s.stop.error.error;
  const differing = found.differing(listed);
  if (differing.count > 0) {
    hooks.onOrphanCheck?.(differing.count);
    await orphanSide(s, listed, differing.buckets);
  }
  return {
    ...counts,
    ranges: ranges.status === 'fulfilled' ? ranges.value : 0,
    bucketsDiffering: differing.count,
    durationMs: Date.now() - started,
  };
}
