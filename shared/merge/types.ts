/** Shapes shared by the merge core, its store adapter and the trigger adapters. */

/** A Cassandra row as plain data: column name → value (Date for timestamps, objects for maps, arrays for lists). */
export type Row = Record<string, unknown>;

/** The three Sunbird tables the merge touches, by role; the adapter maps roles to configured table names. */
export type TableRole = 'consumption' | 'enrolments' | 'activityAgg';

/**
 * One idempotent write, with absolute values computed from the pre-merge snapshot.
 * - `insert`: upsert the whole row (null columns are left unset, never tombstoned);
 * - `update`: set the named columns (`set`) and/or put entries into map columns (`mapPut`) of one row;
 *   map puts keep every other key of the map.
 * Applying the same op twice leaves the same state as applying it once.
 */
export type WriteOp =
  | { kind: 'insert'; table: TableRole; row: Row }
  | {
      kind: 'update';
      table: TableRole;
      key: Row;
      set?: Row;
      mapPut?: Record<string, Record<string, unknown>>;
    };

/** Everything the merge rules need, read before any write. */
export interface MergeSnapshot {
  fromConsumption: Row[];
  toConsumption: Row[];
  fromEnrolments: Row[];
  toEnrolments: Row[];
  /** user_activity_agg rows of `from` for the courses of `from`'s enrolments (activity_type `Course`). */
  fromAgg: Row[];
  /** user_activity_agg rows of `to` for the same courses. */
  toAgg: Row[];
}

export interface PlanSummary {
  consumptionCopied: number;
  consumptionMerged: number;
  enrolmentsCopied: number;
  enrolmentsKept: number;
  aggUpdated: number;
}

export interface MergePlan {
  ops: WriteOp[];
  summary: PlanSummary;
}

export interface MergeRequest {
  fromAccountId: string;
  toAccountId: string;
}

export type JournalStatus = 'planned' | 'applied';

/** One row of the merge journal (ops keyspace), keyed by (fromId, toId). */
export interface JournalEntry {
  fromId: string;
  toId: string;
  planId: string;
  status: JournalStatus;
  chunkCount: number;
  opCount: number;
  summary: PlanSummary;
  plannedAt: Date;
  appliedAt?: Date | undefined;
}
