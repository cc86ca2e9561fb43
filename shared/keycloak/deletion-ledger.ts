/**
 * The delete stage's part of the run ledger: one row per id with its outcome, beside the per-block row
 * (`run_blocks`, stage `delete`) that `summarise(ledger, runId, 'delete')` reads.
 *
 * Partitions stay bounded: (run, range, chunk) where a chunk holds DELETION_BLOCKS_PER_CHUNK blocks, so a
 * partition carries at most that many blocks' ids (5 000 rows at the default block size of 100). Rows are
 * upserts keyed by (seq, id): a redelivered block rewrites its rows instead of adding to them, and an id
 * already recorded as deleted is never downgraded to "not found" by the redelivery that finds it gone.
 */
import { pagedRows } from '#shared/clients/cassandra.ts';
import type { DeleteBlockResult } from '#shared/keycloak/delete-block.ts';
import type { BlockOutcome, BlockStatus, Ledger } from '#shared/sync/ledger.ts';
import type { Block } from '#shared/sync/messages.ts';

export const DELETION_BLOCKS_PER_CHUNK = 50;
const TTL_SECONDS = 90 * 24 * 3600;
const MAX_ERROR_CHARS = 1000;

export function deletionTables(ks: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${ks}.run_deletions (
      run_id text, range_no int, chunk int, seq int, id text, outcome text, realm text, error text,
      updated_at timestamp,
      PRIMARY KEY ((run_id, range_no, chunk), seq, id)
    ) WITH default_time_to_live = ${TTL_SECONDS}`,
  ];
}

export const DELETION_OUTCOMES = [
  'deleted',
  'not-found',
  'failed',
  'skipped-protected',
  'skipped-not-in-cassandra',
  'skipped-no-role',
  'would-delete',
] as const;
export type DeletionOutcome = (typeof DELETION_OUTCOMES)[number];

export interface DeletionRow {
  rangeNo: number;
  seq: number;
  id: string;
  outcome: DeletionOutcome;
  realm: string | null;
  error: string | null;
}

/** The per-id outcomes of one block's result (every id of the block appears once). */
export function deletionRows(block: Pick<Block, 'rangeNo' | 'seq'>, r: DeleteBlockResult): DeletionRow[] {
  const base = { rangeNo: block.rangeNo, seq: block.seq, realm: r.realm || null };
  const rows: DeletionRow[] = [];
  const add = (ids: readonly string[], outcome: DeletionOutcome): void => {
    for (const id of ids) rows.push({ ...base, id, outcome, error: null });
  };
  add(r.deleted, 'deleted');
  add(r.wouldDelete, 'would-delete');
  add(r.notFound, 'not-found');
  add(r.skippedProtected, 'skipped-protected');
  add(r.skippedNotInCassandra, 'skipped-not-in-cassandra');
  add(r.skippedNoRoleMapping, 'skipped-no-role');
  for (const f of r.failed) rows.push({ ...base, id: f.id, outcome: 'failed', error: f.error });
  return rows;
}

/** The block row for `run_blocks` (stage `delete`): failed ids are the ids to retry. */
export function deletionBlockOutcome(
  block: Block,
  rows: readonly DeletionRow[],
  stopped?: string,
): BlockOutcome {
  const failed = rows.filter((r) => r.outcome === 'failed');
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  let status: BlockStatus;
  if (block.run.dryRun) status = 'dry-run';
  else if (failed.length === 0) status = counts.deleted ? 'succeeded' : 'skipped';
  else status = failed.length === rows.length ? 'failed' : 'partial';
  return {
    rangeNo: block.rangeNo,
    seq: block.seq,
    stage: 'delete',
    status,
    ids: rows.map((r) => r.id),
    failedIds: failed.map((r) => r.id),
    reason: stopped ?? failed[0]?.error ?? null,
    attempts: 1,
    httpStatus: null,
    response: JSON.stringify(counts),
  };
}

export class DeletionLedger {
  readonly ledger: Ledger;

  constructor(ledger: Ledger) {
    this.ledger = ledger;
  }

  private get table(): string {
    return `${this.ledger.ks}.run_deletions`;
  }

  /** Records one block's per-id rows and its `delete` block row; returns the rows as written. */
  async recordBlock(block: Block, rows: DeletionRow[], stopped?: string): Promise<DeletionRow[]> {
    const runId = block.run.runId;
    const chunk = Math.floor(block.seq / DELETION_BLOCKS_PER_CHUNK);
    const before = await this.ledger.client.execute(
      `SELECT id, outcome FROM ${this.table} WHERE run_id = ? AND range_no = ? AND chunk = ? AND seq = ?`,
      [runId, block.rangeNo, chunk, block.seq],
      { prepare: true },
    );
    const wasDeleted = new Set(before.rows.filter((r) => r.outcome === 'deleted').map((r) => r.id as string));
    const written = rows.map((r) =>
      wasDeleted.has(r.id) && r.outcome === 'not-found' ? { ...r, outcome: 'deleted' as const } : r,
    );
    const now = new Date();
    for (let i = 0; i < written.length; i += 32) {
      await Promise.all(
        written
          .slice(i, i + 32)
          .map((r) =>
            this.ledger.client.execute(
              `INSERT INTO ${this.table} (run_id, range_no, chunk, seq, id, outcome, realm, error, updated_at) VALUES (?,?,?,?,?,?,?,?,?)`,
              [
                runId,
                r.rangeNo,
                chunk,
                r.seq,
                r.id,
                r.outcome,
                r.realm,
                r.error?.slice(0, MAX_ERROR_CHARS) ?? null,
                now,
              ],
              { prepare: true },
            ),
          ),
      );
    }
    await this.ledger.recordBlock(runId, deletionBlockOutcome(block, written, stopped));
    return written;
  }

  /** Every per-id outcome of a run, block by block (only partitions of recorded blocks are read). */
  async *rows(runId: string): AsyncGenerator<DeletionRow> {
    const partitions = new Set<string>();
    for await (const b of this.ledger.blocks(runId, 'delete')) {
      partitions.add(`${b.rangeNo}/${Math.floor(b.seq / DELETION_BLOCKS_PER_CHUNK)}`);
    }
    for (const p of partitions) {
      const [rangeNo, chunk] = p.split('/').map(Number) as [number, number];
      for await (const r of pagedRows(
        this.ledger.client,
        `SELECT * FROM ${this.table} WHERE run_id = ? AND range_no = ? AND chunk = ?`,
        [runId, rangeNo, chunk],
        1000,
      )) {
        yield {
          rangeNo: r.range_no,
          seq: r.seq,
          id: r.id,
          outcome: r.outcome as DeletionOutcome,
          realm: r.realm,
          error: r.error,
        };
      }
    }
  }
}
