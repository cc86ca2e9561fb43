/**
 * A whole run on one machine with the same cores the Lambda functions use: scan tasks are consumed by a
 * few concurrent scanner loops, blocks by paced worker loops, chained through a queue — in process by
 * default, or a real SQS queue (`--queue-url`), which several runs (and the deployed worker) may share.
 *
 * Stopping: `signal` (Ctrl-C, SIGTERM, a fatal answer) stops taking new blocks and scan pages; the blocks
 * in flight finish and are recorded, unless `abort` cancels them too (their outcome then stays unknown:
 * pending in the ledger, for `resume`). `resumeLocal` continues a run from its ledger (shared/sync/resume.ts).
 */
import { ServiceUnavailableError } from '#shared/core/errors.ts';
import { type Clock, systemClock } from '#shared/core/time.ts';
import { MemoryQueue, type ReceivedMessage, type ReceivingQueue } from '#shared/queue/queue.ts';
import {
  type Block,
  blockSchema,
  parseMessage,
  type ScanTask,
  scanTaskSchema,
} from '#shared/sync/messages.ts';
import { type Pacer, RunPacer } from '#shared/sync/pacing.ts';
import type {
  BlockOutcome,
  IdFilter,
  IdSource,
  MessageQueue,
  RunLedger,
  SyncApi,
  SyncCallResult,
} from '#shared/sync/ports.ts';
import type { ResumePlan } from '#shared/sync/resume.ts';
import { type StartedRun, type StartRunRequest, startRun } from '#shared/sync/run.ts';
import { scanRange } from '#shared/sync/scan.ts';
import { summarise } from '#shared/sync/summary.ts';
import { processBlock } from '#shared/sync/worker.ts';

export interface LocalRunDeps {
  ids: IdSource;
  ledger: RunLedger;
  syncApi: SyncApi;
  /** The block queue between scan and workers; default: an in-process queue. */
  blocks?: ReceivingQueue;
  /** The block queue keeps messages on its own (SQS): a resume does not send pending blocks again. */
  durable?: boolean;
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
  /** Stops the run: no new block or scan page; blocks not processed go to `onSkipped`. */
  signal?: AbortSignal;
  /** Cancels the Sync API calls in flight (their blocks stay pending in the ledger). */
  abort?: AbortSignal;
  /** With a shared queue: give up when no block of this run arrived for this long (names the missing ones). */
  stallMs?: number;
  clock?: Clock;
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
  /** Stopped before it finished (resumable). */
  interrupted: boolean;
}

/** Where a run's counts stand when this process takes it on (0 for a new run; the ledger's on resume). */
interface SoFar {
  enumerated: number;
  kept: number;
  callsSoFar: number;
}

/** What the scanners and workers share while a run goes on. */
class RunState {
  enumerated: number;
  kept: number;
  expectedBlocks: number;
  scanning: boolean;
  requestNo: number;
  complete = false;
  lastActivity: number;
  readonly totals = { blocks: 0, ok: 0, failed: 0, idsOk: 0, idsFailed: 0 };
  constructor(started: StartedRun, so: SoFar, now: number) {
    this.enumerated = so.enumerated;
    this.kept = so.kept;
    this.expectedBlocks = started.blocks;
    this.scanning = started.tasks > 0;
    this.requestNo = so.callsSoFar;
    this.lastActivity = now;
  }
  get finished(): boolean {
    return this.complete || (!this.scanning && this.totals.blocks >= this.expectedBlocks);
  }
  count(outcome: BlockOutcome): void {
    this.totals.blocks++;
    if (outcome.status === 'failed') this.totals.failed++;
    else this.totals.ok++;
    this.totals.idsFailed += outcome.failedIds.length;
    this.totals.idsOk += outcome.ids.length - outcome.failedIds.length;
  }
}

interface Drive {
  runId: string;
  state: RunState;
  scanQueue: MemoryQueue;
  inProcess: MemoryQueue | undefined;
  deps: LocalRunDeps & { blocks: ReceivingQueue };
  hooks: LocalRunHooks;
  opts: LocalRunOptions;
  pacer: Pacer;
  clock: Clock;
}

async function scanAll(d: Drive): Promise<void> {
  const { state, deps, hooks, opts } = d;
  const scanner = async (): Promise<void> => {
    for (let body = await d.scanQueue.take(); body !== null; body = await d.scanQueue.take()) {
      if (opts.signal?.aborted) return; // the range's checkpoint is in the ledger
      let result: Awaited<ReturnType<typeof scanRange>>;
      try {
        result = await scanRange(parseMessage(scanTaskSchema, body), {
          ids: deps.ids,
          queue: deps.blocks,
          ledger: deps.ledger,
          shouldStop: () => opts.signal?.aborted === true,
          ...(opts.fetchSize ? { fetchSize: opts.fetchSize } : {}),
          ...(deps.filters ? { filters: deps.filters } : {}),
          onPage: ({ ids, kept, blocks }) => {
            state.enumerated += ids;
            state.kept += kept;
            state.expectedBlocks += blocks;
            state.lastActivity = d.clock.now();
            hooks.onEnumerated?.(state.enumerated, state.kept);
          },
        });
      } catch (err) {
        // Stopped mid-page: the page's blocks were recorded (pending) before the in-process queue closed.
        if (opts.signal?.aborted) return;
        throw err;
      }
      if (!result.done && !opts.signal?.aborted)
        await d.scanQueue.send([JSON.stringify(result.continuation)]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.scanConcurrency ?? 4) }, scanner));
}

/** Handles one block: paced, through the Sync API, into the ledger. False when it was skipped (stopped). */
async function handleBlock(d: Drive, block: Block, own: boolean): Promise<boolean> {
  const { opts, hooks, deps, state } = d;
  const go = !opts.signal?.aborted && (await d.pacer.before(block.run, opts.signal));
  if (!go) {
    if (own) await hooks.onSkipped?.(block);
    return false;
  }
  let outcome: BlockOutcome;
  try {
    ({ outcome } = await processBlock(block, {
      syncApi: deps.syncApi,
      ledger: deps.ledger,
      ...(deps.stage ? { stage: deps.stage } : {}),
      ...(opts.abort ? { signal: opts.abort } : {}),
      onCall: (b, result) => hooks.onCall?.(b, result, ++state.requestNo),
      onAttempt: (attempt) => d.pacer.observe(block.run, attempt),
      beforeRetry: () => d.pacer.before(block.run, opts.signal, { retry: true }),
    }));
  } catch (err) {
    if (!opts.abort?.aborted) throw err;
    if (own) await hooks.onSkipped?.(block); // cancelled in flight: still pending in the ledger
    return false;
  } finally {
    d.pacer.after(block.run);
  }
  state.lastActivity = d.clock.now();
  if (own) {
    state.count(outcome);
    hooks.onBlockDone?.(block, outcome);
  }
  return true;
}

/** Runs whose blocks this process may take from a shared queue: known to this ledger, no later stage. */
async function canTake(d: Drive, block: Block, known: Map<string, boolean>): Promise<boolean> {
  if (block.run.next) return false;
  let ok = known.get(block.run.runId);
  if (ok === undefined) {
    ok = (await d.deps.ledger.getRun(block.run.runId)) !== null;
    known.set(block.run.runId, ok);
  }
  return ok;
}

/** One message from the block queue: this run's block (or a known run's) is handled, another run's handed back. */
async function consume(d: Drive, m: ReceivedMessage, known: Map<string, boolean>): Promise<void> {
  let block: Block;
  try {
    block = parseMessage(blockSchema, m.body);
  } catch (err) {
    // Left for the queue's redrive policy to move to the dead-letter queue.
    d.hooks.log?.(`skipping malformed message ${m.id}: ${(err as Error).message}`);
    return;
  }
  const own = block.run.runId === d.runId;
  if (!own && !(await canTake(d, block, known))) return m.release();
  if (await handleBlock(d, block, own)) await m.ack();
  // Skipped on a stop: a shared queue gets it back at once, for the resume (or another consumer).
  else if (d.deps.durable) await m.release();
}

/** With a shared queue, an idle worker asks the ledger: done elsewhere, or stalled? */
async function idle(d: Drive, lastCheck: { at: number }): Promise<void> {
  const now = d.clock.now();
  if (!d.deps.durable || d.state.scanning || now - lastCheck.at < 5_000) return;
  lastCheck.at = now;
  const summary = await summarise(d.deps.ledger, d.runId, 'sync', 0);
  if (summary?.complete) {
    d.state.complete = true;
    return;
  }
  const stallMs = d.opts.stallMs ?? 600_000;
  if (now - d.state.lastActivity < stallMs) return;
  const missing: string[] = [];
  for await (const b of d.deps.ledger.blocks(d.runId))
    if (b.status === 'pending') missing.push(`${b.rangeNo}/${b.seq}`);
  throw new ServiceUnavailableError(
    'SQS',
    `no block of run ${d.runId} arrived for ${Math.round(stallMs / 1000)} s; still missing ${missing.length} block(s) (${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}): see \`sunbird-dataops report ${d.runId}\`, then \`sunbird-dataops resume ${d.runId}\``,
  );
}

async function work(d: Drive): Promise<void> {
  const known = new Map<string, boolean>([[d.runId, true]]);
  const lastCheck = { at: d.clock.now() };
  while (!d.state.finished) {
    const messages = await d.deps.blocks.receive({ max: 10, waitMs: 1000 });
    if (messages === null) return;
    if (messages.length === 0) await idle(d, lastCheck);
    for (const m of messages) await consume(d, m, known);
    if (d.opts.signal?.aborted && !d.inProcess) return;
  }
}

async function drive(
  started: StartedRun,
  counts: SoFar,
  d: Omit<Drive, 'state' | 'runId'>,
): Promise<LocalRunResult> {
  const t0 = Date.now();
  const state = new RunState(started, counts, d.clock.now());
  const dd: Drive = { ...d, state, runId: started.runId };
  d.scanQueue.close();
  d.hooks.onStarted?.(started);
  d.hooks.onEnumerated?.(state.enumerated, state.kept);
  // A stop unblocks workers waiting on the in-process queue: what is left goes to onSkipped.
  d.opts.signal?.addEventListener('abort', () => d.inProcess?.close(), { once: true });
  const scanners = scanAll(dd).finally(() => {
    state.scanning = false;
    d.inProcess?.close();
  });
  const workers = Array.from({ length: Math.max(1, d.opts.workerConcurrency ?? 1) }, () => work(dd));
  await Promise.all([scanners, ...workers]);
  const t = state.totals;
  return {
    runId: started.runId,
    idsEnumerated: state.enumerated,
    idsKept: state.kept,
    blocks: t.blocks,
    blocksSucceeded: t.ok,
    blocksFailed: t.failed,
    idsSucceeded: t.idsOk,
    idsFailed: t.idsFailed,
    dryRun: started.run.dryRun,
    durationMs: Date.now() - t0,
    interrupted: Boolean(d.opts.signal?.aborted) && !state.finished,
  };
}

function setup(deps: LocalRunDeps, hooks: LocalRunHooks, opts: LocalRunOptions, inProcessCapacity: number) {
  const inProcess = deps.blocks ? undefined : new MemoryQueue(inProcessCapacity);
  const blocks = deps.blocks ?? inProcess!;
  return {
    scanQueue: new MemoryQueue(Number.MAX_SAFE_INTEGER),
    inProcess,
    deps: { ...deps, blocks },
    hooks,
    opts,
    // Auto pacing decides how many of the workers call at once; fixed pacing spaces them all.
    pacer:
      deps.pacer ??
      new RunPacer({
        maxConcurrency: Math.max(1, opts.workerConcurrency ?? 1),
        clock: opts.clock ?? systemClock,
      }),
    clock: opts.clock ?? systemClock,
  };
}

export async function runLocal(
  req: StartRunRequest,
  deps: LocalRunDeps,
  hooks: LocalRunHooks = {},
  opts: LocalRunOptions = {},
): Promise<LocalRunResult> {
  // A scan is held to 256 blocks ahead of the workers; an id list is in memory anyway, and its blocks
  // are all enqueued before the workers start.
  const given = Boolean(req.ids || req.groups);
  if (!req.dryRun) await deps.syncApi.check(opts.signal); // preflight: nothing recorded or sent before it
  const d = setup(deps, hooks, opts, given ? Number.MAX_SAFE_INTEGER : 256);
  const started = await startRun(req, {
    ids: deps.ids,
    ledger: deps.ledger,
    scanQueue: d.scanQueue,
    blockQueue: d.deps.blocks,
  });
  return drive(started, { enumerated: started.ids, kept: started.ids, callsSoFar: 0 }, d);
}

/** Continues a run from its ledger; see shared/sync/resume.ts for what is left and why. */
export async function resumeLocal(
  plan: ResumePlan,
  deps: LocalRunDeps,
  hooks: LocalRunHooks = {},
  opts: LocalRunOptions = {},
): Promise<LocalRunResult> {
  if (!plan.run.dryRun) await deps.syncApi.check(opts.signal); // preflight, as for a new run
  const d = setup(deps, hooks, opts, Number.MAX_SAFE_INTEGER);
  await d.scanQueue.send(plan.scanTasks.map((t: ScanTask) => JSON.stringify(t)));
  // Pending blocks in a durable queue are still there (or come back after their visibility timeout).
  if (!deps.durable) await d.deps.blocks.send(plan.pending.map((b) => JSON.stringify(b)));
  if (plan.forward.length && plan.run.next && deps.stage) {
    await deps.stage(plan.run.next).send(plan.forward.map((b) => JSON.stringify(b)));
  }
  const started: StartedRun = {
    runId: plan.run.runId,
    run: plan.run,
    tasks: plan.scanTasks.length,
    ids: 0,
    blocks: plan.pending.length,
  };
  return drive(started, { enumerated: plan.enumerated, kept: plan.kept, callsSoFar: plan.callsSoFar }, d);
}
