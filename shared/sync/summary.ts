/** A run's state, computed from its ledger records: what `report` prints and `retry` reads. */
import type { BlockStatus, RunLedger, RunRecord, Stage } from '#shared/sync/ports.ts';

export interface RunSummary {
  run: RunRecord;
  ranges: { total: number; done: number };
  idsEnumerated: number;
  blocksExpected: number;
  blocks: Record<BlockStatus, number>;
  blocksRecorded: number;
  idsSucceeded: number;
  idsFailed: number;
  /** Ids in the recorded blocks: with a filter (`run.filter`), the ids it kept and sent on. */
  idsInBlocks: number;
  /** Blocks enumerated but with no recorded outcome yet (in flight, or in the dead-letter queue). */
  blocksPending: number;
  complete: boolean;
  failures: Array<{ id: string; reason: string }>;
}

export async function summarise(
  ledger: RunLedger,
  runId: string,
  stage: Stage = 'sync',
  keepFailures = 100_000,
): Promise<RunSummary | null> {
  const run = await ledger.getRun(runId);
  if (!run) return null;
  const ranges = await ledger.ranges(runId);
  const blocks: Record<BlockStatus, number> = {
    succeeded: 0,
    failed: 0,
    partial: 0,
    'dry-run': 0,
    skipped: 0,
    pending: 0,
  };
  let recorded = 0;
  let idsSucceeded = 0;
  let idsFailed = 0;
  let idsInBlocks = 0;
  const failures: Array<{ id: string; reason: string }> = [];
  for await (const b of ledger.blocks(runId, stage, ranges)) {
    blocks[b.status]++;
    idsInBlocks += b.ids.length;
    if (b.status === 'pending') continue; // enqueued, outcome not known yet
    recorded++;
    idsFailed += b.failedIds.length;
    idsSucceeded += b.status === 'dry-run' ? 0 : b.ids.length - b.failedIds.length;
    for (const id of b.failedIds)
      if (failures.length < keepFailures) failures.push({ id, reason: b.reason ?? 'failed' });
  }
  const idsEnumerated = ranges.reduce((n, r) => n + r.ids, 0);
  const blocksExpected = ranges.reduce((n, r) => n + r.blocks, 0);
  const rangesDone = ranges.filter((r) => r.done).length;
  const enumerationDone = ranges.length > 0 && rangesDone === ranges.length && ranges.length >= run.ranges;
  return {
    run,
    ranges: { total: Math.max(run.ranges, ranges.length), done: rangesDone },
    idsEnumerated,
    blocksExpected,
    blocks,
    blocksRecorded: recorded,
    idsSucceeded,
    idsFailed,
    idsInBlocks,
    blocksPending: Math.max(0, blocksExpected - recorded),
    complete: enumerationDone && recorded >= blocksExpected,
    failures,
  };
}
export function formatSummary(s: RunSummary): string {
  const r = s.run;
  const status = s.complete
    ? s.idsFailed > 0 || s.blocks.failed > 0
      ? 'finished with failures'
      : 'finished'
    : s.ranges.done < s.ranges.total
      ? 'enumerating'
      : 'syncing';
  return [
    `run ${r.runId} — ${r.job} ${r.objectType}${r.dryRun ? ' (dry run)' : ''}${r.verify ? ' (verified)' : ''}: ${status}`,
    `  started ${r.createdAt.toISOString()} from ${r.source}${r.parentRun ? ` (retry of ${r.parentRun})` : ''}`,
    `  block size ${r.blockSize}, sleep ${r.sleepMs} ms`,
    `  token ranges scanned: ${s.ranges.done}/${s.ranges.total}`,
    r.filter
      ? `  ids checked (filter ${r.filter}): ${s.idsEnumerated}, sent on: ${s.idsInBlocks}${s.blocksPending ? ' so far' : ''} in ${s.blocksExpected} blocks`
      : `  ids enumerated: ${s.idsEnumerated} in ${s.blocksExpected} blocks`,
    `  blocks: ${s.blocks.succeeded} accepted, ${s.blocks.partial} partly confirmed, ${s.blocks.failed} failed, ${s.blocks['dry-run']} dry run, ${s.blocksPending} pending`,
    `  ids synced: ${s.idsSucceeded}, failed: ${s.idsFailed}`,
    ...(s.failures.length
      ? ['  first failures:', ...s.failures.slice(0, 5).map((f) => `    ${f.id}: ${f.reason}`)]
      : []),
  ].join('\n');
}
