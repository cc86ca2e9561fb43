/**
 * In-memory adapters of the merge job's ports: Sunbird's three course tables, the merge journal and plan
 * chunks in maps (with Cassandra's upsert semantics: an insert leaves unset columns alone, a map put keeps
 * the other keys), and a publisher that keeps what it was given. A store can be told to fail after a number
 * of writes, to test that a crash at any point followed by a retry converges on one clean run.
 */
import type { EventPublisher, MergeStore, OutgoingMessage } from '#shared/merge/merge.ts';
import { AGG_KEY, CONSUMPTION_KEY, ENROLMENT_KEY, enrolledCourseIds } from '#shared/merge/rules.ts';
import type { JournalEntry, MergeSnapshot, Row, TableRole, WriteOp } from '#shared/merge/types.ts';

const KEYS: Record<TableRole, readonly string[]> = {
  consumption: CONSUMPTION_KEY,
  enrolments: ENROLMENT_KEY,
  activityAgg: AGG_KEY,
};

const keyOf = (table: TableRole, row: Row): string => JSON.stringify(KEYS[table].map((k) => row[k]));

/** A deep copy that keeps Dates as Dates. */
function copy<T>(v: T): T {
  return structuredClone(v);
}

export class MemoryMergeStore implements MergeStore {
  readonly tables: Record<TableRole, Map<string, Row>> = {
    consumption: new Map(),
    enrolments: new Map(),
    activityAgg: new Map(),
  };
  readonly journal = new Map<string, JournalEntry>();
  readonly chunks = new Map<string, string>();
  /** Writes to Sunbird's tables so far. */
  writes = 0;
  /** Throw on the write after this many (a crash mid-merge); undefined = never. */
  failAfterWrites: number | undefined;
  /** Claims that lost to an earlier one (two workers merging the same pair). */
  lostClaims = 0;

  /** Puts rows into a table as they would be before any merge. */
  seed(table: TableRole, rows: Row[]): void {
    for (const r of rows) this.tables[table].set(keyOf(table, r), copy(r));
  }

  rows(table: TableRole, filter: (r: Row) => boolean = () => true): Row[] {
    return [...this.tables[table].values()].filter(filter).map(copy);
  }

  async readJournal(fromId: string, toId: string): Promise<JournalEntry | undefined> {
    const e = this.journal.get(`${fromId}/${toId}`);
    return e && copy(e);
  }

  async readSnapshot(fromId: string, toId: string): Promise<MergeSnapshot> {
    const of = (table: TableRole, col: string, id: string) => this.rows(table, (r) => r[col] === id);
    const fromEnrolments = of('enrolments', 'userid', fromId);
    const courses = enrolledCourseIds(fromEnrolments);
    const agg = (id: string) =>
      this.rows(
        'activityAgg',
        (r) => r.user_id === id && r.activity_type === 'Course' && courses.has(String(r.activity_id)),
      );
    return {
      fromConsumption: of('consumption', 'userid', fromId),
      toConsumption: of('consumption', 'userid', toId),
      fromEnrolments,
      toEnrolments: of('enrolments', 'userid', toId),
      fromAgg: agg(fromId),
      toAgg: agg(toId),
    };
  }

  async savePlanChunks(fromId: string, toId: string, planId: string, chunks: string[]): Promise<void> {
    for (const [i, c] of chunks.entries()) this.chunks.set(`${fromId}/${toId}/${planId}/${i}`, c);
  }

  async claimPlan(entry: JournalEntry): Promise<JournalEntry> {
    const k = `${entry.fromId}/${entry.toId}`;
    const existing = this.journal.get(k);
    if (existing) {
      this.lostClaims++;
      return copy(existing);
    }
    this.journal.set(k, copy(entry));
    return entry;
  }

  async loadPlanChunks(entry: JournalEntry): Promise<Array<string | undefined>> {
    return Array.from({ length: entry.chunkCount }, (_, i) =>
      this.chunks.get(`${entry.fromId}/${entry.toId}/${entry.planId}/${i}`),
    );
  }

  async discardPlanChunks(fromId: string, toId: string, planId: string, chunkCount: number): Promise<void> {
    for (let i = 0; i < chunkCount; i++) this.chunks.delete(`${fromId}/${toId}/${planId}/${i}`);
  }

  /** Applies a group write by write: `failAfterWrites` may stop it inside a group (harsher than a batch). */
  async apply(ops: WriteOp[]): Promise<void> {
    for (const op of ops) this.#applyOne(op);
  }

  #applyOne(op: WriteOp): void {
    if (this.failAfterWrites !== undefined && this.writes >= this.failAfterWrites) {
      throw new Error(`simulated crash after ${this.writes} writes`);
    }
    this.writes++;
    const table = this.tables[op.table];
    if (op.kind === 'insert') {
      const k = keyOf(op.table, op.row);
      const merged: Row = { ...(table.get(k) ?? {}) };
      for (const [c, v] of Object.entries(op.row)) if (v !== null && v !== undefined) merged[c] = copy(v);
      table.set(k, merged);
      return;
    }
    const k = keyOf(op.table, op.key);
    const row: Row = { ...(table.get(k) ?? copy(op.key)) };
    for (const [c, v] of Object.entries(op.set ?? {})) row[c] = copy(v);
    for (const [c, entries] of Object.entries(op.mapPut ?? {})) {
      row[c] = { ...((row[c] as Record<string, unknown> | null | undefined) ?? {}), ...copy(entries) };
    }
    table.set(k, row);
  }

  async markApplied(entry: JournalEntry, at: Date): Promise<void> {
    const k = `${entry.fromId}/${entry.toId}`;
    const e = this.journal.get(k);
    if (e && e.planId === entry.planId) this.journal.set(k, { ...e, status: 'applied', appliedAt: at });
  }

  async readEnrolments(userId: string): Promise<Row[]> {
    return this.rows('enrolments', (r) => r.userid === userId);
  }
}

/** Keeps every published message by topic; can be told to fail the next publishes. */
export class MemoryPublisher implements EventPublisher {
  readonly published: Array<{ topic: string } & OutgoingMessage> = [];
  failNext = 0;
  /** The preflight's answer: an error to throw (the broker unreachable), or none. */
  connectError?: Error;
  connects = 0;

  async connect(): Promise<void> {
    this.connects++;
    if (this.connectError) throw this.connectError;
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('simulated broker failure');
    }
    for (const m of messages) this.published.push({ topic, ...m });
  }

  on(topic: string): unknown[] {
    return this.published.filter((m) => m.topic === topic).map((m) => JSON.parse(m.value));
  }
}
