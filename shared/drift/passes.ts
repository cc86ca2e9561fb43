/**
 * The two streams a diff is made of, each in bounded memory: every page of the Cassandra table (the
 * sync job's token-range scan: `planRanges` and the id source's pages, a few sub-ranges at a time) and
 * every page of the index (one consistent listing). Each hands its pages to a callback and reads the
 * next page meanwhile; a failure anywhere stops the others at their next page.
 */
import { forEachLimit } from '#shared/core/concurrency.ts';
import { isRetryable } from '#shared/core/errors.ts';
import { DEFAULT_RETRY, withRetry } from '#shared/core/retry.ts';
import type { IndexedDoc, SearchIndex } from '#shared/search/ports.ts';
import type { IdSource, RowLookup } from '#shared/sync/ports.ts';
import { DEFAULT_FETCH_SIZE, type PlanOptions, planRanges } from '#shared/sync/scan.ts';

export interface DiffDeps {
  ids: IdSource;
  rows: RowLookup;
  search: SearchIndex;
}

export interface StreamOptions {
  keyspace: string;
  table: string;
  index: string;
  /** Token sub-ranges read at once. */
  scanConcurrency?: number;
  /** Ids per Cassandra page. */
  fetchSize?: number;
  /** Documents per page of the index listing. */
  indexPageSize?: number;
  plan?: PlanOptions;
}

/** The first failure of any stream; the others stop at their next page. */
export class Stop {
  error: { error: unknown } | undefined;
  get stopped(): boolean {
    return this.error !== undefined;
  }
  fail(error: unknown): never {
    this.error ??= { error };
    throw error;
  }
}

/**
 * Cassandra reads are idempotent (a page from its paging state, a look-up by key): a transient failure
 * — an overloaded node dropping a read, seen here as "1 failed" — is retried with the one retry policy
 * before a long diff gives up. Bad input is not retried.
 */
export function retryingReads(deps: DiffDeps): DiffDeps {
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

/** Every page of the table's ids; returns the number of token sub-ranges read. */
export async function eachCassandraPage(
  o: StreamOptions,
  ids: IdSource,
  stop: Stop,
  handle: (ids: string[]) => Promise<void>,
): Promise<number> {
  const ranges = await planRanges(ids, o.keyspace, o.table, o.plan);
  const fetchSize = o.fetchSize ?? DEFAULT_FETCH_SIZE;
  const scan = async (range: (typeof ranges)[number]): Promise<void> => {
    const fetch = (state: string | null) => ids.page(o.keyspace, o.table, range, state, fetchSize);
    let page = await fetch(null);
    while (!stop.stopped) {
      const next = page.next ? fetch(page.next) : undefined;
      next?.catch(() => undefined);
      await handle(page.ids);
      if (!next) return;
      page = await next;
    }
  };
  // A failing range stops the others at their next page (not only at the end of their range).
  await forEachLimit(ranges, o.scanConcurrency ?? 4, (range) => scan(range).catch((e) => stop.fail(e)));
  return ranges.length;
}

/** Every page of the index; the engine's scroll or point in time is released however it ends. */
export async function eachIndexPage(
  o: StreamOptions,
  search: SearchIndex,
  stop: Stop,
  handle: (docs: IndexedDoc[]) => Promise<void>,
): Promise<void> {
  const pages = search.list(o.index, { pageSize: o.indexPageSize ?? 10_000 })[Symbol.asyncIterator]();
  try {
    let next = pages.next();
    while (!stop.stopped) {
      const page = await next;
      if (page.done) return;
      next = pages.next();
      next.catch(() => undefined);
      await handle(page.value);
    }
  } catch (err) {
    stop.fail(err);
  } finally {
    await pages.return?.(undefined);
  }
}
