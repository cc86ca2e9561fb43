/**
 * The embedded run ledger (SQLite in the CLI's state directory, `shared/clients/sqlite.ts`): the default for
 * CLI runs, so `sync`, `retry`, `resume`, `report` and `runs` need nothing but read access to the scanned
 * tables. Ids are kept compactly (one text per block, `packIds`); pending blocks are recorded before
 * they are sent, so `resume` finds every block whose outcome is unknown.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { transaction } from '#shared/clients/sqlite.ts';
import { packIds, unpackIds } from '#shared/sync/ids.ts';
import { type RunSettings, runExtras, runExtrasFrom } from '#shared/sync/messages.ts';
import type {
  BlockOutcome,
  PendingBlock,
  RangeProgress,
  RunInfo,
  RunLedger,
  RunRecord,
  Stage,
  StartClaim,
} from '#shared/sync/ports.ts';

type SqlRow = Record<string, unknown>;

const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));

function toRunRecord(r: SqlRow): RunRecord {
  const params = JSON.parse(String(r.params ?? '{}')) as Record<string, unknown>;
  return {
    runId: String(r.run_id),
    job: String(r.job),
    objectType: r.object_type as RunRecord['objectType'],
    dryRun: r.dry_run === 1,
    verify: r.verify === 1,
    blockSize: Number(r.block_size),
    sleepMs: Number(r.sleep_ms),
    source: String(r.source ?? ''),
    createdAt: new Date(Number(r.created_at)),
    ranges: Number(r.ranges),
    parentRun: (r.parent_run as string | null) ?? null,
    params,
    ...runExtrasFrom(params),
    ...(r.next ? { next: String(r.next) } : {}),
  };
}

function toOutcome(r: SqlRow): BlockOutcome {
  return {
    rangeNo: Number(r.range_no),
    seq: Number(r.seq),
    stage: String(r.stage),
    status: r.status as BlockOutcome['status'],
    ids: unpackIds(r.ids),
    failedIds: unpackIds(r.failed_ids),
    reason: (r.reason as string | null) ?? null,
    attempts: Number(r.attempts ?? 0),
    httpStatus: (r.http_status as number | null) ?? null,
    response: (r.response as string | null) ?? null,
    ...(r.context ? { context: JSON.parse(String(r.context)) as Record<string, string> } : {}),
    updatedAt: new Date(Number(r.updated_at)),
  };
}

export class SqliteRunLedger implements RunLedger {
  readonly db: DatabaseSync;
  readonly #stmt: Record<string, StatementSync>;

  constructor(db: DatabaseSync) {
    this.db = db;
    this.#stmt = {
      createRun: db.prepare(
        'INSERT OR REPLACE INTO runs (run_id, job, object_type, source, dry_run, verify, block_size, sleep_ms, next, created_at, ranges, parent_run, params) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
      ),
      getRun: db.prepare('SELECT * FROM runs WHERE run_id = ?'),
      recent: db.prepare('SELECT * FROM runs ORDER BY created_at DESC LIMIT ?'),
      setRange: db.prepare(
        'INSERT OR REPLACE INTO run_ranges (run_id, range_no, start_token, end_token, ids, blocks, done, hops, checkpoint, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)',
      ),
      ranges: db.prepare('SELECT * FROM run_ranges WHERE run_id = ? ORDER BY range_no'),
      pending: db.prepare(
        "INSERT OR IGNORE INTO run_blocks (run_id, stage, range_no, seq, status, ids, failed_ids, attempts, context, updated_at) VALUES (?, 'sync', ?, ?, 'pending', ?, '', 0, ?, ?)",
      ),
      record: db.prepare(
        'INSERT OR REPLACE INTO run_blocks (run_id, stage, range_no, seq, status, ids, failed_ids, reason, attempts, http_status, response, context, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
      ),
      blocks: db.prepare('SELECT * FROM run_blocks WHERE run_id = ? AND stage = ? ORDER BY range_no, seq'),
      params: db.prepare('UPDATE runs SET params = ? WHERE run_id = ?'),
      claim: db.prepare('INSERT OR IGNORE INTO run_keys (key, run_id, claimed_at) VALUES (?, ?, ?)'),
      claimed: db.prepare('SELECT run_id, started, claimed_at FROM run_keys WHERE key = ?'),
      takeOver: db.prepare('UPDATE run_keys SET claimed_at = ? WHERE key = ? AND claimed_at = ?'),
      started: db.prepare('UPDATE run_keys SET started = 1 WHERE key = ?'),
      release: db.prepare('UPDATE run_keys SET claimed_at = 0 WHERE key = ? AND started = 0'),
    };
  }

  async ready(): Promise<void> {}

  async createRun(run: RunSettings, info: RunInfo): Promise<void> {
    this.#stmt.createRun!.run(
      run.runId,
      run.job,
      run.objectType,
      info.source,
      run.dryRun ? 1 : 0,
      run.verify ? 1 : 0,
      run.blockSize,
      run.sleepMs,
      run.next ?? null,
      Date.now(),
      info.ranges,
      info.parentRun ?? null,
      JSON.stringify({ ...info.params, ...runExtras(run) }),
    );
  }

  async getRun(runId: string): Promise<RunRecord | null> {
    const r = this.#stmt.getRun!.get(runId) as SqlRow | undefined;
    return r ? toRunRecord(r) : null;
  }

  async recentRuns(limit: number): Promise<RunRecord[]> {
    return (this.#stmt.recent!.all(limit) as SqlRow[]).map(toRunRecord);
  }

  async claimStart(key: string, runId: string, now: number, leaseMs: number): Promise<StartClaim> {
    if (this.#stmt.claim!.run(key, runId, now).changes === 1) return { runId, state: 'claimed' };
    const r = this.#stmt.claimed!.get(key) as { run_id: string; started: number; claimed_at: number };
    if (r.started === 1) return { runId: r.run_id, state: 'started' };
    if (r.claimed_at + leaseMs > now) return { runId: r.run_id, state: 'busy' };
    const took = this.#stmt.takeOver!.run(now, key, r.claimed_at).changes === 1;
    return { runId: r.run_id, state: took ? 'claimed' : 'busy' };
  }

  async markStarted(key: string): Promise<void> {
    this.#stmt.started!.run(key);
  }

  async releaseStart(key: string): Promise<void> {
    this.#stmt.release!.run(key);
  }

  async annotate(runId: string, params: Record<string, unknown>): Promise<void> {
    const run = await this.getRun(runId);
    if (run) this.#stmt.params!.run(JSON.stringify({ ...run.params, ...params }), runId);
  }

  #setRange(runId: string, p: RangeProgress): void {
    this.#stmt.setRange!.run(
      runId,
      p.rangeNo,
      p.start,
      p.end,
      p.ids,
      p.blocks,
      p.done ? 1 : 0,
      p.hops,
      json(p.checkpoint),
      Date.now(),
    );
  }

  async setRanges(runId: string, ranges: RangeProgress[]): Promise<void> {
    transaction(this.db, () => {
      for (const p of ranges) this.#setRange(runId, p);
    });
  }

  async ranges(runId: string): Promise<RangeProgress[]> {
    return (this.#stmt.ranges!.all(runId) as SqlRow[]).map((r) => ({
      rangeNo: Number(r.range_no),
      start: String(r.start_token),
      end: String(r.end_token),
      ids: Number(r.ids),
      blocks: Number(r.blocks),
      done: r.done === 1,
      hops: Number(r.hops),
      checkpoint: r.checkpoint ? JSON.parse(String(r.checkpoint)) : null,
    }));
  }

  async enqueued(runId: string, blocks: PendingBlock[], progress?: RangeProgress): Promise<void> {
    const now = Date.now();
    transaction(this.db, () => {
      for (const b of blocks)
        this.#stmt.pending!.run(runId, b.rangeNo, b.seq, packIds(b.ids), json(b.context), now);
      if (progress) this.#setRange(runId, progress);
    });
  }

  async recordBlock(runId: string, b: BlockOutcome): Promise<void> {
    this.#stmt.record!.run(
      runId,
      b.stage,
      b.rangeNo,
      b.seq,
      b.status,
      packIds(b.ids),
      packIds(b.failedIds),
      b.reason,
      b.attempts,
      b.httpStatus,
      b.response?.slice(0, 4000) ?? null,
      json(b.context),
      Date.now(),
    );
  }

  async *blocks(runId: string, stage: Stage = 'sync'): AsyncGenerator<BlockOutcome> {
    for (const r of this.#stmt.blocks!.iterate(runId, stage)) yield toOutcome(r as SqlRow);
  }
}
