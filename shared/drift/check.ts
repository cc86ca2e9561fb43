/**
 * The one per-batch check both drift repairs stand on: of a batch of ids that have a row in Cassandra,
 * which does the search index lack (missing), and — when asked — which does it hold in an older version
 * than the row (stale: the row's `updateddate` is newer than the document's). One `_mget`-style look-up
 * per batch; for stale, one Cassandra look-up of the found ids' `updateddate`.
 */
import { parseTextDate } from '#shared/core/dates.ts';
import { DEFAULT_INDEX, type SearchIndex } from '#shared/search/ports.ts';
import type { RowLookup } from '#shared/sync/ports.ts';

/** The Cassandra column a row's last update is kept in (text, Sunbird's `yyyy-MM-dd HH:mm:ss:SSSZ`). */
export const UPDATED_COLUMN = 'updateddate';

export interface IndexTarget {
  keyspace: string;
  table: string;
}

export interface CheckDeps {
  search: SearchIndex;
  rows: RowLookup;
  /** The index holding a table's documents. */
  indexOf: (table: string) => string;
}

/** The configured index, or the one userorg-service writes a table's documents to. */
export function indexFor(table: string, configured = ''): string {
  if (configured) return configured;
  const index = DEFAULT_INDEX[table as keyof typeof DEFAULT_INDEX];
  if (!index) throw new Error(`no default index for table ${table}`);
  return index;
}

/** A last-update date in ms: Sunbird's text date, or an ISO date; undefined when unreadable. */
export function updatedAtMs(value: string): number | undefined {
  const text = parseTextDate(value);
  if (text !== undefined) return text;
  const iso = Date.parse(value);
  return Number.isNaN(iso) ? undefined : iso;
}

/**
 * Whether the document is older than the row: the row's date is later than the document's, or the row
 * has a date the document lacks. Dates that cannot be read count as stale when they differ (a resync of
 * such a row is cheap; missing it is not). A row without a date is never stale.
 */
export function isStale(rowUpdated: string | null, docUpdated: string | null): boolean {
  if (rowUpdated === null || rowUpdated === '') return false;
  if (docUpdated === null || docUpdated === '') return true;
  const row = updatedAtMs(rowUpdated);
  const doc = updatedAtMs(docUpdated);
  if (row !== undefined && doc !== undefined) return row > doc;
  return rowUpdated !== docUpdated;
}

export interface CheckResult {
  missing: string[];
  /** Only filled when the check was asked for stale documents. */
  stale: string[];
}

/** Checks Cassandra ids against the index; both lists keep the batch's order. */
export async function checkIds(
  ids: readonly string[],
  target: IndexTarget,
  deps: CheckDeps,
  withStale: boolean,
): Promise<CheckResult> {
  if (ids.length === 0) return { missing: [], stale: [] };
  const found = await deps.search.lookup(deps.indexOf(target.table), ids, { withUpdated: withStale });
  const missing = ids.filter((id) => !found.has(id));
  if (!withStale || found.size === 0) return { missing, stale: [] };
  const present = ids.filter((id) => found.has(id));
  const rows = await deps.rows.rows(target.keyspace, target.table, present, [UPDATED_COLUMN]);
  const stale = present.filter((id) => {
    const row = rows.get(id);
    // A row deleted since the scan read it is neither missing nor stale.
    return row !== undefined && isStale(row[UPDATED_COLUMN] ?? null, found.get(id)!.updated);
  });
  return { missing, stale };
}
