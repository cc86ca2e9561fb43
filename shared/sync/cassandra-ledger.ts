/**
 * The Cassandra adapter of the run ledger (port in `ports.ts`), kept in this tool's own keyspace so
 * reports and retries work after the fact, from any machine (and from Lambda).
 *
 * Partitions stay bounded whatever the table size: ranges live in one partition per run (a run has at
 * most a few thousand token sub-ranges), and blocks in partitions of (run, range, chunk) holding at most
 * BLOCKS_PER_CHUNK rows. All writes are upserts keyed by the block's stable identity (range, seq), so a
 * redelivered message or a retried invocation rewrites the same row instead of double-counting.
 */

import { type CassandraClient, pagedRows, type Row } from '#shared/clients/cassandra.ts';
import { ConfigError } from '#shared/config.ts';
import { forEachLimit } from '#shared/core/concurrency.ts';
import type { RunSettings } from '#shared/sync/messages.ts';
import type {
  BlockOutcome,
  RangeProgress,
  RunInfo,
  RunLedger,
  RunRecord,
  Stage,
} from '#shared/sync/ports.ts';

export const BLOCKS_PER_CHUNK = 1000;
/** The tables a ledger keyspace must hold (the deletion stage's records included). */
const LEDGER_TABLES = ['runs', 'run_ranges', 'run_blocks', 'run_deletions'];
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
      hops int, updated_at timestamp,
      PRIMARY KEY (run_id, range_no)
    ) WITH default_time_to_live = ${TTL_SECONDS}`,
    `CREATE TABLE IF NOT EXISTS ${ks}.run_blocks (
      run_id text, range_no int, chunk int, seq int, stage text, status text, ids list<text>,
      failed_ids list<text>, reason text, attempts int, http_status int, response text, updated_at timestamp,
      PRIMARY KEY ((run_id, range_no, chunk), stage, seq)
    ) WITH default_time_to_live = ${TTL_SECONDS}`,
  ];
}

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
    ...(typeof params.next === 'string' ? { next: params.next } : {}),
    ...(typeof params.filter === 'string' ? { filter: params.filter } : {}),
  };
}

export class CassandraRunLedger implements RunLedger {
  readonly client: CassandraClient;
  readonly ks: string;

  constructor(client: CassandraClient, keyspace: string) {
    this.client = client;
    this.ks = keyspace;
  }

  async ready(): Promise<void> {
    const rs = await this.client.execute(
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
    await this.client.execute(
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
        JSON.stringify({
          ...info.params,
          ...(run.next ? { next: run.next } : {}),
          ...(run.filter ? { filter: run.filter } : {}),
        }),
      ],
    );
  }

  async getRun(runId: string): Promise<RunRecord | null> {
    const rs = await this.client.execute(`SELECT * FROM ${this.ks}.runs WHERE run_id = ?`, [runId]);
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
    await this.client.execute(
      `INSERT INTO ${this.ks}.run_ranges (run_id, range_no, start_token, end_token, ids, blocks, done, hops, updated_at) VALUES (?,?,?,?,?,?,?,?,?)`,
      [runId, p.rangeNo, p.start, p.end, p.ids, p.blocks, p.done, p.hops, new Date()],
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
      });
    }
    return out;
  }

  async recordBlock(runId: string, b: BlockOutcome): Promise<void> {
    await this.client.execute(
      `INSERT INTO ${this.ks}.run_blocks (run_id, range_no, chunk, seq, stage, status, ids, failed_ids, reason, attempts, http_status, response, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      [
        runId,
        b.rangeNo,
        Math.floor(b.seq / BLOCKS_PER_CHUNK),
        b.seq,
        b.stage,
        b.status,
        b.ids,
        b.failedIds,
        b.reason,
        b.attempts,
        b.httpStatus,
        b.response?.slice(0, MAX_RESPONSE_CHARS) ?? null,
        new Date(),
      ],
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
            ids: r.ids ?? [],
            failedIds: r.failed_ids ?? [],
            reason: r.reason,
            attempts: r.attempts ?? 0,
            httpStatus: r.http_status,
            response: r.response,
            updatedAt: r.updated_at,
          };
        }
        if (seen === 0 && chunk >= knownChunks) break;
      }
    }
  }
}
