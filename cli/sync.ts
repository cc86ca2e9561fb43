/**
 * `sunbird-dataops sync` — the drop-in for Sync_run.sh — and `retry <runId>`: options in, a run through
 * the sync cores (shared/sync/local.ts), progress and a summary out.
 */
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import {
  addSettingOptions,
  configFromOptions,
  EXIT,
  failWith,
  formatDuration,
  SYNC_CORE,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import { effectiveConcurrency, type FlatConfig, type SettingKey } from '#shared/config.ts';
import { readIdFile } from '#shared/sync/ids.ts';
import { type LocalRunResult, runLocal } from '#shared/sync/local.ts';
import { RunOutputs } from '#shared/sync/outputs.ts';
import { achievedRate, estimateRunTime } from '#shared/sync/pacing.ts';
import { autoPace, syncRequest } from '#shared/sync/request.ts';
import { retryRequest, type StartRunRequest, startRun } from '#shared/sync/run.ts';
import type { SyncRuntime } from '#shared/sync/runtime.ts';

export const SYNC_SETTINGS: SettingKey[] = [
  'sync.table',
  'sync.objectType',
  ...SYNC_CORE,
  'sync.pace',
  'sync.maxRate',
  'sync.concurrency',
  'queues.sync',
  'queues.scan',
  'sqs.endpoint',
  'aws.region',
  'scan.minTasks',
  'scan.rowsPerTask',
  'scan.fetchSize',
  'log.level',
];

interface ExecOptions {
  out: string;
  target: 'local' | 'aws';
  concurrency: number;
  scanConcurrency: number;
}

/** Hands a run to the deployed stack: only the start (scan tasks or id blocks) happens here. */
async function enqueue(rt: SyncRuntime, req: StartRunRequest): Promise<number> {
  const blockQueue = rt.queue('sync');
  const scanQueue = rt.hasQueue('scan') ? rt.queue('scan') : undefined;
  if (!req.ids && !scanQueue)
    throw new UsageError('--target aws with a full scan needs --scan-queue-url (SCAN_QUEUE_URL)');
  const started = await startRun(req, {
    ids: rt.ids,
    ledger: rt.ledger,
    blockQueue,
    scanQueue: scanQueue ?? blockQueue,
  });
  console.log(
    `run ${started.runId} handed to the deployed stack: ${started.tasks ? `${started.tasks} scan tasks` : `${started.blocks} blocks (${started.ids} ids)`} enqueued`,
  );
  console.log(`follow it with: sunbird-dataops report ${started.runId}`);
  return EXIT.ok;
}

/** The progress bar on a terminal; otherwise the original's line after each call. */
function progress(req: StartRunRequest) {
  const tty = Boolean(process.stderr.isTTY);
  const started = Date.now();
  let done = 0;
  let failed = 0;
  let total = req.ids?.length ?? 0;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: `${req.dryRun ? 'dry run' : 'sync'} [{bar}] {value}/{total} ids | {rate} ids/s | ETA {eta_formatted} | failed {failed}`,
          etaBuffer: 200,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  return {
    start: () => bar?.start(Math.max(1, total), 0, { rate: 0, failed: 0 }),
    enumerated: (n: number) => {
      total = n;
      bar?.setTotal(Math.max(1, n));
    },
    blockDone: (ids: number, failedIds: number) => {
      done += ids;
      failed += failedIds;
      const rate = Math.round(done / Math.max(0.001, (Date.now() - started) / 1000));
      if (bar) bar.update(done, { rate, failed });
      else if (!req.dryRun) console.log(`Sync API call done for ${done}/${total} records...`);
    },
    stop: () => bar?.stop(),
  };
}

function summary(req: StartRunRequest, result: LocalRunResult, out: RunOutputs): string {
  const logs = out.logs;
  return [
    `run ${result.runId} ${req.dryRun ? '(dry run) ' : ''}finished in ${formatDuration(result.durationMs)}`,
    `  ids enumerated: ${result.idsEnumerated}`,
    req.dryRun
      ? `  blocks: ${result.blocks} (no API call made)`
      : `  blocks: ${result.blocks} (${result.blocksSucceeded} accepted, ${result.blocksFailed} failed)`,
    req.dryRun ? '' : `  ids synced: ${result.idsSucceeded}, failed: ${result.idsFailed}`,
    req.dryRun
      ? ''
      : `  ${achievedRate(result.idsSucceeded + result.idsFailed, result.blocks, result.durationMs)}`,
    logs ? `  logs: ${logs.successPath}\n        ${logs.failurePath}` : '',
    out.idsCsvPath ? `  ids that would be synced: ${out.idsCsvPath}` : '',
    result.idsFailed ? `  retry the failures: sunbird-dataops retry ${result.runId}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** Runs a prepared request here (in-process or through `--queue-url`), or hands it to the deployed stack. */
export async function execute(rt: SyncRuntime, req: StartRunRequest, x: ExecOptions): Promise<number> {
  if (x.target === 'aws') return enqueue(rt, req);
  const cfg = rt.cfg;
  const out = await RunOutputs.open(x.out, { dryRun: req.dryRun, givenIds: Boolean(req.ids) });
  const bar = progress(req);
  let result: LocalRunResult;
  try {
    result = await runLocal(
      req,
      {
        ids: rt.ids,
        ledger: rt.ledger,
        syncApi: rt.syncApi,
        ...(cfg['queues.sync'] ? { blocks: rt.queue('sync') } : {}),
      },
      {
        onStarted: (run) => {
          const what = req.ids ? `${req.ids.length} ids` : `${run.tasks} token sub-ranges`;
          process.stderr.write(
            `run ${run.runId} started (${what}, ${cfg['queues.sync'] ? 'SQS queue' : 'in-process queue'})\n`,
          );
          if (run.estimatedIds && !req.dryRun) {
            const scan = req.ids ? '' : ' (the planner’s row estimate)';
            process.stderr.write(
              `estimate${scan}: ${estimateRunTime(run.estimatedIds, run.run, x.concurrency)}\n`,
            );
          }
          bar.start();
        },
        onEnumerated: (n) => bar.enumerated(n),
        onCall: (_block, r, n) => out.call(r, n),
        onBlockDone: (block, outcome) => {
          out.blockDone(block);
          bar.blockDone(block.ids.length, outcome.failedIds.length);
        },
        log: (m) => process.stderr.write(`${m}\n`),
      },
      {
        workerConcurrency: x.concurrency,
        scanConcurrency: x.scanConcurrency,
        fetchSize: cfg['scan.fetchSize'],
      },
    );
  } finally {
    bar.stop();
    await out.close();
  }
  console.log(summary(req, result, out));
  return result.idsFailed > 0 ? EXIT.someFailed : EXIT.ok;
}

function execOptions(opts: Record<string, unknown>, cfg: FlatConfig): ExecOptions {
  const target = (opts.target as string | undefined) ?? 'local';
  if (target !== 'local' && target !== 'aws') throw new UsageError('--target expects local or aws');
  const n = (name: string, v: unknown, d: number): number => {
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 1) throw new UsageError(`--${name} expects a whole number ≥ 1`);
    return x;
  };
  return {
    out: resolve((opts.out as string | undefined) ?? '.'),
    target,
    concurrency: effectiveConcurrency(cfg),
    scanConcurrency: n('scan-concurrency', opts.scanConcurrency, 4),
  };
}

/** The ids of `--id-file` (with what was dropped said on stderr), or undefined for a full scan. */
export async function idFileIds(cfg: FlatConfig, note = ''): Promise<string[] | undefined> {
  if (!cfg['sync.idFile']) return undefined;
  const { ids, stats } = await readIdFile(cfg['sync.idFile']);
  const dropped = stats.blank + stats.duplicates;
  process.stderr.write(
    `id file: ${stats.ids} ids${note}${dropped ? ` (dropped ${stats.blank} blank line(s), ${stats.duplicates} duplicate(s))` : ''}\n`,
  );
  return ids;
}

export function registerSyncCommands(program: Command): void {
  const sync = program
    .command('sync')
    .description(
      'Sync users or organisations from Cassandra to Elasticsearch through the Sync API (dry run by default)',
    );
  addSettingOptions(sync, SYNC_SETTINGS)
    .option('--out <dir>', 'where the logs and syncIds.csv are written', '.')
    .option('--target <where>', 'local: run here (default); aws: only enqueue for the deployed stack')
    .option('--scan-concurrency <n>', 'token sub-ranges scanned in parallel')
    .action(async (opts: Record<string, unknown>) => {
      let cfg: FlatConfig;
      let req: StartRunRequest;
      let x: ExecOptions;
      try {
        cfg = configFromOptions(opts, SYNC_SETTINGS);
        x = execOptions(opts, cfg);
        const ids = await idFileIds(cfg);
        req = syncRequest(cfg, {
          ids,
          source: ids ? `cli: id file ${cfg['sync.idFile']}` : 'cli: full scan',
        });
      } catch (err) {
        failWith(err);
      }
      await withRuntime(cfg, async (rt) => {
        await rt.ledger.ready();
        return execute(rt, req, x);
      });
    });

  const retry = program
    .command('retry <runId>')
    .description('Re-sync only the ids that failed in an earlier run');
  addSettingOptions(retry, SYNC_SETTINGS)
    .option('--out <dir>', 'where the logs are written', '.')
    .option('--target <where>', 'local (default) or aws')
    .action(async (runId: string, opts: Record<string, unknown>) => {
      let cfg: FlatConfig;
      let x: ExecOptions;
      try {
        cfg = configFromOptions(opts, SYNC_SETTINGS);
        x = execOptions(opts, cfg);
      } catch (err) {
        failWith(err);
      }
      await withRuntime(cfg, async (rt) => {
        await rt.ledger.ready();
        const prior = await retryRequest(rt.ledger, runId, cfg['cassandra.keyspace']);
        // A retry is paced the way this command asks (the ledger keeps the sleep time, not the pace).
        const req = prior && { ...prior, ...autoPace(cfg['sync.pace'], cfg['sync.maxRate']) };
        if (!req?.ids) {
          console.log(`run ${runId} has no failed ids; nothing to retry`);
          return EXIT.ok;
        }
        const explicitDryRun =
          opts.dryRun !== undefined || (opts.context_param as string[]).some((p) => p.startsWith('dry_run'));
        process.stderr.write(`retrying ${req.ids.length} failed id(s) of ${runId}\n`);
        return execute(rt, { ...req, dryRun: explicitDryRun ? cfg['sync.dryRun'] : req.dryRun }, x);
      });
    });
}
