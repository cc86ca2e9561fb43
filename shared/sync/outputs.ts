/**
 * A local run's files, as the original job left them: the Talend-format success/failure logs of a real
 * run, and `syncIds.csv` (the ids that would be synced) of a dry run without an id file. Also the logs
 * rebuilt from the ledger after the fact (`report --logs`).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildSyncRequestBody } from '#shared/clients/sync-api.ts';
import type { Block } from '#shared/sync/messages.ts';
import type { RunLedger, SyncCallResult } from '#shared/sync/ports.ts';
import { TalendLogs } from '#shared/sync/talend-log.ts';

export class RunOutputs {
  readonly logs: TalendLogs | undefined;
  readonly idsCsvPath: string | undefined;
  readonly #idsCsv: WriteStream | undefined;

  readonly dir: string;
  /** The logs' epoch-millis stamp (`SyncSuccess_<stamp>.log`): a resumed run appends to the same files. */
  readonly stamp: number;

  private constructor(
    dir: string,
    stamp: number,
    logs: TalendLogs | undefined,
    idsCsvPath: string | undefined,
    append: boolean,
  ) {
    this.dir = dir;
    this.stamp = stamp;
    this.logs = logs;
    this.idsCsvPath = idsCsvPath;
    this.#idsCsv = idsCsvPath ? createWriteStream(idsCsvPath, { flags: append ? 'a' : 'w' }) : undefined;
  }

  /**
   * A real run writes the Talend logs; a dry run of a full scan writes syncIds.csv. With `stamp` (a resumed
   * run), the files of that stamp are appended to.
   */
  static async open(
    dir: string,
    run: { dryRun: boolean; givenIds: boolean; stamp?: number | undefined },
  ): Promise<RunOutputs> {
    await mkdir(dir, { recursive: true });
    const stamp = run.stamp ?? Date.now();
    const logs = run.dryRun ? undefined : await TalendLogs.open(dir, stamp);
    const csv = run.dryRun && !run.givenIds ? join(dir, 'syncIds.csv') : undefined;
    return new RunOutputs(dir, stamp, logs, csv, run.stamp !== undefined);
  }

  /** The files written, for summaries and `--json`. */
  get files(): string[] {
    return [this.logs?.successPath, this.logs?.failurePath, this.idsCsvPath].filter((f): f is string =>
      Boolean(f),
    );
  }

  /** After each real Sync API call (the Talend "Request No" is the call's sequence number). */
  call(result: SyncCallResult, requestNo: number): void {
    this.logs?.append(result.ok, requestNo, result.requestBody, result.responseBody || result.error || '');
  }

  blockDone(block: Block): void {
    this.#idsCsv?.write(`${block.ids.join('\n')}\n`);
  }

  async close(): Promise<void> {
    await this.logs?.close();
    const csv = this.#idsCsv;
    if (csv) await new Promise((r) => csv.end(r));
  }
}

/** Rebuilds the Talend-format logs of a run from its ledger records. */
export async function writeTalendLogsFromLedger(
  ledger: RunLedger,
  runId: string,
  dir: string,
  stamp = Date.now(),
): Promise<{ success: string; failure: string; calls: number }> {
  const run = await ledger.getRun(runId);
  if (!run) throw new Error(`no run ${runId}`);
  const logs = await TalendLogs.open(dir, stamp);
  let n = 0;
  for await (const b of ledger.blocks(runId)) {
    if (b.status === 'dry-run') continue;
    logs.append(
      b.status !== 'failed',
      ++n,
      buildSyncRequestBody(run.objectType, b.ids, run.verify),
      b.response ?? '',
    );
  }
  await logs.close();
  return { success: logs.successPath, failure: logs.failurePath, calls: n };
}
