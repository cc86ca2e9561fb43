/**
 * Continuing an interrupted run from its ledger (`sunbird-dataops resume <runId>`): what is left is
 * - every token range not scanned to its end, from its last checkpoint (page state, next block number,
 *   ids carried over);
 * - every block recorded as pending (handed to the queue, outcome unknown): sent once more, so at most
 *   the blocks that were in flight when the run stopped reach the Sync API twice;
 * - for a run whose accepted blocks go on to a later stage (`run.next`), every accepted block that stage
 *   has no record of.
 * Nothing with a recorded outcome is done again. New pacing (block size, sleep) applies to what is left;
 * the ledger keeps the original settings and the applied ones.
 */
import { BadInputError } from '#shared/core/errors.ts';
import type { Block, RunSettings, ScanTask } from '#shared/sync/messages.ts';
import { type Table, tableOf } from '#shared/sync/objects.ts';
import type { BlockOutcome, RunLedger, RunRecord } from '#shared/sync/ports.ts';
import { RunNotFoundError } from '#shared/sync/run.ts';

export interface ResumeOverrides {
  blockSize?: number | undefined;
  sleepMs?: number | undefined;
  /** Auto pacing from now on (the ledger keeps the sleep time, not the pace). */
  pace?: 'auto' | undefined;
  maxRate?: number | undefined;
}

export interface ResumePlan {
  record: RunRecord;
  /** The run's settings with the new pacing applied: every block sent from now on carries these. */
  run: RunSettings;
  scanTasks: ScanTask[];
  /** Blocks whose outcome is unknown (pending in the ledger). */
  pending: Block[];
  /** Accepted blocks the run's next stage has not recorded. */
  forward: Block[];
  /** Ids already enumerated, and real Sync API calls already recorded (Talend request numbers go on). */
  enumerated: number;
  callsSoFar: number;
  /** Ids already cut into blocks (with a filter, those it kept). */
  kept: number;
}

function block(run: RunSettings, b: BlockOutcome, ids: string[]): Block {
  return {
    type: 'block',
    run,
    rangeNo: b.rangeNo,
    seq: b.seq,
    ids,
    ...(b.context ? { context: b.context } : {}),
  };
}

async function nextStageBacklog(
  ledger: RunLedger,
  record: RunRecord,
  run: RunSettings,
  accepted: BlockOutcome[],
) {
  const next = record.next;
  if (!next) return [];
  const done = new Set<string>();
  for await (const b of ledger.blocks(record.runId, next)) done.add(`${b.rangeNo}/${b.seq}`);
  return accepted
    .filter((b) => !done.has(`${b.rangeNo}/${b.seq}`))
    .map((b) => {
      const failed = new Set(b.failedIds);
      return block(
        run,
        b,
        b.ids.filter((id) => !failed.has(id)),
      );
    })
    .filter((b) => b.ids.length > 0);
}

export async function planResume(
  ledger: RunLedger,
  runId: string,
  over: ResumeOverrides = {},
): Promise<ResumePlan> {
  const record = await ledger.getRun(runId);
  if (!record) throw new RunNotFoundError(`no run ${runId} in the ledger`);
  const run: RunSettings = {
    runId: record.runId,
    job: record.job,
    objectType: record.objectType,
    dryRun: record.dryRun,
    verify: record.verify,
    blockSize: over.blockSize ?? record.blockSize,
    sleepMs: over.sleepMs ?? record.sleepMs,
    ...(over.pace === 'auto'
      ? { pace: 'auto' as const, ...(over.maxRate ? { maxRate: over.maxRate } : {}) }
      : {}),
    ...(record.next ? { next: record.next } : {}),
  };
  const ranges = await ledger.ranges(runId);
  const table = (record.params.table as Table | undefined) ?? tableOf(record.objectType);
  const keyspace = record.params.keyspace as string | undefined;
  const scanTasks: ScanTask[] = [];
  for (const r of ranges.filter((x) => !x.done)) {
    if (!table || !keyspace)
      throw new BadInputError(`run ${runId} does not record which table it scans; it cannot be resumed`);
    scanTasks.push({
      type: 'scan',
      run,
      keyspace,
      table,
      rangeNo: r.rangeNo,
      start: r.start,
      end: r.end,
      ...(r.checkpoint ? { checkpoint: r.checkpoint } : {}),
    });
  }
  const pending: Block[] = [];
  const accepted: BlockOutcome[] = [];
  let callsSoFar = 0;
  let kept = 0;
  for await (const b of ledger.blocks(runId, 'sync', ranges)) {
    kept += b.ids.length;
    if (b.status === 'pending') pending.push(block(run, b, b.ids));
    else if (b.status === 'succeeded' || b.status === 'partial' || b.status === 'dry-run') accepted.push(b);
    if (b.status !== 'pending' && b.status !== 'dry-run') callsSoFar++;
  }
  return {
    record,
    run,
    scanTasks,
    pending,
    forward: await nextStageBacklog(ledger, record, run, accepted),
    enumerated: ranges.reduce((n, r) => n + r.ids, 0),
    callsSoFar,
    kept,
  };
}
