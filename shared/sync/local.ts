/**
 * A whole run on one machine with the same cores the Lambda functions use: scan tasks are consumed by a
 * few concurrent scanner loops, blocks by paced worker loops, chained through a queue — in process by
 * default, or a real SQS queue (`--queue-url`).
 */
import { MemoryQueue, type ReceivedMessage, type ReceivingQueue } from '#shared/queue/queue.ts';
import { type Block, blockSchema, parseMessage, scanTaskSchema } from '#shared/sync/messages.ts';
import { FixedPacer, type Pacer } from '#shared/sync/pacing.ts';
import type {
  BlockOutcome,
  IdFilter,
  IdSource,
  MessageQueue,
  RunLedger,
  SyncApi,
  SyncCallResult,
} from '#shared/sync/ports.ts';
import { type StartedRun, type StartRunRequest, startRun } from '#shared/sync/run.ts';
import { scanRange } from '#shared/sync/scan.ts';
import { processBlock } from '#shared/sync/worker.ts';

export interface LocalRunDeps {
  ids: IdSource;
  ledger: RunLedger;
  syncApi: SyncApi;
  /** The block queue between scan and workers; default: an in-process queue. */
  blocks?: ReceivingQueue;
  /** Queues of later stages (for runs that name `next`). */
  stage?: (name: string) => MessageQueue;
  pacer?: Pacer;
  /** Resolves the filter a run names (`run.filter`). */
  filters?: (name: string) => IdFilter;
}

export interface LocalRunHooks {
  onStarted?: (run: StartedRun) => void;
  /** Ids read so far, and how many of them the run's filter kept (all, without one). */
  onEnumerated?: (idsSoFar: number, keptSoFar: number) => void;
  /** After every real Sync API call, with the call's sequence number (the Talend "Request No"). */
  onCall?: (block: Block, result: SyncCallResult, requestNo: number) => void;
  onBlockDone?: (block: Block, outcome: BlockOutcome) => void;
  /** A block not processed because the run was stopped (`opts.signal`). */
  onSkipped?: (block: Block) => Promise<void> | void;
  log?: (message: string) => void;
}

export interface LocalRunOptions {
  scanConcurrency?: number;
  workerConcurrency?: number;
  fetchSize?: number;
  /** Stops the run: blocks not yet processed are handed to `onSkipped` instead of the Sync API. */
  signal?: AbortSignal;
}

export interface LocalRunResult {
  runId: string;
  idsEnumerated: number;
  /** Ids cut into blocks: those the run's filter kept (all of them without a filter). */
  idsKept: number;
  blocks: number;
  blocksSucceeded: number;
  blocksFailed: number;
  idsSucceeded: number;
  idsFailed: number;
  dryRun: boolean;
  durationMs: number;
}

/** What the scanners and workers share while a run goes on. */
class RunState {
  enumerated: number;
  kept: number;
  expectedBlocks: number;
  scanning: boolean;
  requestNo = 0;
  readonly totals = { blocks: 0, ok: 0, failed: 0, idsOk: 0, idsFailed: 0 };
  constructor(started: StartedRun) {
    this.enumerated = started.ids;
    this.kept = started.ids;
    this.expectedBlocks = started.blocks;
    this.scanning = started.tasks > 0;
  }
  get finished(): boolean {
    return !this.scanning && this.totals.blocks >= this.expectedBlocks;
  }
  count(outcome: BlockOutcome): void {
    this.totals.blocks++;
    if (outcome.status === 'failed') this.totals.failed++;
    else this.totals.ok++;
    this.totals.idsFailed += outcome.failedIds.length;
    this.totals.idsOk += outcome.ids.length - outcome.failedIds.length;
  }
}

async function scanAll(
  scanQueue: MemoryQueue,
  state: RunState,
  deps: LocalRunDeps,
  hooks: LocalRunHooks,
  opts: LocalRunOptions,
): Promise<void> {
  const blockQueue = deps.blocks!;
  const scanner = async (): Promise<void> => {
    for (let body = await scanQueue.take(); body !== null; body = await scanQueue.take()) {
      const result = await scanRange(parseMessage(scanTaskSchema, body), {
        ids: deps.ids,
        queue: blockQueue,
        ledger: deps.ledger,
        ...(opts.fetchSize ? { fetchSize: opts.fetchSize } : {}),
        ...(deps.filters ? { filters: deps.filters } : {}),
        onPage: ({ ids, kept, blocks }) => {
          state.enumerated += ids;
          state.kept += kept;
          state.expectedBlocks += blocks;
          hooks.onEnumerated?.(state.enumerated, state.kept);
        },
      });
      if (!result.done) await scanQueue.send([JSON.stringify(result.continuation)]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.scanConcurrency ?? 4) }, scanner));
}

/** Handles one block of this run: paced, through the Sync API, into the ledger (or skipped once stopped). */
async function handleBlock(
  block: Block,
  state: RunState,
  pacer: Pacer,
  deps: LocalRunDeps,
  hooks: LocalRunHooks,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (!signal?.aborted) await pacer.before(block.run, signal);
  if (signal?.aborted) {
    await hooks.onSkipped?.(block);
    return;
  }
  const { outcome } = await processBlock(block, {
    syncApi: deps.syncApi,
    ledger: deps.ledger,
    ...(deps.stage ? { stage: deps.stage } : {}),
    onCall: (b, result) => hooks.onCall?.(b, result, ++state.requestNo),
  });
  pacer.after(block.run);
  state.count(outcome);
  hooks.onBlockDone?.(block, outcome);
}

/** One message from the block queue: this run's block is handled, another run's is handed back. */
async function consume(
  m: ReceivedMessage,
  runId: string,
  handle: (block: Block) => Promise<void>,
  log: ((message: string) => void) | undefined,
): Promise<void> {
  let block: Block;
  try {
    block = parseMessage(blockSchema, m.body);
  } catch (err) {
    // Left for the queue's redrive policy to move to the dead-letter queue.
    log?.(`skipping malformed message ${m.id}: ${(err as Error).message}`);
    return;
  }
  if (block.run.runId !== runId) return m.release();
  await handle(block);
  await m.ack();
}

export async function runLocal(
  req: StartRunRequest,
  deps: LocalRunDeps,
  hooks: LocalRunHooks = {},
  opts: LocalRunOptions = {},
): Promise<LocalRunResult> {
  const started = Date.now();
  const scanQueue = new MemoryQueue(Number.MAX_SAFE_INTEGER);
  // A scan is held to 256 blocks ahead of the workers; an id list is in memory anyway, and its blocks
  // are all enqueued before the workers start.
  const given = Boolean(req.ids || req.groups);
  const inProcess = deps.blocks ? undefined : new MemoryQueue(given ? Number.MAX_SAFE_INTEGER : 256);
  const d: LocalRunDeps = { ...deps, blocks: deps.blocks ?? inProcess! };
  const run = await startRun(req, { ids: d.ids, ledger: d.ledger, scanQueue, blockQueue: d.blocks! });
  scanQueue.close();
  hooks.onStarted?.(run);
  const state = new RunState(run);
  hooks.onEnumerated?.(state.enumerated, state.kept);
  const scanners = scanAll(scanQueue, state, d, hooks, opts).finally(() => {
    state.scanning = false;
    inProcess?.close();
  });
  const pacer = d.pacer ?? new FixedPacer();
  const handle = (block: Block) => handleBlock(block, state, pacer, d, hooks, opts.signal);
  const worker = async (): Promise<void> => {
    while (!state.finished) {
      const messages = await d.blocks!.receive({ max: 10, waitMs: 1000 });
      if (messages === null) return;
      for (const m of messages) await consume(m, run.runId, handle, hooks.log);
    }
  };
  await Promise.all([scanners, ...Array.from({ length: Math.max(1, opts.workerConcurrency ?? 1) }, worker)]);
  const t = state.totals;
  return {
    runId: run.runId,
    idsEnumerated: state.enumerated,
    idsKept: state.kept,
    blocks: t.blocks,
    blocksSucceeded: t.ok,
    blocksFailed: t.failed,
    idsSucceeded: t.idsOk,
    idsFailed: t.idsFailed,
    dryRun: req.dryRun,
    durationMs: Date.now() - started,
  };
}
