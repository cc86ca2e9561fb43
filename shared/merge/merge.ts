/**
 * merge-user-courses, exactly once in effect.
 *
 * ## Why a journal
 * Kafka delivers at least once, and `viewcount`/`completedcount` are *sums*: re-running the merge on a
 * to-account that already holds the merged values would add the from-account's counts again (the
 * original job's flaw). So a merge never recomputes from a state it may have already touched.
 *
 * ## The mechanism
 * A merge journal in the ops keyspace, one row per (fromId, toId), plus the plan itself in
 * `merge_plan_chunk` rows (one partition per chunk of ≤ 200 writes / ≈ 256 KB, so no partition grows with
 * the size of an account).
 *
 * 1. **Read the journal** (LOCAL_SERIAL, so an in-flight claim is seen).
 *    - `applied` → no writes at all; go to step 5.
 *    - `planned` → load the stored plan and go to step 3 (never recompute).
 *    - none → step 2.
 * 2. **Plan.** Read the pre-merge snapshot of both accounts (all content-consumption rows, enrolments and
 *    the activity aggregates of from's courses, paged), compute every target value with the pure rules
 *    (`rules.ts`), write the plan chunks under a fresh `planId`, then **claim** the journal with a
 *    lightweight transaction (`INSERT … IF NOT EXISTS`, status `planned`). Nothing has been written to
 *    Sunbird's tables yet. If another worker won the claim, its plan is used and ours is discarded. The
 *    claim is the only door to step 3 and it opens once, so the winning plan was always computed from a
 *    clean snapshot.
 * 3. **Apply** the plan: each write is an upsert of absolute values (copies of rows, the merged columns
 *    of matched rows, single-key map puts for `completedCount`). Writing a value twice equals writing it
 *    once, so a crash after any subset of writes followed by a retry converges on the same state.
 * 4. **Mark `applied`** (LWT on the plan id).
 * 5. **Emit** one batch-enrolment-sync event per enrolment the to-account now has. Repeats (a retry after
 *    step 4) re-emit them; the course-batch updater recomputes from the table, so duplicates are harmless.
 *
 * Consequences: a redelivered event, a whole-batch retry, a crash between any two writes, or the same
 * merge requested twice leave exactly the state of one clean run. The journal keeps an `applied` merge a
 * no-op forever; a plan left `planned` is re-applied verbatim, which also overwrites any change the
 * to-account made to those exact columns in between (bounded by how long the retry takes). Plan chunks
 * expire after 90 days; a `planned` journal whose plan is gone is reported as a failed event, not
 * recomputed.
 */
import { randomUUID } from 'node:crypto';
import { forEachLimit } from '#shared/core/concurrency.ts';
import { BadInputError } from '#shared/core/errors.ts';
import { decodePlan, encodePlan } from '#shared/merge/codec.ts';
import { batchEnrolmentSyncEvent, type EventClock, systemClock } from '#shared/merge/events.ts';
import { computeMergePlan, PARTITION_KEYS } from '#shared/merge/rules.ts';
import type {
  JournalEntry,
  MergeRequest,
  MergeSnapshot,
  PlanSummary,
  Row,
  WriteOp,
} from '#shared/merge/types.ts';

/** A problem with the data itself: retrying cannot help, so the event goes to the failed topic. */
export class MergeDataError extends BadInputError {
  override name = 'MergeDataError';
}

/** What the merge needs from storage (one adapter: `cassandra-store.ts`). */
export interface MergeStore {
  readJournal(fromId: string, toId: string): Promise<JournalEntry | undefined>;
  readSnapshot(fromId: string, toId: string): Promise<MergeSnapshot>;
  savePlanChunks(fromId: string, toId: string, planId: string, chunks: string[]): Promise<void>;
  /** Insert the journal entry if none exists; returns the entry that won (ours or an earlier one). */
  claimPlan(entry: JournalEntry): Promise<JournalEntry>;
  loadPlanChunks(entry: JournalEntry): Promise<Array<string | undefined>>;
  discardPlanChunks(fromId: string, toId: string, planId: string, chunkCount: number): Promise<void>;
  /**
   * Applies one group of writes to one partition (see `writeGroups`), in one round trip where the store
   * can: the Cassandra adapter sends a group as one unlogged single-partition batch, which Cassandra
   * applies as one mutation. Each write stays an idempotent upsert, so re-applying a group is harmless.
   */
  apply(ops: WriteOp[]): Promise<void>;
  markApplied(entry: JournalEntry, at: Date): Promise<void>;
  readEnrolments(userId: string): Promise<Row[]>;
}

export interface OutgoingMessage {
  key?: string;
  value: string;
}

export interface EventPublisher {
  /**
   * The preflight, before a merge's first write: the broker is reachable and accepts this client, so the
   * merge will be able to publish its events. Cheap after the first success. Throws on the taxonomy.
   */
  connect?(): Promise<void>;
  publish(topic: string, messages: OutgoingMessage[]): Promise<void>;
}

export interface MergeDeps {
  store: MergeStore;
  publisher: EventPublisher;
  courseBatchTopic: string;
  /** Concurrent write groups (round trips) while applying a plan. */
  writeConcurrency?: number;
  clock?: EventClock;
}

export type MergeMode = 'merged' | 'resumed' | 'already-applied';

export interface MergeOutcome {
  fromAccountId: string;
  toAccountId: string;
  mode: MergeMode;
  planId: string;
  summary: PlanSummary;
  /** Writes issued to Sunbird's tables by this run (0 when the journal said `applied`). */
  writes: number;
  eventsEmitted: number;
  durationMs: number;
}

const MAX_CHUNK_OPS = 200;
const MAX_CHUNK_CHARS = 256 * 1024;
/**
 * A write group stays within Cassandra's default batch_size_warn_threshold (5 KiB), so the batches
 * neither fail (50 KiB) nor fill the server's log with warnings.
 */
const MAX_GROUP_OPS = 50;
const MAX_GROUP_CHARS = 5 * 1024;

/** About how many characters a value takes (what bounds a batch), without encoding it. */
function approxChars(value: unknown): number {
  if (typeof value === 'string') return value.length + 2;
  if (value === null || value === undefined) return 4;
  if (typeof value !== 'object' || value instanceof Date) return 16;
  let n = 2;
  for (const [k, v] of Object.entries(value)) n += k.length + 3 + approxChars(v);
  return n;
}

function partitionOf(op: WriteOp): string {
  const values = op.kind === 'insert' ? op.row : op.key;
  let key: string = op.table;
  for (const c of PARTITION_KEYS[op.table]) key += `\u0000${String(values[c] ?? '')}`;
  return key;
}

/**
 * The plan's writes as groups that each touch one partition (at most MAX_GROUP_OPS writes and about
 * MAX_GROUP_CHARS of values): a to-account's content consumption and enrolments are one partition each,
 * so hundreds of writes become a few round trips. Order within a partition is kept.
 */
export function writeGroups(ops: WriteOp[]): WriteOp[][] {
  const open = new Map<string, { ops: WriteOp[]; chars: number }>();
  const groups: WriteOp[][] = [];
  for (const op of ops) {
    const key = partitionOf(op);
    const chars = approxChars(op);
    let g = open.get(key);
    if (g && (g.ops.length >= MAX_GROUP_OPS || g.chars + chars > MAX_GROUP_CHARS)) g = undefined;
    if (!g) {
      g = { ops: [], chars: 0 };
      open.set(key, g);
      groups.push(g.ops);
    }
    g.ops.push(op);
    g.chars += chars;
  }
  return groups;
}

/** Splits a plan into journal chunks bounded by op count and encoded size. */
export function chunkPlan(ops: WriteOp[]): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let size = 0;
  // Each op is encoded once; a chunk is its ops' encodings in a JSON array, as encodePlan writes it.
  const close = () => chunks.push(`[${current.join(',')}]`);
  for (const op of ops) {
    const encoded = encodePlan([op]).slice(1, -1);
    const opSize = encoded.length + 2;
    if (current.length > 0 && (current.length >= MAX_CHUNK_OPS || size + opSize > MAX_CHUNK_CHARS)) {
      close();
      current = [];
      size = 0;
    }
    current.push(encoded);
    size += opSize;
  }
  if (current.length > 0) close();
  return chunks;
}

async function planAndClaim(
  req: MergeRequest,
  store: MergeStore,
  clock: EventClock,
): Promise<{ entry: JournalEntry; ops?: WriteOp[] }> {
  const { fromAccountId: from, toAccountId: to } = req;
  const snapshot = await store.readSnapshot(from, to);
  const plannedAt = new Date(clock.now());
  const plan = computeMergePlan(snapshot, to, plannedAt);
  const planId = randomUUID();
  const chunks = chunkPlan(plan.ops);
  await store.savePlanChunks(from, to, planId, chunks);
  const mine: JournalEntry = {
    fromId: from,
    toId: to,
    planId,
    status: 'planned',
    chunkCount: chunks.length,
    opCount: plan.ops.length,
    summary: plan.summary,
    plannedAt,
  };
  const winner = await store.claimPlan(mine);
  if (winner.planId === planId) return { entry: winner, ops: plan.ops };
  // Another worker claimed first; its plan is the one (ours may have seen its partial writes).
  await store.discardPlanChunks(from, to, planId, chunks.length).catch(() => undefined);
  return { entry: winner };
}

async function loadPlan(store: MergeStore, entry: JournalEntry): Promise<WriteOp[]> {
  const chunks = await store.loadPlanChunks(entry);
  const ops: WriteOp[] = [];
  for (const [i, chunk] of chunks.entries()) {
    if (chunk === undefined)
      throw new MergeDataError(`merge plan ${entry.planId} is missing chunk ${i} (expired or deleted)`);
    ops.push(...decodePlan(chunk));
  }
  if (ops.length !== entry.opCount)
    throw new MergeDataError(`merge plan ${entry.planId} has ${ops.length} of ${entry.opCount} writes`);
  return ops;
}

/** One merge, exactly once in effect (see the module comment). Throws on infrastructure failure. */
export async function runMerge(req: MergeRequest, deps: MergeDeps): Promise<MergeOutcome> {
  const started = performance.now();
  const { store, publisher } = deps;
  const { fromAccountId: from, toAccountId: to } = req;

  let entry = await store.readJournal(from, to);
  let ops: WriteOp[] | undefined;
  let mode: MergeMode;
  if (!entry) {
    const claimed = await planAndClaim(req, store, deps.clock ?? systemClock);
    entry = claimed.entry;
    ops = claimed.ops;
    mode = ops ? 'merged' : entry.status === 'applied' ? 'already-applied' : 'resumed';
  } else {
    mode = entry.status === 'applied' ? 'already-applied' : 'resumed';
  }

  let writes = 0;
  if (entry.status === 'planned') {
    ops ??= await loadPlan(store, entry);
    await forEachLimit(writeGroups(ops), deps.writeConcurrency ?? 32, (group) => store.apply(group));
    await store.markApplied(entry, new Date());
    writes = ops.length;
  }

  const clock = deps.clock ?? systemClock;
  const enrolments = await store.readEnrolments(to);
  const messages = enrolments.map((e) => ({
    key: to,
    value: JSON.stringify(batchEnrolmentSyncEvent(e, to, clock)),
  }));
  if (messages.length > 0) await publisher.publish(deps.courseBatchTopic, messages);

  return {
    fromAccountId: from,
    toAccountId: to,
    mode,
    planId: entry.planId,
    summary: entry.summary,
    writes,
    eventsEmitted: messages.length,
    durationMs: performance.now() - started,
  };
}
