/**
 * Enumerating a table's ids by token range. The ring is cut into sub-ranges (the store's vnode ranges,
 * split evenly for large tables, merged for small ones), each scanned on its own — in parallel by many
 * Lambda invocations, or by a few concurrent loops in the CLI. A sub-range is read page by page (only the
 * partition key), grouped into blocks and sent to the queue before the next page is read, so memory holds
 * about one page.
 *
 * When an invocation's time budget runs out, the scan stops at a page boundary and returns a checkpoint
 * (page state, next block number, ids carried over into the next block); the next task resumes there.
 * Blocks are numbered by (range, seq), so a task retried from an older checkpoint re-sends the same
 * blocks, which the ledger records idempotently: every id is enqueued at least once.
 */

import { BadInputError } from '#shared/core/errors.ts';
import type { Block, Checkpoint, RunSettings, ScanTask } from '#shared/sync/messages.ts';
import type {
  IdFilter,
  IdSource,
  MessageQueue,
  RangeProgress,
  RunLedger,
  TokenRange,
} from '#shared/sync/ports.ts';
import { splitRange } from '#shared/sync/tokens.ts';

/** Ids per page; larger pages scan no faster but, held while their blocks are enqueued, grow the heap. */
export const DEFAULT_FETCH_SIZE = 1000;

export interface PlannedRange extends TokenRange {
  rangeNo: number;
}

export interface PlanOptions {
  /** Force this many sub-ranges per token range (tests); default: sized from the table's estimate. */
  splitsPerRange?: number;
  /** Target rows per scan task: a task should finish well inside one Lambda invocation. */
  rowsPerTask?: number;
  /** Tasks wanted for parallelism, on tables large enough to fill them. */
  minTasks?: number;
  /** The run's block size: small tables get few tasks, so few partial blocks. */
  blockSize?: number;
}

/** Each task should hold at least this many blocks, so the partial block at its end costs ≤ 5 %. */
const MIN_BLOCKS_PER_TASK = 20;
const PROBE_LIMIT = 10_000;
const PROBE_SLICES = 64;

/**
 * A cheap estimate that does not depend on the store's statistics (Cassandra refreshes size_estimates
 * every few minutes from flushed data only, so a new or freshly loaded table reads 0 or far too few).
 * First a sample: the ids in the first 1/PROBE_SLICES of every vnode range — a uniform sample of the ring,
 * since the partitioner spreads ids evenly — scaled up. A table the sample puts under PROBE_LIMIT rows is
 * then counted exactly (small tables are where a wrong estimate shows: one task too many or too few). At
 * most about 2 × PROBE_LIMIT ids are read; for a huge table the sample is a lower bound and size_estimates
 * knows better.
 */
async function probeRows(
  source: IdSource,
  keyspace: string,
  table: string,
  ranges: TokenRange[],
): Promise<number> {
  const perSlice = Math.max(1, Math.ceil(PROBE_LIMIT / ranges.length));
  let sample = 0;
  for (const r of ranges)
    sample += await source.countIds(keyspace, table, splitRange(r, PROBE_SLICES)[0]!, perSlice);
  const estimate = sample * PROBE_SLICES;
  if (estimate > PROBE_LIMIT) return estimate;
  let exact = 0;
  for (const r of ranges) {
    exact += await source.countIds(keyspace, table, r, PROBE_LIMIT + 1 - exact);
    if (exact > PROBE_LIMIT) return Math.max(estimate, exact);
  }
  return exact;
}

/** How many scan tasks a table of `estimate` rows should get (before rounding to the vnode count). */
export function desiredTasks(estimate: number, vnodes: number, opts: PlanOptions): number {
  const byRows = Math.ceil(estimate / (opts.rowsPerTask ?? 2_000_000));
  const fillable = Math.floor(estimate / ((opts.blockSize ?? 100) * MIN_BLOCKS_PER_TASK));
  return Math.min(1024 * vnodes, Math.max(1, byRows, Math.min(opts.minTasks ?? 1, fillable)));
}

/** Splits each vnode range (many tasks wanted) or merges runs of contiguous ones (few wanted). */
export function cutRing(ranges: TokenRange[], desired: number): PlannedRange[] {
  const out: PlannedRange[] = [];
  if (desired >= ranges.length) {
    const splits = Math.ceil(desired / ranges.length);
    for (const range of ranges)
      for (const p of splitRange(range, splits)) out.push({ rangeNo: out.length, ...p });
    return out;
  }
  // Sorted vnode ranges tile the ring: range i ends where range i+1 starts, so a run of consecutive
  // ranges is one contiguous (start, end] interval.
  const group = Math.ceil(ranges.length / desired);
  for (let i = 0; i < ranges.length; i += group) {
    const last = ranges[Math.min(ranges.length, i + group) - 1]!;
    out.push({ rangeNo: out.length, start: ranges[i]!.start, end: last.end });
  }
  return out;
}

/**
 * Cuts the ring into scan tasks. Large tables: enough tasks that each holds at most `rowsPerTask` rows,
 * and at least `minTasks` for parallelism. Small tables: contiguous vnode ranges are merged, so a 200-row
 * table becomes one task and two Sync API calls rather than one partial block per vnode.
 */
export async function planRanges(
  source: IdSource,
  keyspace: string,
  table: string,
  opts: PlanOptions = {},
): Promise<PlannedRange[]> {
  return (await planScan(source, keyspace, table, opts)).ranges;
}

/** `planRanges`, with the row estimate it was sized from (null when the split was forced). */
export async function planScan(
  source: IdSource,
  keyspace: string,
  table: string,
  opts: PlanOptions = {},
): Promise<{ ranges: PlannedRange[]; estimatedRows: number | null }> {
  const ranges = await source.tokenRanges();
  if (opts.splitsPerRange) {
    return { ranges: cutRing(ranges, opts.splitsPerRange * ranges.length), estimatedRows: null };
  }
  const stats = await source.estimateRows(keyspace, table).catch(() => 0);
  const probe = await probeRows(source, keyspace, table, ranges);
  const estimatedRows = Math.max(stats, probe);
  return { ranges: cutRing(ranges, desiredTasks(estimatedRows, ranges.length, opts)), estimatedRows };
}

export interface ScanDeps {
  ids: IdSource;
  queue: MessageQueue;
  ledger?: RunLedger;
  /** Stop at the next page boundary once this returns true (time budget exhausted). */
  shouldStop?: () => boolean;
  fetchSize?: number;
  /** Resolves the filter a run names (`run.filter`); needed only by runs that name one. */
  filters?: (name: string) => IdFilter;
  /** After each page: ids read, ids kept by the run's filter (all without one), blocks sent. */
  onPage?: (info: { rangeNo: number; ids: number; kept: number; blocks: number }) => void;
}

export type ScanResult =
  | { done: true; ids: number; blocks: number }
  | { done: false; ids: number; blocks: number; continuation: ScanTask };

/** Cuts a page's ids (after the ids carried over) into full blocks; the last page also sends the rest. */
export function cutBlocks(
  ids: string[],
  size: number,
  last: boolean,
): { blocks: string[][]; carry: string[] } {
  const cut = last ? ids.length : Math.floor(ids.length / size) * size;
  const blocks: string[][] = [];
  for (let i = 0; i < cut; i += size) blocks.push(ids.slice(i, Math.min(cut, i + size)));
  return { blocks, carry: ids.slice(cut) };
}

function blockBody(run: RunSettings, rangeNo: number, seq: number, ids: string[]): string {
  return JSON.stringify({ type: 'block', run, rangeNo, seq, ids } satisfies Block);
}

/** The ids of a page the run's filter keeps (all of them when the run names none). */
function pageFilter(task: ScanTask, deps: ScanDeps): (ids: string[]) => Promise<string[]> {
  const name = task.run.filter;
  if (!name) return async (ids) => ids;
  if (!deps.filters)
    throw new BadInputError(`run ${task.run.runId} names filter "${name}", which is not available here`);
  const filter = deps.filters(name);
  const target = { keyspace: task.keyspace, table: task.table, objectType: task.run.objectType };
  return (ids) => (ids.length ? filter.keep(ids, target) : Promise.resolve(ids));
}

export async function scanRange(task: ScanTask, deps: ScanDeps): Promise<ScanResult> {
  const cp: Checkpoint = task.checkpoint ?? { pageState: null, nextSeq: 0, carry: [], idsSoFar: 0, hops: 0 };
  let { nextSeq: seq, carry, idsSoFar: ids } = cp;
  const keep = pageFilter(task, deps);
  const fetch = (state: string | null) =>
    deps.ids.page(task.keyspace, task.table, task, state, deps.fetchSize ?? DEFAULT_FETCH_SIZE);
  let page = await fetch(cp.pageState);
  for (;;) {
    // Read the next page while this one is being enqueued.
    const nextPage = page.next ? fetch(page.next) : undefined;
    nextPage?.catch(() => {}); // awaited below; avoid an unhandled rejection if we stop first
    ids += page.ids.length;
    const last = !page.next;
    const kept = await keep(page.ids);
    const cut = cutBlocks(carry.concat(kept), task.run.blockSize, last);
    carry = cut.carry;
    const blocks = cut.blocks.map((b) => ({ rangeNo: task.rangeNo, seq: seq++, ids: b }));
    const checkpoint: Checkpoint = {
      pageState: page.next,
      nextSeq: seq,
      carry,
      idsSoFar: ids,
      hops: cp.hops,
    };
    const progress: RangeProgress = {
      rangeNo: task.rangeNo,
      start: task.start,
      end: task.end,
      ids,
      blocks: seq,
      hops: cp.hops,
      done: last,
      checkpoint: last ? null : checkpoint,
    };
    // The blocks and the progress after them are in the ledger before they are sent: a run stopped at any
    // point resumes from here without losing a block (the queue may still get them twice; outcomes are
    // upserts keyed by (range, seq)).
    await deps.ledger?.enqueued(task.run.runId, blocks, progress);
    if (blocks.length) await deps.queue.send(blocks.map((b) => blockBody(task.run, b.rangeNo, b.seq, b.ids)));
    deps.onPage?.({ rangeNo: task.rangeNo, ids: page.ids.length, kept: kept.length, blocks: blocks.length });
    if (last) return { done: true, ids, blocks: seq };
    if (deps.shouldStop?.()) {
      return {
        done: false,
        ids,
        blocks: seq,
        continuation: { ...task, checkpoint: { ...checkpoint, hops: cp.hops + 1 } },
      };
    }
    page = await nextPage!;
  }
}
