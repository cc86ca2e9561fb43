/**
 * The deletion stage's per-id records on Cassandra (`run_deletions`, beside the run ledger's tables).
 *
 * Partitions stay bounded: (run, range, chunk) where a chunk holds DELETION_BLOCKS_PER_CHUNK blocks, so a
 * partition carries at most that many blocks' ids (5 000 rows at the default block size of 100). Rows are
 * upserts keyed by (seq, id): a redelivered block rewrites its rows instead of adding to them.
 */
import { type CassandraClient, executeIdempotent, pagedRows } from '#shared/clients/cassandra.ts';
import { forEachLimit } from '#shared/core/concurrency.ts';
import type { DeletionOutcome, DeletionRecords, DeletionRow } from '#shared/keycloak/ports.ts';

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

const chunkOf = (seq: number): number => Math.floor(seq / DELETION_BLOCKS_PER_CHUNK);

export class CassandraDeletionRecords implements DeletionRecords {
  readonly #client: CassandraClient;
  readonly #table: string;

  constructor(client: CassandraClient, keyspace: string) {
    this.#client = client;
    this.#table = `${keyspace}.run_deletions`;
  }

  async outcomes(runId: string, rangeNo: number, seq: number): Promise<Map<string, DeletionOutcome>> {
    const rs = await executeIdempotent(
      this.#client,
      `SELECT id, outcome FROM ${this.#table} WHERE run_id = ? AND range_no = ? AND chunk = ? AND seq = ?`,
      [runId, rangeNo, chunkOf(seq), seq],
    );
    return new Map(rs.rows.map((r) => [r.id as string, r.outcome as DeletionOutcome]));
  }

  async write(runId: string, rows: readonly DeletionRow[]): Promise<void> {
    const now = new Date();
    await forEachLimit(rows, 32, async (r) => {
      await executeIdempotent(
        this.#client,
        `INSERT INTO ${this.#table} (run_id, range_no, chunk, seq, id, outcome, realm, error, updated_at) VALUES (?,?,?,?,?,?,?,?,?)`,
        [
          runId,
          r.rangeNo,
          chunkOf(r.seq),
          r.seq,
          r.id,
          r.outcome,
          r.realm,
          r.error?.slice(0, MAX_ERROR_CHARS) ?? null,
          now,
        ],
      );
    });
  }

  async *rows(
    runId: string,
    blocks: ReadonlyArray<{ rangeNo: number; seq: number }>,
  ): AsyncGenerator<DeletionRow> {
    const partitions = new Set(blocks.map((b) => `${b.rangeNo}/${chunkOf(b.seq)}`));
    for (const p of partitions) {
      const [rangeNo, chunk] = p.split('/').map(Number) as [number, number];
      for await (const r of pagedRows(
        this.#client,
        `SELECT * FROM ${this.#table} WHERE run_id = ? AND range_no = ? AND chunk = ?`,
        [runId, rangeNo, chunk],
        1000,
      )) {
        yield {
          rangeNo: r.range_no,
          seq: r.seq,
          id: r.id,
          outcome: r.outcome,
          realm: r.realm,
          error: r.error,
        };
      }
    }
  }
}
