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
  failWith,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { CassandraDeletionRecords } from '#shared/keycloak/cassandra-records.ts';
import { deletionCounts } from '#shared/keycloak/lists.ts';
import { KEYCLOAK_JOB } from '#shared/keycloak/start.ts';
import { writeTalendLogsFromLedger } from '#shared/sync/outputs.ts';
import { RunNotFoundError } from '#shared/sync/run.ts';
import type { SyncRuntime } from '#shared/sync/runtime.ts';
import { formatSummary, type RunSummary, summarise } from '#shared/sync/summary.ts';

const REPORT_SETTINGS: SettingKey[] = [...CASSANDRA_CONNECTION, 'cassandra.opsKeyspace'];

/** Writes a list of ids, one per line. */
async function writeIds(path: string, ids: Iterable<string> | AsyncIterable<string>): Promise<number> {
  const w = createWriteStream(path);
  let n = 0;
  for await (const id of ids) {
    w.write(`${id}\n`);
    n++;
  }
  await new Promise((r) => w.end(r));
  return n;
}

async function* everyId(rt: SyncRuntime, runId: string): AsyncGenerator<string> {
  for await (const b of rt.ledger.blocks(runId)) yield* b.ids;
}

/** The report's exports (`--logs`, `--failed-ids`, `--ids`) into `out`. */
async function exportFiles(
  rt: SyncRuntime,
  summary: RunSummary,
  opts: Record<string, unknown>,
  out: string,
): Promise<void> {
  const runId = summary.run.runId;
  if (opts.logs || opts.failedIds || opts.ids) await mkdir(out, { recursive: true });
  if (opts.logs) {
    const written = await writeTalendLogsFromLedger(rt.ledger, runId, out);
    console.log(`logs (${written.calls} calls): ${written.success}\n      ${written.failure}`);
  }
  if (opts.failedIds) {
    const path =
      typeof opts.failedIds === 'string' ? resolve(opts.failedIds) : join(out, `failedIds_${runId}.txt`);
    const n = await writeIds(path, new Set(summary.failures.map((f) => f.id)));
    console.log(`failed ids (${n}): ${path} — use it as --id-file`);
  }
  if (opts.ids) {
    const path = typeof opts.ids === 'string' ? resolve(opts.ids) : join(out, 'syncIds.csv');
    const n = await writeIds(path, everyId(rt, runId));
    console.log(`ids (${n}): ${path}`);
  }
}

async function report(rt: SyncRuntime, runId: string, opts: Record<string, unknown>): Promise<number> {
  await rt.ledger.ready();
  const summary = await summarise(rt.ledger, runId);
  if (!summary)
    throw new RunNotFoundError(`no run ${runId} in the ledger (${rt.cfg['cassandra.opsKeyspace']})`);
  let code: number = summary.idsFailed > 0 || summary.blocks.failed > 0 ? EXIT.someFailed : EXIT.ok;
  if (opts.json) console.log(JSON.stringify({ ...summary, failures: summary.failures.length }, null, 2));
  else console.log(formatSummary(summary));
  if (summary.run.job === KEYCLOAK_JOB) {
    const records = new CassandraDeletionRecords(rt.cassandra, rt.cfg['cassandra.opsKeyspace']);
    const counts = await deletionCounts(rt.ledger, records, runId);
    const parts = Object.entries(counts).map(([k, n]) => `${k} ${n}`);
    console.log(`  deletion stage: ${parts.length ? parts.join(', ') : 'no block deleted yet'}`);
    if ((counts.failed ?? 0) > 0) code = EXIT.someFailed;
  }
  await exportFiles(rt, summary, opts, resolve((opts.out as string) ?? '.'));
  return code;
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
        failWith(err);
      }
      await withRuntime(cfg, (rt) => report(rt, runId, opts));
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
        failWith(err);
      }
      await withRuntime(cfg, async (rt) => {
        await rt.ledger.ready();
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
