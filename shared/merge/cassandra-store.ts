/**
 * The merge store on Cassandra: Sunbird's course tables plus the merge journal in the ops keyspace.
 * Every statement is prepared; reads and writes run at the client's consistency (LOCAL_QUORUM by
 * default), journal claims are lightweight transactions at LOCAL_SERIAL. Account reads page through
 * `pageState`, so accounts with thousands of rows never load one huge page.
 */
import cassandra from 'cassandra-driver';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { forEachLimit } from '#shared/core/concurrency.ts';
import { MergeDataError, type MergeStore } from '#shared/merge/merge.ts';
import { enrolledCourseIds } from '#shared/merge/rules.ts';
import type {
  JournalEntry,
  MergeSnapshot,
  PlanSummary,
  Row,
  TableRole,
  WriteOp,
} from '#shared/merge/types.ts';

const { consistencies, unset, responseErrorCodes } = cassandra.types;

/** 90 days: long enough for any retry policy; a `planned` merge older than that is reported, not redone. */
export const PLAN_TTL_SECONDS = 90 * 24 * 3600;

/** DDL of the merge bookkeeping tables (listed by `opsTables()` in shared/schema.ts). */
export function mergeTables(ks: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${ks}.merge_journal (
      from_id text, to_id text, plan_id text, status text, chunk_count int, op_count int,
      summary text, planned_at timestamp, applied_at timestamp,
      PRIMARY KEY ((from_id, to_id))
    )`,
    `CREATE TABLE IF NOT EXISTS ${ks}.merge_plan_chunk (
      from_id text, to_id text, plan_id text, chunk int, ops text,
      PRIMARY KEY ((from_id, to_id, plan_id, chunk))
    ) WITH default_time_to_live = ${PLAN_TTL_SECONDS}`,
  ];
}

export interface MergeTableNames {
  coursesKeyspace: string;
  opsKeyspace: string;
  consumption: string;
  enrolments: string;
  activityAgg: string;
}

export interface CassandraMergeStoreOptions {
  tables: MergeTableNames;
  /** Rows per page when reading an account. */
  fetchSize?: number;
  /** Concurrent reads of activity aggregates (slices of a user's courses). */
  readConcurrency?: number;
}

/** Partitions named in one `IN (…)` read of activity aggregates. */
const AGG_IN_SLICE = 50;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
function ident(name: string): string {
  if (!IDENT.test(name)) throw new MergeDataError(`not a CQL identifier: ${JSON.stringify(name)}`);
  return name;
}

function plainRow(row: cassandra.types.Row): Row {
  const out: Row = {};
  for (const k of row.keys()) out[k] = row.get(k);
  return out;
}

/** Cassandra rejected the statement itself (bad value for a column…): retrying will not help. */
function classify(err: unknown): unknown {
  if (
    err instanceof cassandra.errors.ResponseError &&
    (err.code === responseErrorCodes.invalid || err.code === responseErrorCodes.syntaxError)
  )
    return new MergeDataError(`Cassandra rejected a merge write: ${err.message}`);
  return err;
}

export class CassandraMergeStore implements MergeStore {
  readonly #client: CassandraClient;
  readonly #t: MergeTableNames;
  readonly #fetchSize: number;
  readonly #readConcurrency: number;
  readonly #queries = new Map<string, string>();

  constructor(client: CassandraClient, opts: CassandraMergeStoreOptions) {
    this.#client = client;
    this.#t = opts.tables;
    for (const name of Object.values(opts.tables)) ident(name);
    this.#fetchSize = opts.fetchSize ?? 1000;
    this.#readConcurrency = opts.readConcurrency ?? 16;
  }

  #table(role: TableRole): string {
    const name = {
      consumption: this.#t.consumption,
      enrolments: this.#t.enrolments,
      activityAgg: this.#t.activityAgg,
    }[role];
    return `${this.#t.coursesKeyspace}.${name}`;
  }

  #ops(table: string): string {
    return `${this.#t.opsKeyspace}.${table}`;
  }

  async #readAll(query: string, params: unknown[]): Promise<Row[]> {
    const rows: Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.#client.execute(query, params, {
        prepare: true,
        fetchSize: this.#fetchSize,
        ...(pageState ? { pageState } : {}),
      });
      for (const row of rs.rows) rows.push(plainRow(row));
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return rows;
  }

  async readJournal(fromId: string, toId: string): Promise<JournalEntry | undefined> {
    const rs = await this.#client.execute(
      `SELECT * FROM ${this.#ops('merge_journal')} WHERE from_id = ? AND to_id = ?`,
      [fromId, toId],
      { prepare: true, consistency: consistencies.localSerial },
    );
    const row = rs.first();
    return row ? journalFromRow(plainRow(row)) : undefined;
  }

  readConsumption(userId: string): Promise<Row[]> {
    return this.#readAll(`SELECT * FROM ${this.#table('consumption')} WHERE userid = ?`, [userId]);
  }

  readEnrolments(userId: string): Promise<Row[]> {
    return this.#readAll(`SELECT * FROM ${this.#table('enrolments')} WHERE userid = ?`, [userId]);
  }

  /**
   * Activity aggregates (`Course`) of one user for the given courses: one partition per course, read
   * with `activity_id IN (…)` in slices of AGG_IN_SLICE, so a user's courses are a round trip or two.
   */
  async readActivityAgg(userId: string, courseIds: Iterable<string>): Promise<Row[]> {
    const ids = [...courseIds];
    const slices: string[][] = [];
    for (let i = 0; i < ids.length; i += AGG_IN_SLICE) slices.push(ids.slice(i, i + AGG_IN_SLICE));
    const rows: Row[] = [];
    await forEachLimit(slices, this.#readConcurrency, async (slice) => {
      rows.push(
        ...(await this.#readAll(
          `SELECT * FROM ${this.#table('activityAgg')} WHERE activity_type = ? AND activity_id IN ? AND user_id = ?`,
          ['Course', slice, userId],
        )),
      );
    });
    return rows;
  }

  async readSnapshot(fromId: string, toId: string): Promise<MergeSnapshot> {
    const [fromConsumption, toConsumption, fromEnrolments, toEnrolments] = await Promise.all([
      this.readConsumption(fromId),
      this.readConsumption(toId),
      this.readEnrolments(fromId),
      this.readEnrolments(toId),
    ]);
    const courses = enrolledCourseIds(fromEnrolments);
    const [fromAgg, toAgg] = await Promise.all([
      this.readActivityAgg(fromId, courses),
      this.readActivityAgg(toId, courses),
    ]);
    return { fromConsumption, toConsumption, fromEnrolments, toEnrolments, fromAgg, toAgg };
  }

  async savePlanChunks(fromId: string, toId: string, planId: string, chunks: string[]): Promise<void> {
    const cql = `INSERT INTO ${this.#ops('merge_plan_chunk')} (from_id, to_id, plan_id, chunk, ops) VALUES (?, ?, ?, ?, ?)`;
    await forEachLimit([...chunks.entries()], 8, async ([i, ops]) => {
      await this.#client.execute(cql, [fromId, toId, planId, i, ops], { prepare: true });
    });
  }

  async claimPlan(entry: JournalEntry): Promise<JournalEntry> {
    const rs = await this.#client.execute(
      `INSERT INTO ${this.#ops('merge_journal')}
         (from_id, to_id, plan_id, status, chunk_count, op_count, summary, planned_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
      [
        entry.fromId,
        entry.toId,
        entry.planId,
        entry.status,
        entry.chunkCount,
        entry.opCount,
        JSON.stringify(entry.summary),
        entry.plannedAt,
      ],
      { prepare: true, serialConsistency: consistencies.localSerial },
    );
    if (rs.wasApplied()) return entry;
    const existing = await this.readJournal(entry.fromId, entry.toId);
    if (!existing)
      throw new Error(`merge journal claim for ${entry.fromId} → ${entry.toId} lost but no entry found`);
    return existing;
  }

  async loadPlanChunks(entry: JournalEntry): Promise<Array<string | undefined>> {
    const out: Array<string | undefined> = new Array(entry.chunkCount).fill(undefined);
    const cql = `SELECT ops FROM ${this.#ops('merge_plan_chunk')} WHERE from_id = ? AND to_id = ? AND plan_id = ? AND chunk = ?`;
    await forEachLimit([...out.keys()], 8, async (i) => {
      const rs = await this.#client.execute(cql, [entry.fromId, entry.toId, entry.planId, i], {
        prepare: true,
      });
      out[i] = (rs.first()?.get('ops') as string | null | undefined) ?? undefined;
    });
    return out;
  }

  async discardPlanChunks(fromId: string, toId: string, planId: string, chunkCount: number): Promise<void> {
    const cql = `DELETE FROM ${this.#ops('merge_plan_chunk')} WHERE from_id = ? AND to_id = ? AND plan_id = ? AND chunk = ?`;
    await forEachLimit([...Array(chunkCount).keys()], 8, async (i) => {
      await this.#client.execute(cql, [fromId, toId, planId, i], { prepare: true });
    });
  }

  /** The CQL of a write of this shape (built once per shape: a plan repeats a few shapes many times). */
  #query(op: WriteOp, cols: string[], sets: string[], puts: string[], keys: string[]): string {
    const shape = `${op.kind} ${op.table} ${cols.join(',')}|${sets.join(',')}|${puts.join(',')}|${keys.join(',')}`;
    let query = this.#queries.get(shape);
    if (query) return query;
    const table = this.#table(op.table);
    for (const c of [...cols, ...sets, ...puts, ...keys]) ident(c);
    if (op.kind === 'insert') {
      query = `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
    } else {
      const assignments = [...sets.map((c) => `${c} = ?`), ...puts.map((c) => `${c} = ${c} + ?`)];
      query = `UPDATE ${table} SET ${assignments.join(', ')} WHERE ${keys.map((k) => `${k} = ?`).join(' AND ')}`;
    }
    this.#queries.set(shape, query);
    return query;
  }

  /** One write as a prepared statement; null when it has nothing to set. */
  #statement(op: WriteOp): { query: string; params: unknown[] } | null {
    if (op.kind === 'insert') {
      // Sorted columns keep the number of distinct prepared statements small; nulls stay unset (no tombstones).
      const cols = Object.keys(op.row).sort();
      return { query: this.#query(op, cols, [], [], []), params: cols.map((c) => op.row[c] ?? unset) };
    }
    const sets = Object.keys(op.set ?? {}).sort();
    const puts = Object.keys(op.mapPut ?? {}).sort();
    const keys = Object.keys(op.key).sort();
    if (sets.length + puts.length === 0) return null;
    return {
      query: this.#query(op, [], sets, puts, keys),
      params: [
        ...sets.map((c) => op.set![c]),
        ...puts.map((c) => op.mapPut![c]),
        ...keys.map((k) => op.key[k]),
      ],
    };
  }

  /** One statement alone; several (one partition's, from `writeGroups`) as one unlogged batch. */
  async apply(ops: WriteOp[]): Promise<void> {
    const statements = ops.map((op) => this.#statement(op)).filter((s) => s !== null);
    try {
      if (statements.length === 1) {
        await this.#client.execute(statements[0]!.query, statements[0]!.params, { prepare: true });
      } else if (statements.length > 1) {
        await this.#client.batch(statements, { prepare: true, logged: false });
      }
    } catch (err) {
      throw classify(err);
    }
  }

  async markApplied(entry: JournalEntry, at: Date): Promise<void> {
    await this.#client.execute(
      `UPDATE ${this.#ops('merge_journal')} SET status = ?, applied_at = ? WHERE from_id = ? AND to_id = ? IF plan_id = ?`,
      ['applied', at, entry.fromId, entry.toId, entry.planId],
      { prepare: true, serialConsistency: consistencies.localSerial },
    );
  }
}

function journalFromRow(row: Row): JournalEntry {
  return {
    fromId: String(row.from_id),
    toId: String(row.to_id),
    planId: String(row.plan_id),
    status: row.status === 'applied' ? 'applied' : 'planned',
    chunkCount: Number(row.chunk_count ?? 0),
    opCount: Number(row.op_count ?? 0),
    summary: JSON.parse(String(row.summary ?? '{}')) as PlanSummary,
    plannedAt: row.planned_at as Date,
    appliedAt: (row.applied_at as Date | null) ?? undefined,
  };
}
