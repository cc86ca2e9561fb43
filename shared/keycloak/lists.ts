/**
 * The deletion job's result lists, as the original wrote them: deleted (or would-delete for a dry run),
 * failed (`id,<error>`), not found, skipped because protected, and skipped for another reason (`id,reason`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DELETE_STAGE } from '#shared/keycloak/delete-stage.ts';
import type { DeletionRecords, DeletionRow } from '#shared/keycloak/ports.ts';
import type { PreparedSelection } from '#shared/keycloak/selection.ts';
import type { RunLedger } from '#shared/sync/ports.ts';

export interface DeletionLists {
  deleted: string[];
  wouldDelete: string[];
  notFound: string[];
  failed: Array<{ id: string; error: string }>;
  skippedProtected: string[];
  skipped: Array<{ id: string; reason: string }>;
}

export const LIST_FILES = {
  deleted: 'deleted.txt',
  wouldDelete: 'would-delete.txt',
  notFound: 'not-found.txt',
  failed: 'failed.csv',
  skippedProtected: 'skipped-protected.txt',
  skipped: 'skipped.csv',
} as const;

/** The lists before any block ran: what the selection already left out. */
export function selectionLists(prepared: PreparedSelection): DeletionLists {
  const lists: DeletionLists = {
    deleted: [],
    wouldDelete: [],
    notFound: [...prepared.notInKeycloak],
    failed: [],
    skippedProtected: [],
    skipped: [],
  };
  for (const e of prepared.excluded) {
    if (e.reason === 'protected-role' || e.reason === 'service-account') lists.skippedProtected.push(e.id);
    else {
      const reason = e.reason === 'not-in-cassandra' ? 'not in Cassandra' : 'not selected (no role mapping)';
      lists.skipped.push({ id: e.id, reason });
    }
  }
  return lists;
}

export function addRows(lists: DeletionLists, rows: readonly DeletionRow[]): void {
  for (const r of rows) {
    switch (r.outcome) {
      case 'deleted':
        lists.deleted.push(r.id);
        break;
      case 'would-delete':
        lists.wouldDelete.push(r.id);
        break;
      case 'not-found':
        lists.notFound.push(r.id);
        break;
      case 'failed':
        lists.failed.push({ id: r.id, error: r.error ?? 'failed' });
        break;
      case 'skipped-protected':
        lists.skippedProtected.push(r.id);
        break;
      case 'skipped-not-in-cassandra':
        lists.skipped.push({ id: r.id, reason: 'not in Cassandra (checked at delete time)' });
        break;
      case 'skipped-no-role':
        lists.skipped.push({ id: r.id, reason: 'no role mapping any more (checked at delete time)' });
        break;
    }
  }
}

const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ');

/** Writes the lists into `dir`; returns the files' paths. */
export async function writeLists(dir: string, lists: DeletionLists, dryRun: boolean): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const lines = (xs: readonly string[]): string => (xs.length ? `${xs.join('\n')}\n` : '');
  const files: Array<[string, string]> = [
    [LIST_FILES.failed, lines(lists.failed.map((f) => `${f.id},${oneLine(f.error)}`))],
    [LIST_FILES.notFound, lines(lists.notFound)],
    [LIST_FILES.skippedProtected, lines(lists.skippedProtected)],
    [LIST_FILES.skipped, lines(lists.skipped.map((s) => `${s.id},${s.reason}`))],
    dryRun ? [LIST_FILES.wouldDelete, lines(lists.wouldDelete)] : [LIST_FILES.deleted, lines(lists.deleted)],
  ];
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  return files.map(([name]) => join(dir, name));
}

/** Every per-id deletion record of a run (only the partitions of blocks the ledger knows are read). */
export async function* runDeletionRows(
  ledger: RunLedger,
  records: DeletionRecords,
  runId: string,
): AsyncGenerator<DeletionRow> {
  const blocks: Array<{ rangeNo: number; seq: number }> = [];
  for await (const b of ledger.blocks(runId, DELETE_STAGE)) blocks.push({ rangeNo: b.rangeNo, seq: b.seq });
  yield* records.rows(runId, blocks);
}

/** How many ids of a run ended in each deletion outcome. */
export async function deletionCounts(
  ledger: RunLedger,
  records: DeletionRecords,
  runId: string,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for await (const row of runDeletionRows(ledger, records, runId))
    counts[row.outcome] = (counts[row.outcome] ?? 0) + 1;
  return counts;
}
