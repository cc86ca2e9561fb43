/**
 * Drift repair as a filter of the sync job (`sync --only-missing [--stale]`, the fan-out payload's
 * `onlyMissing`): each page the scan reads is checked against the search index and only the ids the
 * index lacks (and, with stale, those it holds in an older version) go on to be cut into blocks. The
 * run names the filter (`run.filter`), so the same run works in the CLI, through `--queue-url` and on
 * Lambda: whoever scans resolves the name with `driftFilters`.
 */
import { BadInputError } from '#shared/core/errors.ts';
import { type CheckDeps, checkIds } from '#shared/drift/check.ts';
import type { IdFilter } from '#shared/sync/ports.ts';

/** The filter names a run can carry. */
export const DRIFT_FILTER = {
  missing: 'missing-from-index',
  missingOrStale: 'missing-or-stale-in-index',
} as const;

/** The filter a request asks for, or undefined for a plain sync (stale alone means nothing). */
export function driftFilterName(opts: { onlyMissing?: boolean; stale?: boolean }): string | undefined {
  if (!opts.onlyMissing) {
    if (opts.stale) throw new BadInputError('--stale goes with --only-missing (or with diff)');
    return undefined;
  }
  return opts.stale ? DRIFT_FILTER.missingOrStale : DRIFT_FILTER.missing;
}

/**
 * Sub-ranges a filtered scan is cut into at least (instead of SCAN_MIN_TASKS). Each sub-range ends with
 * a partial block, and a filter keeps few ids per sub-range: with 1 % missing from a million users, 64
 * sub-ranges made 136 calls for 10,000 ids where 100 would do. Large tables still get one sub-range per
 * SCAN_ROWS_PER_TASK rows, where one partial block per sub-range costs little.
 */
export const FILTERED_MIN_TASKS = 4;

/** The scan planning of a filtered run: SCAN_MIN_TASKS lowered to FILTERED_MIN_TASKS. */
export function filteredPlan<P extends { minTasks?: number }>(plan: P | undefined): P & { minTasks: number } {
  return {
    ...(plan ?? ({} as P)),
    minTasks: Math.min(plan?.minTasks ?? FILTERED_MIN_TASKS, FILTERED_MIN_TASKS),
  };
}

/** The filter of a page: ids missing from the index (and stale ones), in the page's order. */
export function indexFilter(deps: CheckDeps, withStale: boolean): IdFilter {
  return {
    async keep(ids, target) {
      const r = await checkIds(ids, target, deps, withStale);
      if (r.stale.length === 0) return r.missing;
      const kept = new Set([...r.missing, ...r.stale]);
      return ids.filter((id) => kept.has(id));
    },
  };
}

/** Resolves a run's filter name (the scan's `filters` dependency); an unknown name is bad input. */
export function driftFilters(deps: CheckDeps): (name: string) => IdFilter {
  const missing = indexFilter(deps, false);
  const missingOrStale = indexFilter(deps, true);
  return (name) => {
    if (name === DRIFT_FILTER.missing) return missing;
    if (name === DRIFT_FILTER.missingOrStale) return missingOrStale;
    throw new BadInputError(`unknown id filter "${name}"`);
  };
}
