/**
 * Starting a run: record it in the ledger, then either cut the table's token ring into scan tasks
 * (full resync) or cut the given ids into blocks (specific ids, id files, retries).
 */
import { randomBytes } from 'node:crypto';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import type { MessageQueue } from '#shared/queue.ts';
import { type Ledger, summarise } from '#shared/sync/ledger.ts';
import type { Block, Job, RunSettings, ScanTask } from '#shared/sync/messages.ts';
import { type PlanOptions, planRanges } from '#shared/sync/scan.ts';

export function newRunId(job: Job, objectType: string, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${job === 'sync' ? 'sync' : 'kcdel'}-${objectType}-${stamp}-${randomBytes(3).toString('hex')}`;
}

export interface StartRunRequest extends Omit<RunSettings, 'runId'> {
  runId?: string;
  table: 'user' | 'organisation';
  keyspace: string;
  /** Given ids (console payload, id file, retry); absent = full scan of the table. */
  ids?: string[];
  source: string;
  parentRun?: string;
  plan?: PlanOptions;
  params?: Record<string, unknown>;
}

export interface StartRunDeps {
  cassandra: CassandraClient;
  ledger: Ledger;
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
}

export function blocksOf(ids: string[], size: number): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += size) out.push(ids.slice(i, i + size));
  return out;
}

export async function startRun(req: StartRunRequest, deps: StartRunDeps): Promise<StartedRun> {
  const run: RunSettings = {
    runId: req.runId ?? newRunId(req.job, req.objectType),
    job: req.job,
    objectType: req.objectType,
    dryRun: req.dryRun,
    verify: req.verify,
    blockSize: req.blockSize,
    sleepMs: req.sleepMs,
  };
  if (req.ids) {
    const chunks = blocksOf(req.ids, run.blockSize);
    await deps.ledger.createRun(run, {
      source: req.source,
      ranges: 1,
      ...(req.parentRun ? { parentRun: req.parentRun } : {}),
      ...(req.params ? { params: req.params } : {}),
    });
    const bodies = chunks.map((ids, seq) =>
      JSON.stringify({ type: 'block', run, rangeNo: 0, seq, ids } satisfies Block),
    );
    await deps.blockQueue.send(bodies);
    await deps.ledger.setRange(run.runId, {
      rangeNo: 0,
      start: 'ids',
      end: 'ids',
      ids: req.ids.length,
      blocks: chunks.length,
      done: true,
      hops: 0,
    });
    return { runId: run.runId, run, tasks: 0, ids: req.ids.length, blocks: chunks.length };
  }
  const ranges = await planRanges(deps.cassandra, req.keyspace, req.table, {
    ...req.plan,
    blockSize: run.blockSize,
  });
  await deps.ledger.createRun(run, {
    source: req.source,
    ranges: ranges.length,
    ...(req.params ? { params: req.params } : {}),
  });
  await deps.ledger.setRanges(
    run.runId,
    ranges.map((r) => ({ ...r, ids: 0, blocks: 0, done: false, hops: 0 })),
  );
  const tasks = ranges.map((r) =>
    JSON.stringify({
      type: 'scan',
      run,
      keyspace: req.keyspace,
      table: req.table,
      rangeNo: r.rangeNo,
      start: r.start,
      end: r.end,
    } satisfies ScanTask),
  );
  await deps.scanQueue.send(tasks);
  return { runId: run.runId, run, tasks: tasks.length, ids: 0, blocks: 0 };
}

export class RunNotFoundError extends Error {
  override name = 'RunNotFoundError';
}

/**
 * The request for a new run over exactly the failed ids of an earlier one (failed blocks and
 * unconfirmed ids), with the earlier run's settings; null when nothing failed.
 */
export async function retryRequest(
  ledger: Ledger,
  runId: string,
  keyspace: string,
): Promise<StartRunRequest | null> {
  const summary = await summarise(ledger, runId);
  if (!summary) throw new RunNotFoundError(`no run ${runId} in the ledger (${ledger.ks})`);
  const ids = [...new Set(summary.failures.map((f) => f.id))];
  if (ids.length === 0) return null;
  const prior = summary.run;
  return {
    job: prior.job,
    objectType: prior.objectType,
    table: prior.objectType === 'organisation' ? 'organisation' : 'user',
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
