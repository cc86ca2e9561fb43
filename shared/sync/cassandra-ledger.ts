/**
 * The Cassandra adapter of the run ledger (port in `ports.ts`), kept in this tool's own keyspace so
 * reports and retries work after the fact, from any machine (and from Lambda).
 *
 * Partitions stay bounded whatever the table size: ranges live in one partition per run (a run has at
 * most a few thousand token sub-ranges), and blocks in partitions of (run, range, chunk) holding at most
 * BLOCKS_PER_CHUNK rows. All writes are upserts keyed by the block's stable identity (range, seq), so a
 * redelivered message or a retried invocation rewrites the same row instead of double-counting — which is
 * also why every statement here may be retried across a Cassandra blip (`executeIdempotent`).
 */

import cassandra from 'cassandra-driver';
import {
  batchIdempotent,
  type CassandraClient,
  executeIdempotent,
  pagedRows,
  type Row,
} from '#shared/clients/cassandra.ts';
import { ConfigError } from '#shared/config.ts';
import { forEachLimit } from '#shared/core/concurrency.ts';
import { GroupCommit } from '#shared/core/group-commit.ts';
import { decodeIds, encodeIds } from '#shared/sync/ids.ts';
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

export const BLOCKS_PER_CHUNK = 1000;
/** The tables a ledger keyspace must hold (the deletion stage's records included). */
const LEDGER_TABLES = ['runs', 'run_ranges', 'run_blocks', 'run_deletions', 'run_keys'];
/** Ledger rows expire after 90 days unless the operator changes the table's TTL. */
const TTL_SECONDS = 90 * 24 * 3600;
const MAX_RESPONSE_CHARS = 4000;

export function ledgerTables(ks: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${ks}.runs (
      run_id text PRIMARY KEY, job text, object_type text, source text, dry_run boolean, verify boolean,
      block_size int, sleep_ms int, created_at timestamp, ranges int, parent_run text, params text
    ) WITH default_time_to_live = ${TTL_SECONDS}`,
    `CREATE TABLE IF NOT EXISTS ${ks}.run_ranges (
      run_id text, range_no int, start_token text, end_token text, ids bigint, blocks int, done boolean,
      hops int, checkpoint text, updated_at timestamp,
      PRIMARY KEY (run_id, range_no)
    ) WITH default_time_to_live = ${TTL_SECONDS}`,
    `CREATE TABLE IF NOT EXISTS ${ks}.run_blocks (
      run_id text, range_no int, chunk int, seq int, stage text, status text, ids_packed blob,
      failed_packed blob, reason text, attempts int, http_status int, response text, context text,
      updated_at timestamp,
      PRIMARY KEY ((run_id, range_no, chunk), stage, seq)
    ) WITH default_time_to_live = ${TTL_SECONDS}`,
    `CREATE TABLE IF NOT EXISTS ${ks}.run_keys (
      key text PRIMARY KEY, run_id text, started boolean, claimed_at bigint
    ) WITH default_time_to_live = ${TTL_SECONDS}`,
  ];
}

/** Columns added since the tables were first created: `migrate` adds them to an existing ledger. */
export const LEDGER_COLUMNS: ReadonlyArray<{ table: string; column: string; type: string }> = [
  { table: 'run_ranges', column: 'checkpoint', type: 'text' },
  { table: 'run_blocks', column: 'context', type: 'text' },
  // Ids as one cell per block (`encodeIds`: 16 bytes per UUID); ledgers from 0.1 also hold them in the
  // list columns `ids` / `failed_ids`, which are still read for their rows.
  { table: 'run_blocks', column: 'ids_packed', type: 'blob' },
  { table: 'run_blocks', column: 'failed_packed', type: 'blob' },
];

/** Outcomes written together (one unlogged batch per partition) while earlier writes are in flight. */
const OUTCOMES_PER_WRITE = 16;
const OUTCOME_WRITES_IN_FLIGHT = 2;

const BLOCK_COLUMNS =
  'run_id, range_no, chunk, seq, stage, status, ids_packed, failed_packed, reason, attempts, http_status, response, context, updated_at';

interface OutcomeRow {
  runId: string;
  outcome: BlockOutcome;
  at: Date;
}

const partitionOf = (r: OutcomeRow): string =>
  `${r.runId}\u0000${r.outcome.rangeNo}\u0000${Math.floor(r.outcome.seq / BLOCKS_PER_CHUNK)}`;

function toRunRecord(r: Row): RunRecord {
  const params = JSON.parse(r.params ?? '{}') as Record<string, unknown>;
  return {
    runId: r.run_id,
    job: r.job,
    objectType: r.object_type,
    dryRun: r.dry_run,
    verify: r.verify,
    blockSize: r.block_size,
    sleepMs: r.sleep_ms,
    source: r.source,
    createdAt: r.created_at,
    ranges: r.ranges,
    parentRun: r.parent_run,
    params,
    ...runExtrasFrom(params),
  };
}

export interface CassandraLedgerOptions {
  /**
   * Record blocks as pending when they are enqueued (for resumable CLI runs whose blocks live in memory).
   * Off for Lambda: the SQS queue holds the blocks durably, and the extra writes would slow the fan-out.
   */
  trackPending?: boolean;
}

export class CassandraRunLedger implements RunLedger {
  readonly client: CassandraClient;
  readonly ks: string;
  readonly #trackPending: boolean;
  readonly #outcomes = new GroupCommit<OutcomeRow>((rows) => this.#writeOutcomes(rows), {
    maxBatch: OUTCOMES_PER_WRITE,
    maxInFlight: OUTCOME_WRITES_IN_FLIGHT,
  });

  constructor(client: CassandraClient, keyspace: string, opts: CassandraLedgerOptions = {}) {
    this.client = client;
    this.ks = keyspace;
    this.#trackPending = opts.trackPending ?? false;
  }

  async ready(): Promise<void> {
    const rs = await executeIdempotent(
      this.client,
      'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?',
      [this.ks],
    );
    const tables = new Set(rs.rows.map((r) => r.table_name as string));
    const missing = LEDGER_TABLES.filter((t) => !tables.has(t));
    if (missing.length) {
      throw new ConfigError(
        `the run ledger in keyspace "${this.ks}" is missing ${missing.join(', ')}: create it with \`npm run migrate -- --only ops\``,
      );
    }
  }

  async createRun(run: RunSettings, info: RunInfo): Promise<void> {
    await executeIdempotent(
      this.client,
      `INSERT INTO ${this.ks}.runs (run_id, job, object_type, source, dry_run, verify, block_size, sleep_ms, created_at, ranges, parent_run, params) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
      [
        run.runId,
        run.job,
        run.objectType,
        info.source,
        run.dryRun,
        run.verify,
        run.blockSize,
        run.sleepMs,
        new Date(),
        info.ranges,
        info.parentRun ?? null,
        JSON.stringify({ ...info.params, ...runExtras(run) }),
      ],
    );
  }

  async claimStart(key: string, runId: string, now: number, leaseMs: number): Promise<StartClaim> {
    // Lightweight transactions: of two starts with the same key, exactly one claims (or takes over) it.
    const serial = { prepare: true, serialConsistency: cassandra.types.consistencies.localSerial };
    const rs = await this.client.execute(
      `INSERT INTO ${this.ks}.run_keys (key, run_id, started, claimed_at) VALUES (?, ?, false, ?) IF NOT EXISTS`,
      [key, runId, cassandra.types.Long.fromNumber(now)],
      serial,
    );
    if (rs.wasApplied()) return { runId, state: 'claimed' };
    const row = rs.first();
    const holder = String(row.get('run_id'));
    if (row.get('started')) return { runId: holder, state: 'started' };
    const claimedAt = row.get('claimed_at') as cassandra.types.Long;
    if (claimedAt.toNumber() + leaseMs > now) return { runId: holder, state: 'busy' };
    const took = await this.client.execute(
      `UPDATE ${this.ks}.run_keys SET claimed_at = ? WHERE key = ? IF claimed_at = ? AND started = false`,
      [cassandra.types.Long.fromNumber(now), key, claimedAt],
      serial,
    );
    return { runId: holder, state: took.wasApplied() ? 'claimed' : 'busy' };
  }

  async markStarted(key: string): Promise<void> {
    await this.client.execute(`UPDATE ${this.ks}.run_keys SET started = true WHERE key = ?`, [key], {
      prepare: true,
    });
  }

  async releaseStart(key: string): Promise<void> {
    await this.client.execute(
      `UPDATE ${this.ks}.run_keys SET claimed_at = 0 WHERE key = ? IF started = false`,
      [key],
      { prepare: true, serialConsistency: cassandra.types.consistencies.localSerial },
    );
  }

  async annotate(runId: string, params: Record<string, unknown>): Promise<void> {
    const run = await this.getRun(runId);
    if (!run) return;
    const merged = { ...run.params, ...params, ...(run.next ? { next: run.next } : {}) };
    await this.client.execute(`UPDATE ${this.ks}.runs SET params = ? WHERE run_id = ?`, [
      JSON.stringify(merged),
      runId,
    ]);
  }

  async getRun(runId: string): Promise<RunRecord | null> {
    const rs = await executeIdempotent(this.client, `SELECT * FROM ${this.ks}.runs WHERE run_id = ?`, [
      runId,
    ]);
    const r = rs.first();
    return r ? toRunRecord(r) : null;
  }

  /** Recent runs, newest first. The runs table is small (one row per run, 90-day TTL), so a scan is fine. */
  async recentRuns(limit: number): Promise<RunRecord[]> {
    const runs: RunRecord[] = [];
    for await (const r of pagedRows(this.client, `SELECT * FROM ${this.ks}.runs`, [], 1000))
      runs.push(toRunRecord(r));
    return runs.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).slice(0, limit);
  }

  async #setRange(runId: string, p: RangeProgress): Promise<void> {
    await executeIdempotent(
      this.client,
      `INSERT INTO ${this.ks}.run_ranges (run_id, range_no, start_token, end_token, ids, blocks, done, hops, checkpoint, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
      [
        runId,
        p.rangeNo,
        p.start,
        p.end,
        p.ids,
        p.blocks,
        p.done,
        p.hops,
        p.checkpoint ? JSON.stringify(p.checkpoint) : null,
        new Date(),
      ],
    );
  }

  async setRanges(runId: string, ps: RangeProgress[]): Promise<void> {
    await forEachLimit(ps, 32, (p) => this.#setRange(runId, p));
  }

  async ranges(runId: string): Promise<RangeProgress[]> {
    const out: RangeProgress[] = [];
    for await (const r of pagedRows(this.client, `SELECT * FROM ${this.ks}.run_ranges WHERE run_id = ?`, [
      runId,
    ])) {
      out.push({
        rangeNo: r.range_no,
        start: r.start_token,
        end: r.end_token,
        ids: Number(r.ids ?? 0),
        blocks: r.blocks ?? 0,
        done: Boolean(r.done),
        hops: r.hops ?? 0,
        checkpoint: r.checkpoint ? JSON.parse(r.checkpoint) : null,
      });
    }
    return out;
  }

  async enqueued(runId: string, blocks: PendingBlock[], progress?: RangeProgress): Promise<void> {
    if (this.#trackPending) {
      // IF NOT EXISTS: a block that already has an outcome (a re-scanned page on resume) keeps it.
      await forEachLimit(blocks, 16, async (b) => {
        await this.client.execute(
          `INSERT INTO ${this.ks}.run_blocks (run_id, range_no, chunk, seq, stage, status, ids_packed, failed_packed, attempts, context, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) IF NOT EXISTS`,
          [
            runId,
            b.rangeNo,
            Math.floor(b.seq / BLOCKS_PER_CHUNK),
            b.seq,
            'sync',
            'pending',
            encodeIds(b.ids),
            null,
            0,
            b.context ? JSON.stringify(b.context) : null,
            new Date(),
          ],
        );
      });
    }
    if (progress) await this.#setRange(runId, progress);
  }

  /**
   * One row per block outcome, written with group commit: outcomes that arrive while earlier writes are
   * in flight go out together, one unlogged batch per (run, range, chunk) partition — one mutation each.
   * The caller still waits until its own row is written.
   */
  recordBlock(runId: string, outcome: BlockOutcome): Promise<void> {
    return this.#outcomes.submit({ runId, outcome, at: new Date() });
  }

  async #writeOutcomes(rows: OutcomeRow[]): Promise<void> {
    const query = `INSERT INTO ${this.ks}.run_blocks (${BLOCK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`;
    const byPartition = Map.groupBy(rows, partitionOf);
    await Promise.all(
      [...byPartition.values()].map((group) => {
        const statements = group.map((r) => ({ query, params: outcomeParams(r) }));
        return statements.length === 1
          ? executeIdempotent(this.client, query, statements[0]!.params)
          : batchIdempotent(this.client, statements);
      }),
    );
  }

  /** Every recorded block of a run, range by range, in (range, seq) order; memory stays per-page. Pass
   * the run's ranges when they were already read. */
  async *blocks(runId: string, stage: Stage = 'sync', known?: RangeProgress[]): AsyncGenerator<BlockOutcome> {
    const ranges = [...(known ?? (await this.ranges(runId)))].sort((a, b) => a.rangeNo - b.rangeNo);
    for (const range of ranges) {
      // A range still being scanned may have more blocks than its last checkpoint says; read on until
      // a chunk comes back empty past the known count.
      const knownChunks = Math.ceil(range.blocks / BLOCKS_PER_CHUNK);
      for (let chunk = 0; ; chunk++) {
        let seen = 0;
        const rows = pagedRows(
          this.client,
          `SELECT * FROM ${this.ks}.run_blocks WHERE run_id = ? AND range_no = ? AND chunk = ? AND stage = ?`,
          [runId, range.rangeNo, chunk, stage],
          500,
        );
        for await (const r of rows) {
          seen++;
          yield {
            rangeNo: r.range_no,
            seq: r.seq,
            stage: r.stage,
            status: r.status,
            ids: r.ids_packed != null ? decodeIds(r.ids_packed) : (r.ids ?? []),
            failedIds: r.failed_packed != null ? decodeIds(r.failed_packed) : (r.failed_ids ?? []),
            reason: r.reason,
            attempts: r.attempts ?? 0,
            httpStatus: r.http_status,
            response: r.response,
            ...(r.context ? { context: JSON.parse(r.context) as Record<string, string> } : {}),
            updatedAt: r.updated_at,
          };
        }
        if (seen === 0 && chunk >= knownChunks) break;
      }
    }
  }
}

function outcomeParams({ runId, outcome: b, at }: OutcomeRow): unknown[] {
  return [
    runId,
    b.rangeNo,
    Math.floor(b.seq / BLOCKS_PER_CHUNK),
    b.seq,
    b.stage,
    b.status,
    encodeIds(b.ids),
    encodeIds(b.failedIds),
    b.reason,
    b.attempts,
    b.httpStatus,
    b.response?.slice(0, MAX_RESPONSE_CHARS) ?? null,
    b.context ? JSON.stringify(b.context) : null,
    at,
  ];
}
