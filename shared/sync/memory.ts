/**
 * In-memory adapters of the sync job's ports, so the cores' rules run in milliseconds in the unit tests:
 * a table of ids on a simulated token ring, a run ledger in maps, and a scriptable Sync API. The queue's
 * in-memory adapter is `MemoryQueue` (shared/queue/queue.ts).
 */
import { buildSyncRequestBody, preflightVerdict } from '#shared/clients/sync-api.ts';
import type { RunSettings } from '#shared/sync/messages.ts';
import type {
  BlockOutcome,
  IdPage,
  IdSource,
  PendingBlock,
  RangeProgress,
  RowLookup,
  RunInfo,
  RunLedger,
  RunRecord,
  Stage,
  StartClaim,
  SyncApi,
  SyncCallResult,
  SyncOptions,
  TokenRange,
} from '#shared/sync/ports.ts';
import { inRange, MIN_TOKEN, splitRange, tokenOf } from '#shared/sync/tokens.ts';

const MAX_TOKEN = (2n ** 63n - 1n).toString();

/**
 * Tables of ids (`keyspace.table` → ids) on a ring of `vnodes` equal ranges; pages in token order. Rows
 * may carry text columns (`setColumns`) for the row look-up.
 */
export class MemoryIdSource implements IdSource, RowLookup {
  readonly #tables = new Map<string, Array<{ id: string; token: bigint }>>();
  readonly #columns = new Map<string, Map<string, Record<string, string | null>>>();
  /** Ids looked up so far through `rows`. */
  lookedUp = 0;
  readonly #vnodes: number;
  /** Pages read so far (reads per range and paging are what the scan's tests look at). */
  pagesRead = 0;
  /** What `estimateRows` answers (Cassandra's size_estimates); 0 = not sized yet. */
  estimate = 0;

  constructor(tables: Record<string, readonly string[]>, opts: { vnodes?: number } = {}) {
    this.#vnodes = opts.vnodes ?? 16;
    for (const [name, ids] of Object.entries(tables)) this.set(name, ids);
  }

  set(name: string, ids: readonly string[]): void {
    const rows = ids.map((id) => ({ id, token: tokenOf(id) }));
    rows.sort((a, b) => (a.token < b.token ? -1 : a.token > b.token ? 1 : 0));
    this.#tables.set(name, rows);
  }

  /** Sets text columns of existing rows (`keyspace.table` → id → columns). */
  setColumns(name: string, values: Record<string, Record<string, string | null>>): void {
    const m = this.#columns.get(name) ?? new Map<string, Record<string, string | null>>();
    for (const [id, cols] of Object.entries(values)) m.set(id, { ...m.get(id), ...cols });
    this.#columns.set(name, m);
  }

  async rows(
    keyspace: string,
    table: string,
    ids: readonly string[],
    columns: readonly string[] = [],
  ): Promise<Map<string, Record<string, string | null>>> {
    this.lookedUp += ids.length;
    const name = `${keyspace}.${table}`;
    const present = new Set(this.#rows(keyspace, table).map((r) => r.id));
    const out = new Map<string, Record<string, string | null>>();
    for (const id of ids) {
      if (!present.has(id)) continue;
      const cols = this.#columns.get(name)?.get(id) ?? {};
      out.set(id, Object.fromEntries(columns.map((c) => [c, cols[c] ?? null])));
    }
    return out;
  }

  #rows(keyspace: string, table: string): Array<{ id: string; token: bigint }> {
    return this.#tables.get(`${keyspace}.${table}`) ?? [];
  }

  async tokenRanges(): Promise<TokenRange[]> {
    // The whole ring (MIN, MAX] cut evenly, the last range running to the end of the ring.
    const parts = splitRange({ start: MIN_TOKEN, end: MAX_TOKEN }, this.#vnodes);
    parts[parts.length - 1] = { start: parts.at(-1)!.start, end: MIN_TOKEN };
    return parts;
  }

  async estimateRows(): Promise<number> {
    return this.estimate;
  }

  async countIds(keyspace: string, table: string, range: TokenRange, limit: number): Promise<number> {
    return Math.min(limit, this.#rows(keyspace, table).filter((r) => inRange(r.token, range)).length);
  }

  async page(
    keyspace: string,
    table: string,
    range: TokenRange,
    pageState: string | null,
    fetchSize: number,
  ): Promise<IdPage> {
    this.pagesRead++;
    const rows = this.#rows(keyspace, table).filter((r) => inRange(r.token, range));
    const from = pageState ? Number(pageState) : 0;
    const ids = rows.slice(from, from + fetchSize).map((r) => r.id);
    const next = from + fetchSize < rows.length ? String(from + fetchSize) : null;
    return { ids, next };
  }
}

/** The run ledger in maps, with the same upsert semantics as the Cassandra adapter. */
export class MemoryRunLedger implements RunLedger {
  readonly runs = new Map<string, RunRecord>();
  readonly #ranges = new Map<string, Map<number, RangeProgress>>();
  readonly #blocks = new Map<string, Map<string, BlockOutcome>>();
  /** Block writes so far (a redelivered block rewrites its record: the count goes up, the records do not). */
  blockWrites = 0;

  async ready(): Promise<void> {}

  async createRun(run: RunSettings, info: RunInfo): Promise<void> {
    this.runs.set(run.runId, {
      ...run,
      source: info.source,
      createdAt: new Date(),
      ranges: info.ranges,
      parentRun: info.parentRun ?? null,
      params: info.params ?? {},
    });
  }

  async getRun(runId: string): Promise<RunRecord | null> {
    return this.runs.get(runId) ?? null;
  }

  readonly #keys = new Map<string, { runId: string; started: boolean; claimedAt: number }>();

  async claimStart(key: string, runId: string, now: number, leaseMs: number): Promise<StartClaim> {
    const claim = this.#keys.get(key);
    if (!claim) {
      this.#keys.set(key, { runId, started: false, claimedAt: now });
      return { runId, state: 'claimed' };
    }
    if (claim.started) return { runId: claim.runId, state: 'started' };
    if (claim.claimedAt + leaseMs > now) return { runId: claim.runId, state: 'busy' };
    claim.claimedAt = now;
    return { runId: claim.runId, state: 'claimed' };
  }

  async markStarted(key: string): Promise<void> {
    const claim = this.#keys.get(key);
    if (claim) claim.started = true;
  }

  async releaseStart(key: string): Promise<void> {
    const claim = this.#keys.get(key);
    if (claim) claim.claimedAt = 0;
  }

  async annotate(runId: string, params: Record<string, unknown>): Promise<void> {
    const run = this.runs.get(runId);
    if (run) this.runs.set(runId, { ...run, params: { ...run.params, ...params } });
  }

  async recentRuns(limit: number): Promise<RunRecord[]> {
    return [...this.runs.values()]
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
      .slice(0, limit);
  }

  async setRanges(runId: string, ranges: RangeProgress[]): Promise<void> {
    const m = this.#ranges.get(runId) ?? new Map<number, RangeProgress>();
    for (const r of ranges) m.set(r.rangeNo, { ...r });
    this.#ranges.set(runId, m);
  }

  async ranges(runId: string): Promise<RangeProgress[]> {
    return [...(this.#ranges.get(runId)?.values() ?? [])].sort((a, b) => a.rangeNo - b.rangeNo);
  }

  async enqueued(runId: string, blocks: PendingBlock[], progress?: RangeProgress): Promise<void> {
    const m = this.#blocks.get(runId) ?? new Map<string, BlockOutcome>();
    for (const b of blocks) {
      const key = `sync/${b.rangeNo}/${b.seq}`;
      if (m.has(key)) continue; // a block with an outcome keeps it
      m.set(key, {
        rangeNo: b.rangeNo,
        seq: b.seq,
        stage: 'sync',
        status: 'pending',
        ids: [...b.ids],
        failedIds: [],
        reason: null,
        attempts: 0,
        httpStatus: null,
        response: null,
        ...(b.context ? { context: b.context } : {}),
      });
    }
    this.#blocks.set(runId, m);
    if (progress) await this.setRanges(runId, [progress]);
  }

  async recordBlock(runId: string, outcome: BlockOutcome): Promise<void> {
    this.blockWrites++;
    const m = this.#blocks.get(runId) ?? new Map<string, BlockOutcome>();
    m.set(`${outcome.stage}/${outcome.rangeNo}/${outcome.seq}`, { ...outcome, updatedAt: new Date() });
    this.#blocks.set(runId, m);
  }

  async *blocks(runId: string, stage: Stage = 'sync'): AsyncGenerator<BlockOutcome> {
    const all = [...(this.#blocks.get(runId)?.values() ?? [])].filter((b) => b.stage === stage);
    yield* all.sort((a, b) => a.rangeNo - b.rangeNo || a.seq - b.seq);
  }
}

/** What the fake Sync API answers to one call. */
export type FakeAnswer =
  | { status: number; body?: string; retryAfterMs?: number }
  /** No response at all (a network error after the client's own retries). */
  | { network: string }
  /** HTTP 200, but verified mode confirms only these ids. */
  | { confirm: string[] };

export interface FakeCall {
  objectType: string;
  ids: string[];
  verify: boolean;
  at: number;
}

/**
 * A Sync API that answers from a script (then 200 by default) and records every call. The preflight
 * answers `preflight` (default: the service's 400 to an unknown objectType, i.e. accepted) and is judged
 * as the real client judges it.
 */
export class FakeSyncApi implements SyncApi {
  readonly calls: FakeCall[] = [];
  /** Preflight checks made. */
  checks = 0;
  readonly #script: FakeAnswer[];
  readonly #fallback: (call: FakeCall) => FakeAnswer;
  readonly #now: () => number;
  readonly #preflight: { status: number | null; error?: string };

  constructor(
    opts: {
      script?: FakeAnswer[];
      answer?: (call: FakeCall) => FakeAnswer;
      now?: () => number;
      preflight?: { status: number | null; error?: string };
    } = {},
  ) {
    this.#script = [...(opts.script ?? [])];
    this.#fallback = opts.answer ?? (() => ({ status: 200 }));
    this.#now = opts.now ?? Date.now;
    this.#preflight = opts.preflight ?? { status: 400 };
  }

  async check(): Promise<void> {
    this.checks++;
    preflightVerdict(this.#preflight, 'http://fake-sync-api/v1/data/sync', true);
  }

  /** Every id of every call, in call order. */
  get ids(): string[] {
    return this.calls.flatMap((c) => c.ids);
  }

  async sync(objectType: string, ids: string[], options: SyncOptions = {}): Promise<SyncCallResult> {
    const call: FakeCall = { objectType, ids: [...ids], verify: options.verify === true, at: this.#now() };
    this.calls.push(call);
    const answer = this.#script.shift() ?? this.#fallback(call);
    const requestBody = buildSyncRequestBody(objectType, ids, call.verify);
    if ('network' in answer)
      return { ok: false, status: null, requestBody, responseBody: '', attempts: 1, error: answer.network };
    if ('confirm' in answer) {
      const confirmed = new Set(answer.confirm);
      const esSyncResponse = Object.fromEntries(answer.confirm.map((id) => [id, true]));
      return {
        ok: true,
        status: 200,
        requestBody,
        responseBody: JSON.stringify({ responseCode: 'OK', result: { esSyncResponse } }),
        attempts: 1,
        confirmedIds: confirmed,
        unconfirmedIds: ids.filter((id) => !confirmed.has(id)),
      };
    }
    const ok = answer.status === 200;
    const responseBody =
      answer.body ??
      JSON.stringify({
        responseCode: ok ? 'OK' : 'CLIENT_ERROR',
        params: { status: ok ? 'SUCCESS' : 'FAILED' },
      });
    return {
      ok,
      status: answer.status,
      requestBody,
      responseBody,
      attempts: 1,
      ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}),
      ...(ok && call.verify ? { confirmedIds: new Set(ids), unconfirmedIds: [] } : {}),
    };
  }
}
