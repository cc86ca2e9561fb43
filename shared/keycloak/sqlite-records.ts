/** The deletion stage's per-id records in the CLI's embedded ledger (same SQLite file as the run ledger). */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { transaction } from '#shared/clients/sqlite.ts';
import type { DeletionOutcome, DeletionRecords, DeletionRow } from '#shared/keycloak/ports.ts';

export class SqliteDeletionRecords implements DeletionRecords {
  readonly #db: DatabaseSync;
  readonly #outcomes: StatementSync;
  readonly #write: StatementSync;
  readonly #rows: StatementSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#outcomes = db.prepare(
      'SELECT id, outcome FROM run_deletions WHERE run_id = ? AND range_no = ? AND seq = ?',
    );
    this.#write = db.prepare(
      'INSERT OR REPLACE INTO run_deletions (run_id, range_no, seq, id, outcome, realm, error, updated_at) VALUES (?,?,?,?,?,?,?,?)',
    );
    this.#rows = db.prepare(
      'SELECT * FROM run_deletions WHERE run_id = ? AND range_no = ? AND seq = ? ORDER BY id',
    );
  }

  async outcomes(runId: string, rangeNo: number, seq: number): Promise<Map<string, DeletionOutcome>> {
    const rows = this.#outcomes.all(runId, rangeNo, seq) as Array<{ id: string; outcome: DeletionOutcome }>;
    return new Map(rows.map((r) => [r.id, r.outcome]));
  }

  async write(runId: string, rows: readonly DeletionRow[]): Promise<void> {
    const now = Date.now();
    transaction(this.#db, () => {
      for (const r of rows) {
        this.#write.run(
          runId,
          r.rangeNo,
          r.seq,
          r.id,
          r.outcome,
          r.realm,
          r.error?.slice(0, 1000) ?? null,
          now,
        );
      }
    });
  }

  async *rows(
    runId: string,
    blocks: ReadonlyArray<{ rangeNo: number; seq: number }>,
  ): AsyncGenerator<DeletionRow> {
    for (const b of blocks) {
      for (const r of this.#rows.all(runId, b.rangeNo, b.seq) as Array<Record<string, unknown>>) {
        yield {
          rangeNo: Number(r.range_no),
          seq: Number(r.seq),
          id: String(r.id),
          outcome: r.outcome as DeletionOutcome,
          realm: (r.realm as string | null) ?? null,
          error: (r.error as string | null) ?? null,
        };
      }
    }
  }
}
