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
  type CommandResult,
  configFromOptions,
  EXIT,
  LEDGER,
  Out,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { deletionCounts } from '#shared/keycloak/lists.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import { KEYCLOAK_JOB } from '#shared/keycloak/start.ts';
import { writeTalendLogsFromLedger } from '#shared/sync/outputs.ts';
import { RunNotFoundError } from '#shared/sync/run.ts';
import type { SyncRuntime } from '#shared/sync/runtime.ts';
import { formatSummary, type RunSummary, summarise } from '#shared/sync/summary.ts';

const REPORT_SETTINGS: SettingKey[] = [...CASSANDRA_CONNECTION, ...LEDGER];

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

/** The report's exports (`--logs`, `--failed-ids`, `--ids`) into `dir`; returns the files written. */
async function exportFiles(
  rt: SyncRuntime,
  summary: RunSummary,
  opts: Record<string, unknown>,
  dir: string,
  out: Out,
): Promise<string[]> {
  const runId = summary.run.runId;
  const files: string[] = [];
  if (opts.logs || opts.failedIds || opts.ids) await mkdir(dir, { recursive: true });
  if (opts.logs) {
    const written = await writeTalendLogsFromLedger(rt.ledger, runId, dir);
    out.say(`logs (${written.calls} calls): ${written.success}\n      ${written.failure}`);
    files.push(written.success, written.failure);
  }
  if (opts.failedIds) {
    const path =
      typeof opts.failedIds === 'string' ? resolve(opts.failedIds) : join(dir, `failedIds_${runId}.txt`);
    const n = await writeIds(path, new Set(summary.failures.map((f) => f.id)));
    out.say(`failed ids (${n}): ${path} — use it as --id-file`);
    files.push(path);
  }
  if (opts.ids) {
    const path = typeof opts.ids === 'string' ? resolve(opts.ids) : join(dir, 'syncIds.csv');
    const n = await writeIds(path, everyId(rt, runId));
    out.say(`ids (${n}): ${path}`);
    files.push(path);
  }
  return files;
}

async function report(
  rt: SyncRuntime,
  runId: string,
  opts: Record<string, unknown>,
  out: Out,
): Promise<CommandResult> {
  await rt.ledger.ready();
  const summary = await summarise(rt.ledger, runId);
  if (!summary) throw new RunNotFoundError(`no run ${runId} in the ledger (${rt.ledgerLocation})`);
  let exitCode: number = summary.idsFailed > 0 || summary.blocks.failed > 0 ? EXIT.someFailed : EXIT.ok;
  out.say(formatSummary(summary));
  let deletion: Record<string, number> | undefined;
  if (summary.run.job === KEYCLOAK_JOB) {
    const kc = new KeycloakRuntime(
      rt.cfg,
      () => rt.cassandra,
      undefined,
      () => rt.stateDb,
    );
    deletion = await deletionCounts(rt.ledger, kc.records, runId);
    const parts = Object.entries(deletion).map(([k, n]) => `${k} ${n}`);
    out.say(`  deletion stage: ${parts.length ? parts.join(', ') : 'no block deleted yet'}`);
    if ((deletion.failed ?? 0) > 0) exitCode = EXIT.someFailed;
  }
  const files = await exportFiles(rt, summary, opts, resolve((opts.out as string) ?? '.'), out);
  const status = summary.complete
    ? exitCode === EXIT.ok
      ? 'finished'
      : 'finished with failures'
    : 'incomplete';
  const json = {
    ...summary,
    runId,
    status,
    failures: summary.failures.length,
    ...(deletion ? { deletion } : {}),
    files,
  };
  return { exitCode, json };
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
    .action(async (runId: string, opts: Record<string, unknown>) => {
      const out: Out = new Out(opts);
      let cfg: FlatConfig;
      try {
        cfg = configFromOptions(opts, REPORT_SETTINGS);
      } catch (err) {
        out.fail(err);
      }
      await withRuntime(cfg, out, (rt) => report(rt, runId, opts, out));
    });
}

export function registerRunsCommand(program: Command): void {
  const cmd = program.command('runs').description('List recent runs from the ledger, newest first');
  addSettingOptions(cmd, REPORT_SETTINGS)
    .option('--limit <n>', 'how many runs', '20')
    .action(async (opts: Record<string, unknown>) => {
      const out: Out = new Out(opts);
      let cfg: FlatConfig;
      let limit: number;
      try {
        cfg = configFromOptions(opts, REPORT_SETTINGS);
        limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
          throw new UsageError('--limit expects a whole number from 1 to 10000');
        }
      } catch (err) {
        out.fail(err);
      }
      await withRuntime(cfg, out, async (rt) => {
        await rt.ledger.ready();
        const runs = await rt.ledger.recentRuns(limit);
        if (runs.length === 0) out.say(`no runs in the ledger (${rt.ledgerLocation})`);
        for (const r of runs) {
          out.say(
            `${r.runId}  ${r.createdAt.toISOString()}  ${r.job} ${r.objectType}${r.dryRun ? ' (dry run)' : ''}  ${r.source}`,
          );
        }
        const json = runs.map((r) => ({
          runId: r.runId,
          createdAt: r.createdAt.toISOString(),
          job: r.job,
          objectType: r.objectType,
          dryRun: r.dryRun,
          source: r.source,
        }));
        return { exitCode: EXIT.ok, json: { runs: json, ledger: rt.ledgerLocation } };
      });
    });
}
