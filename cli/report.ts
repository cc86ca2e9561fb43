/**
 * `sunbird-dataops report <runId>`: the run's summary from the ledger; optionally the Talend-format
 * logs rebuilt from it (`--logs`), and the failed ids as a file for the next `--id-file` (`--failed-ids`).
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  addSettingOptions,
  CASSANDRA_CONNECTION,
  configFromOptions,
  EXIT,
  fail,
  isInputError,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import { ensureLedger } from '#cli/sync.ts';
import { buildSyncRequestBody } from '#shared/clients/sync-api.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { DeletionLedger } from '#shared/keycloak/deletion-ledger.ts';
import { type RunSummary, summarise } from '#shared/sync/ledger.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';
import { TalendLogs } from '#shared/sync/talend-log.ts';

const REPORT_SETTINGS: SettingKey[] = [...CASSANDRA_CONNECTION, 'cassandra.opsKeyspace'];

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
    `  ids enumerated: ${s.idsEnumerated} in ${s.blocksExpected} blocks`,
    `  blocks: ${s.blocks.succeeded} accepted, ${s.blocks.partial} partly confirmed, ${s.blocks.failed} failed, ${s.blocks['dry-run']} dry run, ${s.blocksPending} pending`,
    `  ids synced: ${s.idsSucceeded}, failed: ${s.idsFailed}`,
    ...(s.failures.length
      ? ['  first failures:', ...s.failures.slice(0, 5).map((f) => `    ${f.id}: ${f.reason}`)]
      : []),
  ].join('\n');
}

/** For the Keycloak job: how many ids ended in each deletion outcome. */
export async function deletionCounts(rt: SyncRuntime, runId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for await (const row of new DeletionLedger(rt.ledger).rows(runId))
    counts[row.outcome] = (counts[row.outcome] ?? 0) + 1;
  return counts;
}

export async function writeTalendLogsFromLedger(
  rt: SyncRuntime,
  runId: string,
  dir: string,
  stamp = Date.now(),
): Promise<{ success: string; failure: string; calls: number }> {
  const run = await rt.ledger.getRun(runId);
  if (!run) throw new Error(`no run ${runId}`);
  const logs = await TalendLogs.open(dir, stamp);
  let n = 0;
  for await (const b of rt.ledger.blocks(runId)) {
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

export function registerReportCommand(program: Command): void {
  const cmd = program
    .command('report <runId>')
    .description('Print a run’s summary from the ledger; export logs and failed ids');
  addSettingOptions(cmd, REPORT_SETTINGS)
    .option('--out <dir>', 'where exported files go', '.')
    .option('--logs', 'write SyncSuccess_<ms>.log / SyncFailure_<ms>.log in the original format')
    .option('--failed-ids [file]', 'write the failed ids, one per line (default <out>/failedIds_<runId>.txt)')
    .option('--ids [file]', 'write every enumerated id (a dry run’s syncIds.csv)')
    .option('--json', 'print the summary as JSON')
    .action(async (runId: string, opts: Record<string, unknown>) => {
      let cfg: FlatConfig;
      try {
        cfg = configFromOptions(opts, REPORT_SETTINGS);
      } catch (err) {
        fail((err as Error).message);
      }
      const rt = new SyncRuntime(cfg);
      let code: number = EXIT.ok;
      try {
        await ensureLedger(rt);
        const summary = await summarise(rt.ledger, runId);
        if (!summary) fail(`no run ${runId} in the ledger (${cfg['cassandra.opsKeyspace']})`);
        const out = resolve((opts.out as string) ?? '.');
        if (opts.logs || opts.failedIds || opts.ids) await mkdir(out, { recursive: true });
        if (opts.json)
          console.log(JSON.stringify({ ...summary, failures: summary.failures.length }, null, 2));
        else console.log(formatSummary(summary));
        if (summary.run.job === 'delete-keycloak-users') {
          const counts = await deletionCounts(rt, runId);
          const parts = Object.entries(counts).map(([k, n]) => `${k} ${n}`);
          console.log(`  deletion stage: ${parts.length ? parts.join(', ') : 'no block deleted yet'}`);
          if ((counts.failed ?? 0) > 0) code = EXIT.someFailed;
        }
        if (opts.logs) {
          const written = await writeTalendLogsFromLedger(rt, runId, out);
          console.log(`logs (${written.calls} calls): ${written.success}\n      ${written.failure}`);
        }
        if (opts.failedIds) {
          const path =
            typeof opts.failedIds === 'string'
              ? resolve(opts.failedIds)
              : join(out, `failedIds_${runId}.txt`);
          const ids = [...new Set(summary.failures.map((f) => f.id))];
          const w = createWriteStream(path);
          for (const id of ids) w.write(`${id}\n`);
          await new Promise((r) => w.end(r));
          console.log(`failed ids (${ids.length}): ${path} — use it as --id-file`);
        }
        if (opts.ids) {
          const path = typeof opts.ids === 'string' ? resolve(opts.ids) : join(out, 'syncIds.csv');
          const w = createWriteStream(path);
          let count = 0;
          for await (const b of rt.ledger.blocks(runId)) {
            for (const id of b.ids) w.write(`${id}\n`);
            count += b.ids.length;
          }
          await new Promise((r) => w.end(r));
          console.log(`ids (${count}): ${path}`);
        }
        if (summary.idsFailed > 0 || summary.blocks.failed > 0) code = EXIT.someFailed;
      } catch (err) {
        await rt.close().catch(() => {});
        fail((err as Error).message, isInputError(err) ? EXIT.badInput : EXIT.someFailed);
      }
      await rt.close();
      process.exit(code);
    });
}

export function registerRunsCommand(program: Command): void {
  const cmd = program.command('runs').description('List recent runs from the ledger, newest first');
  addSettingOptions(cmd, REPORT_SETTINGS)
    .option('--limit <n>', 'how many runs', '20')
    .action(async (opts: Record<string, unknown>) => {
      let cfg: FlatConfig;
      let limit: number;
      try {
        cfg = configFromOptions(opts, REPORT_SETTINGS);
        limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit expects a whole number ≥ 1');
      } catch (err) {
        fail((err as Error).message);
      }
      await withRuntime(cfg, async (rt) => {
        await ensureLedger(rt);
        const runs = await rt.ledger.recentRuns(limit);
        if (runs.length === 0) console.log('no runs in the ledger');
        for (const r of runs) {
          console.log(
            `${r.runId}  ${r.createdAt.toISOString()}  ${r.job} ${r.objectType}${r.dryRun ? ' (dry run)' : ''}  ${r.source}`,
          );
        }
        return EXIT.ok;
      });
    });
}
