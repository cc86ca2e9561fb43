/**
 * Starting a run: record it in the ledger, then either cut the table's token ring into scan tasks
 * (full resync) or cut the given ids into blocks (specific ids, id files, retries, another job's
 * candidates).
 */
import { randomBytes } from 'node:crypto';
import { BadInputError } from '#shared/core/errors.ts';
import type { Block, RunSettings, ScanTask } from '#shared/sync/messages.ts';
import { type Table, tableOf } from '#shared/sync/objects.ts';
import type { IdSource, MessageQueue, RunLedger } from '#shared/sync/ports.ts';
import { type PlanOptions, planScan } from '#shared/sync/scan.ts';
import { summarise } from '#shared/sync/summary.ts';

export function newRunId(prefix: string, objectType: string, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${prefix}-${objectType}-${stamp}-${randomBytes(3).toString('hex')}`;
}

/** Ids that travel together, with the starting job's data for its later stages. */
export interface IdGroup {
  ids: string[];
  context?: Record<string, string>;
}

export interface StartRunRequest extends Omit<RunSettings, 'runId'> {
  runId?: string;
  /** First part of a generated run id (default: the job). */
  runIdPrefix?: string;
  table: Table;
  keyspace: string;
  /** Given ids (console payload, id file, retry); absent = full scan of the table. */
  ids?: string[];
  /** Given ids in groups whose blocks carry a context (a group's blocks never mix with another's). */
  groups?: IdGroup[];
  source: string;
  parentRun?: string;
  plan?: PlanOptions;
  params?: Record<string, unknown>;
  /**
   * Makes the start idempotent: a second start with the same key (a redelivered schedule event, a
   * retried async invocation) returns the first run instead of starting another.
   */
  idempotencyKey?: string;
}

export interface StartRunDeps {
  ids: IdSource;
  ledger: RunLedger;
  scanQueue: MessageQueue;
  blockQueue: MessageQueue;
}

export interface StartedRun {
  runId: string;
  run: RunSettings;
  /** Scan tasks handed out (0 for id lists). */
  tasks: number;
  /** Ids and blocks enqueued now (id lists only; scans enqueue as they go). */
  ids: number;
  blocks: number;
  /** Ids the run is expected to sync: the given ids, or the planner's row estimate of a scan. */
  estimatedIds?: number | null;
  /**
   * The start repeated an earlier one (same idempotency key) and started nothing: that start completed
   * (`started`) or may still be running (`busy`).
   */
  duplicate?: 'started' | 'busy';
}

/** What the ledger keeps of a request beyond the run settings: enough to resume it (no secrets). */
function runParams(req: StartRunRequest): Record<string, unknown> {
  return { ...req.params, table: req.table, keyspace: req.keyspace };
}

export function blocksOf(ids: string[], size: number): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += size) out.push(ids.slice(i, i + size));
  return out;
}

export function runSettingsOf(req: StartRunRequest): RunSettings {
  return {
    runId: req.runId ?? newRunId(req.runIdPrefix ?? req.job, req.objectType),
    job: req.job,
    objectType: req.objectType,
    dryRun: req.dryRun,
    verify: req.verify,
    blockSize: req.blockSize,
    sleepMs: req.sleepMs,
    ...(req.pace === 'auto'
      ? { pace: 'auto' as const, ...(req.maxRate ? { maxRate: req.maxRate } : {}) }
      : {}),
    ...(req.next ? { next: req.next } : {}),
    ...(req.filter ? { filter: req.filter } : {}),
  };
}

/** The blocks of an id run: each group cut by the block size, numbered across groups. */
export function idBlocks(run: RunSettings, groups: IdGroup[]): Block[] {
  const blocks: Block[] = [];
  for (const g of groups) {
    for (const ids of blocksOf(g.ids, run.blockSize)) {
      blocks.push({
        type: 'block',
        run,
        rangeNo: 0,
        seq: blocks.length,
        ids,
        ...(g.context ? { context: g.context } : {}),
      });
    }
  }
  return blocks;
}

async function startIdRun(
  run: RunSettings,
  req: StartRunRequest,
  groups: IdGroup[],
  deps: StartRunDeps,
): Promise<StartedRun> {
  const blocks = idBlocks(run, groups);
  const ids = blocks.reduce((n, b) => n + b.ids.length, 0);
  await deps.ledger.createRun(run, {
    source: req.source,
    ranges: 1,
    parentRun: req.parentRun,
    params: runParams(req),
  });
  // Recorded as pending before they are sent, with the range's final count, so a resume finds them all.
  await deps.ledger.enqueued(run.runId, blocks, {
    rangeNo: 0,
    start: 'ids',
    end: 'ids',
    ids,
    blocks: blocks.length,
    done: true,
    hops: 0,
  });
  await deps.blockQueue.send(blocks.map((b) => JSON.stringify(b)));
  return { runId: run.runId, run, tasks: 0, ids, blocks: blocks.length, estimatedIds: ids };
}

/**
 * How long a claimed start may take before another start with its key takes it over: the longest a Lambda
 * invocation can last, so a start still running is never taken over.
 */
export const START_LEASE_MS = 15 * 60_000;

/**
 * Starts a run once per idempotency key. The key is claimed first (a conditional write): a start that
 * finds it held by a completed start, or by one that may still be running, returns that run and starts
 * nothing; one that finds it released by a failed start, or held past the lease by a start that died,
 * completes that run under the same run id — at least once, as every message of the chain.
 */
export function startRun(req: StartRunRequest, deps: StartRunDeps): Promise<StartedRun> {
  const fresh = runSettingsOf(req);
  return onceByKey(req.idempotencyKey, fresh, deps.ledger, (runId) =>
    startOnce({ ...fresh, runId }, req, deps),
  );
}

/**
 * Runs `start` under the claim of an idempotency key (none: just runs it): `start` gets the run id to use
 * (the claimed one) and runs only when the claim is held; the key is marked started when it returns, and
 * released when it throws. Exported for starts that do work before the run (a job that selects its ids first).
 */
export async function onceByKey<T extends StartedRun>(
  key: string | undefined,
  fresh: RunSettings,
  ledger: RunLedger,
  start: (runId: string) => Promise<T>,
): Promise<T | StartedRun> {
  if (!key) return start(fresh.runId);
  const claim = await ledger.claimStart(key, fresh.runId, Date.now(), START_LEASE_MS);
  if (claim.state !== 'claimed') {
    const run = (await ledger.getRun(claim.runId)) ?? { ...fresh, runId: claim.runId };
    return { runId: claim.runId, run, tasks: 0, ids: 0, blocks: 0, duplicate: claim.state };
  }
  try {
    const started = await start(claim.runId);
    await ledger.markStarted(key);
    return started;
  } catch (e) {
    await ledger.releaseStart(key).catch(() => {});
    throw e;
  }
}

async function startOnce(run: RunSettings, req: StartRunRequest, deps: StartRunDeps): Promise<StartedRun> {
  const groups = req.groups ?? (req.ids ? [{ ids: req.ids }] : undefined);
  if (groups && run.filter)
    throw new BadInputError(`filter "${run.filter}" applies to a full scan, not to given ids`);
  if (groups) return startIdRun(run, req, groups, deps);
  const { ranges, estimatedRows } = await planScan(deps.ids, req.keyspace, req.table, {
    ...req.plan,
    blockSize: run.blockSize,
  });
  await deps.ledger.createRun(run, { source: req.source, ranges: ranges.length, params: runParams(req) });
  await deps.ledger.setRanges(
    run.runId,
    ranges.map((r) => ({ ...r, ids: 0, blocks: 0, done: false, hops: 0 })),
  );
  const tasks = ranges.map((r) =>
    JSON.stringify({ type: 'scan', run, keyspace: req.keyspace, table: req.table, ...r } satisfies ScanTask),
  );
  await deps.scanQueue.send(tasks);
  return { runId: run.runId, run, tasks: tasks.length, ids: 0, blocks: 0, estimatedIds: estimatedRows };
}

export class RunNotFoundError extends BadInputError {
  override name = 'RunNotFoundError';
}

/**
 * The request for a new sync run over exactly the failed ids of an earlier one (failed blocks and
 * unconfirmed ids), with the earlier run's settings; null when nothing failed. A retry re-syncs only:
 * it never repeats a later stage of the earlier run.
 */
export async function retryRequest(
  ledger: RunLedger,
  runId: string,
  keyspace: string,
): Promise<StartRunRequest | null> {
  const summary = await summarise(ledger, runId);
  if (!summary) throw new RunNotFoundError(`no run ${runId} in the ledger`);
  const ids = [...new Set(summary.failures.map((f) => f.id))];
  if (ids.length === 0) return null;
  const prior = summary.run;
  return {
    job: 'sync',
    objectType: prior.objectType,
    table: tableOf(prior.objectType) ?? 'user',
    keyspace,
    dryRun: prior.dryRun,
    verify: prior.verify,
    blockSize: prior.blockSize,
    sleepMs: prior.sleepMs,
    ids,
    source: `retry of ${runId}`,
    parentRun: runId,
  };
}
