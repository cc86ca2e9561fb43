/**
 * What the sync job needs from the outside world, as small interfaces. The cores (scan, worker, run,
 * local) use only these; the adapters are `cassandra-ids.ts` and `cassandra-ledger.ts` (Cassandra),
 * `shared/queue/sqs.ts` (SQS), `shared/clients/sync-api.ts` (undici), and `memory.ts` holds an in-memory
 * adapter of each for the unit tests.
 */
import type { MessageQueue } from '#shared/queue/queue.ts';
import type { Checkpoint, RunSettings } from '#shared/sync/messages.ts';

export type { MessageQueue };

// ---------------------------------------------------------------------------------------------------
// Id source

/** A token range (start, end]; an end at the minimum token means "to the end of the ring". */
export interface TokenRange {
  start: string;
  end: string;
}

export interface IdPage {
  ids: string[];
  /** Paging state of the next page; null when the range is exhausted. */
  next: string | null;
}

/**
 * A table's ids by token range (a full scan). Ids given by the operator (a file, a console payload, a
 * retry) need no port: they are a list.
 */
export interface IdSource {
  /** The ring as sorted, non-wrapping vnode ranges that tile it. */
  tokenRanges(): Promise<TokenRange[]>;
  /** The table's estimated row count; 0 when the store has not sized it yet. */
  estimateRows(keyspace: string, table: string): Promise<number>;
  /** How many ids a range holds, counting at most `limit` (the planner's probe of unsized tables). */
  countIds(keyspace: string, table: string, range: TokenRange, limit: number): Promise<number>;
  /** One page of a range's ids in token order, from a paging state (null = the first page). */
  page(
    keyspace: string,
    table: string,
    range: TokenRange,
    pageState: string | null,
    fetchSize: number,
  ): Promise<IdPage>;
}

/**
 * A table's rows by id (point look-ups on the partition key, never a scan): which of these ids have a
 * row, with the named text columns of each. Used to tell which ids of another store exist here.
 */
export interface RowLookup {
  rows(
    keyspace: string,
    table: string,
    ids: readonly string[],
    columns?: readonly string[],
  ): Promise<Map<string, Record<string, string | null>>>;
}

/**
 * A filter between the scan and the blocks: of a scanned page's ids, the ones to sync. A run names its
 * filter (`run.filter`, set by whoever started it); the scanning side resolves the name to a filter.
 */
export interface IdFilter {
  keep(ids: string[], target: { keyspace: string; table: string; objectType: string }): Promise<string[]>;
}

// ---------------------------------------------------------------------------------------------------
// Sync API

export interface SyncCallResult {
  /** True only for HTTP 200. */
  ok: boolean;
  /** Last HTTP status; null when the last attempt got no response. */
  status: number | null;
  /** The exact JSON string sent (the job writes it into the Talend-format logs). */
  requestBody: string;
  /** The last response body as received ("" when none). */
  responseBody: string;
  attempts: number;
  /** Network error or why the retries stopped; no secrets. */
  error?: string;
  /** The last response's Retry-After, in ms, when it had one. */
  retryAfterMs?: number;
  /** Verified mode, HTTP 200: ids the service reports as indexed. */
  confirmedIds?: Set<string>;
  /** Verified mode, HTTP 200: requested ids absent (or not true) in `result.esSyncResponse`. */
  unconfirmedIds?: string[];
}

/** One attempt of a call (the first request or a retry): what an adaptive pacer learns from. */
export interface AttemptReport {
  /** The answer's HTTP status; null when none came (network error, timeout). */
  status: number | null;
  /** From sending the request to the answer's headers (or the failure), in ms. */
  latencyMs: number;
  /** The answer's Retry-After, in ms, when it had one. */
  retryAfterMs?: number;
}

export interface SyncOptions {
  /** Ask for the verified mode (`"operationType":"sync"`): the service answers per id. */
  verify?: boolean;
  signal?: AbortSignal;
  /** Told after every attempt, as it ends (retried attempts included), before the call returns. */
  onAttempt?: (attempt: AttemptReport) => void;
  /** Awaited before a retry is sent, once its backoff is over (a pacer's turn for it). */
  beforeRetry?: () => Promise<unknown>;
}

/** Sunbird's Sync API. HTTP and network failures never throw: they come back as `ok: false`. */
export interface SyncApi {
  sync(objectType: string, ids: string[], options?: SyncOptions): Promise<SyncCallResult>;
  /**
   * The preflight, before a run's first side effect: one request that proves the API answers and accepts
   * the key and route, without syncing anything. Throws on the taxonomy: unreachable → service
   * unavailable, key refused → credentials refused, no such route → bad configuration.
   */
  check(signal?: AbortSignal): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Run ledger

/** `pending`: handed to the queue, outcome not known yet (what `resume` sends again). */
export type BlockStatus = 'succeeded' | 'failed' | 'partial' | 'dry-run' | 'skipped' | 'pending';
/** A block passes through stages: `sync` (the Sync API call), then whatever stage the run names. */
export type Stage = string;

export interface RunInfo {
  source: string;
  /** Token sub-ranges of a scan (1 for an id list). */
  ranges: number;
  parentRun?: string | undefined;
  /** Job-specific settings and counts, kept for reports. */
  params?: Record<string, unknown> | undefined;
}

export interface RunRecord extends RunSettings {
  source: string;
  createdAt: Date;
  ranges: number;
  parentRun: string | null;
  params: Record<string, unknown>;
}

export interface RangeProgress {
  rangeNo: number;
  start: string;
  end: string;
  ids: number;
  blocks: number;
  done: boolean;
  hops: number;
  /** Where the scan of an unfinished range goes on (what `resume` continues from). */
  checkpoint?: Checkpoint | null | undefined;
}

/** A block handed to the queue, before its outcome is known. */
export interface PendingBlock {
  rangeNo: number;
  seq: number;
  ids: string[];
  context?: Record<string, string> | undefined;
}

export interface BlockOutcome {
  rangeNo: number;
  seq: number;
  stage: Stage;
  status: BlockStatus;
  ids: string[];
  failedIds: string[];
  reason: string | null;
  attempts: number;
  httpStatus: number | null;
  response: string | null;
  /** The block's context (the starting job's data), kept so a later stage can be resumed with it. */
  context?: Record<string, string> | undefined;
  updatedAt?: Date | undefined;
}

/**
 * The run ledger: every run's settings, per-range enumeration progress and per-block outcome. Writes are
 * upserts keyed by stable identities (run; run + range; run + range + stage + seq), so a redelivered
 * message rewrites the same record instead of double-counting.
 */
export interface StartClaim {
  runId: string;
  state: 'claimed' | 'started' | 'busy';
}

export interface RunLedger {
  /** Checks the ledger's storage is there (a clear bad-input error says how to create it when not). */
  ready(): Promise<void>;
  createRun(run: RunSettings, info: RunInfo): Promise<void>;
  getRun(runId: string): Promise<RunRecord | null>;
  /**
   * Claims the idempotency key of a run start, atomically (a conditional insert or update):
   * - `claimed`: this call holds the key now — a new claim (`runId` is the one given), or the take-over of
   *   a claim released by a failed start or older than `leaseMs` (its start died; `runId` is that start's);
   * - `started`: the start holding the key completed; `runId` is its run;
   * - `busy`: another start holds the key and may still be running.
   * A start redelivered with the same key (an EventBridge or Lambda retry) so never starts a second run.
   */
  claimStart(key: string, runId: string, now: number, leaseMs: number): Promise<StartClaim>;
  /** The start holding `key` completed (its tasks or blocks are all enqueued). */
  markStarted(key: string): Promise<void>;
  /** The start holding `key` failed: the next start with the key takes over its run at once. */
  releaseStart(key: string): Promise<void>;
  /** Merges `params` into a run's recorded parameters (e.g. the settings a resume applied). */
  annotate(runId: string, params: Record<string, unknown>): Promise<void>;
  /** Recent runs, newest first. */
  recentRuns(limit: number): Promise<RunRecord[]>;
  setRanges(runId: string, ranges: RangeProgress[]): Promise<void>;
  ranges(runId: string): Promise<RangeProgress[]>;
  /**
   * Blocks about to be handed to the queue (recorded `pending` unless the block already has an outcome), and
   * the range's progress after them — written before the blocks are sent, so a run stopped at any point
   * can be resumed without losing or re-sending a confirmed block. A ledger may keep only the progress
   * where the queue itself holds the blocks durably (SQS on AWS).
   */
  enqueued(runId: string, blocks: PendingBlock[], progress?: RangeProgress): Promise<void>;
  recordBlock(runId: string, outcome: BlockOutcome): Promise<void>;
  /** Every recorded block of a stage, in (range, seq) order; pass the run's ranges when already read. */
  blocks(runId: string, stage?: Stage, known?: RangeProgress[]): AsyncIterable<BlockOutcome>;
}
