/**
 * Enumerating a table's ids by token range. The ring is cut into sub-ranges (the driver's token-range
 * metadata, each range split evenly), each scanned on its own — in parallel by many Lambda invocations,
 * or by a few concurrent loops in the CLI. A sub-range is read page by page (only the partition key),
 * grouped into blocks and sent to the queue before the next page is read, so memory holds about one page.
 *
 * When an invocation's time budget runs out, the scan stops at a page boundary and returns a checkpoint
 * (page state, next block number, ids carried over into the next block); the next task resumes there.
 * Blocks are numbered by (range, seq), so a task retried from an older checkpoint re-sends the same
 * blocks, which the ledger records idempotently: every id is enqueued at least once.
 */
import cassandra from 'cassandra-driver';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import type { MessageQueue } from '#shared/queue.ts';
import type { Ledger } from '#shared/sync/ledger.ts';
import type { Block, ScanTask } from '#shared/sync/messages.ts';

const MIN_TOKEN = '-9223372036854775808';
/** Ids per page; larger pages scan no faster but, held while their blocks are enqueued, grow the heap. */
export const DEFAULT_FETCH_SIZE = 1000;

export interface PlannedRange {
  rangeNo: number;
  start: string;
  end: string;
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
const RING = 2n ** 64n;

export async function estimatedRows(
  client: CassandraClient,
  keyspace: string,
  table: string,
): Promise<number> {
  const rs = await client.execute(
    'SELECT partitions_count FROM system.size_estimates WHERE keyspace_name = ? AND table_name = ?',
    [keyspace, table],
  );
  return rs.rows.reduce((n, r) => n + Number(r.partitions_count ?? 0), 0);
}

function width(start: string, end: string): bigint {
  const e = end === MIN_TOKEN ? 2n ** 63n : BigInt(end);
  const w = e - BigInt(start);
  return w > 0n ? w : w + RING;
}

/**
 * A cheap estimate for tables Cassandra has not sized yet (size_estimates is refreshed every few
 * minutes, so new tables read 0): count ids range by range until PROBE_LIMIT ids were seen, and scale
 * by the share of the ring read. Exact for small tables; at most PROBE_LIMIT ids read for large ones.
 */
async function probeRows(
  client: CassandraClient,
  keyspace: string,
  table: string,
  ranges: PlannedRange[],
): Promise<number> {
  let count = 0;
  let covered = 0n;
  for (const r of ranges) {
    const { cql, params } = rangeQuery({ keyspace, table, start: r.start, end: r.end } as ScanTask);
    const limit = PROBE_LIMIT - count;
    const rs = await client.execute(`${cql} LIMIT ${limit}`, params, { prepare: true, fetchSize: limit });
    count += rs.rows.length;
    covered += width(r.start, r.end);
    if (count >= PROBE_LIMIT) break;
  }
  if (covered >= RING) return count;
  return Math.ceil((count * Number(RING)) / Number(covered > 0n ? covered : 1n));
}

/**
 * Cuts the ring into scan tasks. Large tables: enough tasks that each holds at most `rowsPerTask`
 * rows, and at least `minTasks` for parallelism. Small tables: contiguous vnode ranges are merged, so a
 * 200-row table becomes one task and two Sync API calls rather than one partial block per vnode.
 */
export async function planRanges(
  client: CassandraClient,
  keyspace: string,
  table: string,
  opts: PlanOptions = {},
): Promise<PlannedRange[]> {
  await client.connect();
  const ranges = [...client.metadata.getTokenRanges()]
    .flatMap((r) => r.unwrap())
    .sort((a, b) => a.compare(b));
  const base: PlannedRange[] = ranges.map((r, i) => ({
    rangeNo: i,
    start: r.start.toString(),
    end: r.end.toString(),
  }));
  let desired: number;
  if (opts.splitsPerRange) {
    desired = opts.splitsPerRange * base.length;
  } else {
    let estimate = await estimatedRows(client, keyspace, table).catch(() => 0);
    if (estimate === 0) estimate = await probeRows(client, keyspace, table, base);
    const byRows = Math.ceil(estimate / (opts.rowsPerTask ?? 2_000_000));
    const fillable = Math.floor(estimate / ((opts.blockSize ?? 100) * MIN_BLOCKS_PER_TASK));
    desired = Math.min(1024 * base.length, Math.max(1, byRows, Math.min(opts.minTasks ?? 1, fillable)));
  }
  const out: PlannedRange[] = [];
  if (desired >= base.length) {
    const splits = Math.ceil(desired / base.length);
    for (const range of ranges) {
      const parts = splits > 1 ? range.splitEvenly(splits) : [range];
      for (const p of parts)
        out.push({ rangeNo: out.length, start: p.start.toString(), end: p.end.toString() });
    }
  } else {
    // Sorted, unwrapped vnode ranges tile the ring: range i ends where range i+1 starts, so a run of
    // consecutive ranges is one contiguous (start, end] interval.
    const group = Math.ceil(base.length / desired);
    for (let i = 0; i < base.length; i += group) {
      const last = base[Math.min(base.length, i + group) - 1]!;
      out.push({ rangeNo: out.length, start: base[i]!.start, end: last.end });
    }
  }
  return out;
}

export interface ScanDeps {
  cassandra: CassandraClient;
  queue: MessageQueue;
  ledger?: Ledger;
  /** Stop at the next page boundary once this returns true (time budget exhausted). */
  shouldStop?: () => boolean;
  fetchSize?: number;
  onPage?: (info: { rangeNo: number; ids: number; blocks: number }) => void;
}

export type ScanResult =
  | { done: true; ids: number; blocks: number }
  | { done: false; ids: number; blocks: number; continuation: ScanTask };

function rangeQuery(task: ScanTask): { cql: string; params: unknown[] } {
  const base = `SELECT id FROM ${task.keyspace}.${task.table} WHERE token(id) > ?`;
  const start = cassandra.types.Long.fromString(task.start);
  // An end at the minimum token means "to the end of the ring" (the upper half of a wrapped range).
  if (task.end === MIN_TOKEN) return { cql: base, params: [start] };
  return { cql: `${base} AND token(id) <= ?`, params: [start, cassandra.types.Long.fromString(task.end)] };
}

export async function scanRange(task: ScanTask, deps: ScanDeps): Promise<ScanResult> {
  const { cql, params } = rangeQuery(task);
  const cp = task.checkpoint ?? { pageState: null, nextSeq: 0, carry: [], idsSoFar: 0, hops: 0 };
  let pageState = cp.pageState ?? undefined;
  let seq = cp.nextSeq;
  let carry = cp.carry;
  let ids = cp.idsSoFar;
  const size = task.run.blockSize;
  const fetch = (state: string | undefined) =>
    deps.cassandra.execute(cql, params, {
      prepare: true,
      fetchSize: deps.fetchSize ?? DEFAULT_FETCH_SIZE,
      ...(state ? { pageState: state } : {}),
    });
  const toBody = (blockIds: string[]): string => {
    const block: Block = { type: 'block', run: task.run, rangeNo: task.rangeNo, seq: seq++, ids: blockIds };
    return JSON.stringify(block);
  };
  let page = await fetch(pageState);
  for (;;) {
    const nextState = page.pageState ?? undefined;
    // Read the next page while this one is being enqueued.
    const nextPage = nextState ? fetch(nextState) : undefined;
    nextPage?.catch(() => {}); // awaited below; avoid an unhandled rejection if we stop first
    const pageIds = carry.concat(page.rows.map((r) => r.id as string));
    ids += page.rows.length;
    const full = Math.floor(pageIds.length / size) * size;
    const last = !nextState;
    const cut = last ? pageIds.length : full;
    const bodies: string[] = [];
    for (let i = 0; i < cut; i += size) bodies.push(toBody(pageIds.slice(i, Math.min(cut, i + size))));
    carry = pageIds.slice(cut);
    if (bodies.length) await deps.queue.send(bodies);
    deps.onPage?.({ rangeNo: task.rangeNo, ids: page.rows.length, blocks: bodies.length });
    const progress = {
      rangeNo: task.rangeNo,
      start: task.start,
      end: task.end,
      ids,
      blocks: seq,
      hops: cp.hops,
    };
    if (last) {
      await deps.ledger?.setRange(task.run.runId, { ...progress, done: true });
      return { done: true, ids, blocks: seq };
    }
    pageState = nextState;
    if (deps.shouldStop?.()) {
      await deps.ledger?.setRange(task.run.runId, { ...progress, done: false });
      return {
        done: false,
        ids,
        blocks: seq,
        continuation: {
          ...task,
          checkpoint: { pageState: pageState ?? null, nextSeq: seq, carry, idsSoFar: ids, hops: cp.hops + 1 },
        },
      };
    }
    // Progress is checkpointed per page; cheap (one upsert) and lets `report` show live counts.
    await deps.ledger?.setRange(task.run.runId, { ...progress, done: false });
    page = await nextPage!;
  }
}
