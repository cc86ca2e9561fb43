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
  /** Sub-ranges per token range; default: enough for `rowsPerTask`, at least 1. */
  splitsPerRange?: number;
  /** Target rows per scan task (sizes the split from system.size_estimates). */
  rowsPerTask?: number;
  /** Lower bound on the number of tasks, for parallelism on small tables. */
  minTasks?: number;
}

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

export async function planRanges(
  client: CassandraClient,
  keyspace: string,
  table: string,
  opts: PlanOptions = {},
): Promise<PlannedRange[]> {
  await client.connect();
  const base = [...client.metadata.getTokenRanges()].flatMap((r) => r.unwrap()).sort((a, b) => a.compare(b));
  let splits = opts.splitsPerRange;
  if (!splits) {
    const estimate = await estimatedRows(client, keyspace, table).catch(() => 0);
    const byRows = Math.ceil(estimate / (opts.rowsPerTask ?? 2_000_000) / Math.max(1, base.length));
    const byTasks = Math.ceil((opts.minTasks ?? 1) / Math.max(1, base.length));
    splits = Math.min(1024, Math.max(1, byRows, byTasks));
  }
  const out: PlannedRange[] = [];
  for (const range of base) {
    const parts = splits > 1 ? range.splitEvenly(splits) : [range];
    for (const p of parts)
      out.push({ rangeNo: out.length, start: p.start.toString(), end: p.end.toString() });
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
