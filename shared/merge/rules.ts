/**
 * The merge rules of merge-user-courses (jobs.md §3), as pure functions: snapshots in, a list of
 * idempotent writes out. Nothing here reads or writes a store, so the same plan can be persisted,
 * re-applied after a crash, and tested without Cassandra.
 */
import { parseTextDate } from '#shared/core/dates.ts';
import type { MergePlan, MergeSnapshot, PlanSummary, Row, TableRole, WriteOp } from '#shared/merge/types.ts';

/** Each table's partition key in Sunbird's schema: writes that share one can travel as one batch. */
export const PARTITION_KEYS: Readonly<Record<TableRole, readonly string[]>> = {
  consumption: ['userid'],
  enrolments: ['userid'],
  activityAgg: ['activity_type', 'activity_id', 'user_id'],
};

type Pick2 = (from: unknown, to: unknown) => unknown;

const isNil = (v: unknown): v is null | undefined => v === null || v === undefined;

/** "If one side is null the other wins"; otherwise `pick` decides. */
function nullSafe(pick: (from: unknown, to: unknown) => unknown): Pick2 {
  return (from, to) => {
    if (isNil(from)) return to ?? null;
    if (isNil(to)) return from;
    return pick(from, to);
  };
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const time = (v: unknown): number => (v instanceof Date ? v.getTime() : new Date(v as string).getTime());

export const maxOf: Pick2 = nullSafe((from, to) => (num(from) > num(to) ? from : to));
export const sumOf: Pick2 = nullSafe((from, to) => num(from) + num(to));
/** Latest of two timestamps; a tie keeps the to-row's value. */
export const latestOf: Pick2 = nullSafe((from, to) => (time(from) > time(to) ? from : to));

export { parseTextDate };

/** Latest of two text dates when both parse; if one does not parse, the other is kept; neither → to. */
export const latestTextDate: Pick2 = nullSafe((from, to) => {
  const f = parseTextDate(String(from));
  const t = parseTextDate(String(to));
  if (f === undefined) return to;
  if (t === undefined) return from;
  return f > t ? from : to;
});

/** Column rules for user_content_consumption; every column not listed keeps the to-row's value. */
export const CONSUMPTION_RULES: Readonly<Record<string, Pick2>> = {
  status: maxOf,
  progress: maxOf,
  viewcount: sumOf,
  completedcount: sumOf,
  datetime: latestOf,
  last_access_time: latestOf,
  last_completed_time: latestOf,
  last_updated_time: latestOf,
  lastaccesstime: latestTextDate,
  lastcompletedtime: latestTextDate,
  lastupdatedtime: latestTextDate,
};

export const CONSUMPTION_KEY = ['userid', 'courseid', 'batchid', 'contentid'] as const;
export const ENROLMENT_KEY = ['userid', 'courseid', 'batchid'] as const;
export const AGG_KEY = ['activity_type', 'activity_id', 'user_id', 'context_id'] as const;
export const COMPLETED_COUNT = 'completedCount';
/** The map column that says when each aggregate was last updated (the original job set it to now()). */
export const AGG_LAST_UPDATED = 'agg_last_updated';

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  return (a ?? null) === (b ?? null);
}

/** The to-row after merging `from` into it: only the rule columns may change. */
export function mergeConsumptionRow(from: Row, to: Row): Row {
  const merged: Row = { ...to };
  for (const [column, rule] of Object.entries(CONSUMPTION_RULES))
    merged[column] = rule(from[column], to[column]);
  return merged;
}

/** Columns whose value differs between two versions of a row. */
export function changedColumns(before: Row, after: Row, columns: readonly string[]): Row {
  const out: Row = {};
  for (const c of columns) if (!sameValue(before[c], after[c])) out[c] = after[c] ?? null;
  return out;
}

const lower = (v: unknown): string => String(v ?? '').toLowerCase();
/** courseid/batchid/contentid compared case-insensitively (as the original job did). */
export const consumptionMatchKey = (r: Row): string =>
  JSON.stringify([lower(r.courseid), lower(r.batchid), lower(r.contentid)]);

function pickKey(row: Row, key: readonly string[]): Row {
  return Object.fromEntries(key.map((k) => [k, row[k]]));
}

function asNumberMap(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/**
 * Step 1: user_content_consumption. Each from-row either becomes a copy for `to` or is merged into the
 * to-row with the same (courseid, batchid, contentid), compared case-insensitively. Merges accumulate, so
 * two from-rows that differ only in case both land in the one to-row.
 */
export function planConsumption(
  from: Row[],
  to: Row[],
  toId: string,
): { ops: WriteOp[]; copied: number; merged: number } {
  const original = new Map<string, Row>();
  const current = new Map<string, Row>();
  const inserted = new Set<string>();
  for (const row of to) {
    const k = consumptionMatchKey(row);
    if (!current.has(k)) {
      original.set(k, row);
      current.set(k, row);
    }
  }
  let merged = 0;
  for (const row of from) {
    const k = consumptionMatchKey(row);
    const target = current.get(k);
    if (target) {
      current.set(k, mergeConsumptionRow(row, target));
      if (!inserted.has(k)) merged++;
    } else {
      current.set(k, { ...row, userid: toId });
      inserted.add(k);
    }
  }
  const ops: WriteOp[] = [];
  for (const [k, row] of current) {
    if (inserted.has(k)) {
      ops.push({ kind: 'insert', table: 'consumption', row });
      continue;
    }
    const before = original.get(k)!;
    const set = changedColumns(before, row, Object.keys(CONSUMPTION_RULES));
    if (Object.keys(set).length > 0)
      ops.push({ kind: 'update', table: 'consumption', key: pickKey(before, CONSUMPTION_KEY), set });
  }
  return { ops, copied: inserted.size, merged };
}

/**
 * Step 2: user_activity_agg, for the courses of from's enrolments. Per (course, context_id) the to-row's
 * `completedCount` becomes the true max of both (Deviation: the original compared from with itself and
 * replaced the whole map), and `agg_last_updated.completedCount` becomes the plan's time (as the original
 * set it to now(); fixed in the plan, so a replay writes the same value). Written as map-entry puts, so
 * every other key of `aggregates`, `agg` and `agg_last_updated` stays.
 */
export function planActivityAgg(
  fromAgg: Row[],
  toAgg: Row[],
  courseIds: ReadonlySet<string>,
  toId: string,
  plannedAt: Date,
): WriteOp[] {
  const toByKey = new Map<string, Row>();
  for (const row of toAgg) toByKey.set(JSON.stringify([row.activity_id, row.context_id]), row);
  const ops: WriteOp[] = [];
  for (const row of fromAgg) {
    if (row.activity_type !== 'Course' || !courseIds.has(String(row.activity_id))) continue;
    const target = toByKey.get(JSON.stringify([row.activity_id, row.context_id]));
    const mapPut: Record<string, Record<string, unknown>> = {};
    for (const column of ['aggregates', 'agg']) {
      const fromValue = asNumberMap(row[column])[COMPLETED_COUNT];
      const toValue = asNumberMap(target?.[column])[COMPLETED_COUNT];
      const best = maxOf(fromValue, toValue);
      if (!isNil(best) && !sameValue(best, toValue)) mapPut[column] = { [COMPLETED_COUNT]: best };
    }
    if (Object.keys(mapPut).length === 0) continue;
    mapPut[AGG_LAST_UPDATED] = { [COMPLETED_COUNT]: plannedAt };
    const key = { ...pickKey(row, AGG_KEY), user_id: toId };
    ops.push({ kind: 'update', table: 'activityAgg', key, mapPut });
  }
  return ops;
}

/**
 * Step 3: user_enrolments. Every batch of `from` that `to` is not enrolled in (by batchid) is copied with
 * all its columns; where both have the batch, to's row is left untouched.
 */
export function planEnrolments(from: Row[], to: Row[], toId: string): { ops: WriteOp[]; kept: number } {
  const toBatches = new Set(to.map((r) => String(r.batchid)));
  const ops: WriteOp[] = [];
  let kept = 0;
  const seen = new Set<string>();
  for (const row of from) {
    const batch = String(row.batchid);
    if (toBatches.has(batch)) {
      kept++;
      continue;
    }
    if (seen.has(batch)) continue;
    seen.add(batch);
    ops.push({ kind: 'insert', table: 'enrolments', row: { ...row, userid: toId } });
  }
  return { ops, kept };
}

/** Courses whose activity aggregates are merged: those of from's enrolments. */
export function enrolledCourseIds(fromEnrolments: Row[]): Set<string> {
  return new Set(fromEnrolments.map((r) => String(r.courseid)).filter((c) => c !== 'null' && c !== ''));
}

/** The whole plan, computed once from the pre-merge snapshot, at `plannedAt`. */
export function computeMergePlan(snapshot: MergeSnapshot, toId: string, plannedAt: Date): MergePlan {
  const consumption = planConsumption(snapshot.fromConsumption, snapshot.toConsumption, toId);
  const agg = planActivityAgg(
    snapshot.fromAgg,
    snapshot.toAgg,
    enrolledCourseIds(snapshot.fromEnrolments),
    toId,
    plannedAt,
  );
  const enrolments = planEnrolments(snapshot.fromEnrolments, snapshot.toEnrolments, toId);
  const summary: PlanSummary = {
    consumptionCopied: consumption.copied,
    consumptionMerged: consumption.merged,
    enrolmentsCopied: enrolments.ops.length,
    enrolmentsKept: enrolments.kept,
    aggUpdated: agg.length,
  };
  return { ops: [...consumption.ops, ...agg, ...enrolments.ops], summary };
}
