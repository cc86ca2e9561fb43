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
import { SEARCH_SETTINGS } from '#cli/diff.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { indexFor } from '#shared/drift/check.ts';
import { DRIFT_FILTER, driftFilterName, filteredPlan } from '#shared/drift/filter.ts';
import { DriftRuntime } from '#shared/drift/runtime.ts';
import { readIdFile } from '#shared/sync/ids.ts';
import { type LocalRunResult, runLocal } from '#shared/sync/local.ts';
import { RunOutputs } from '#shared/sync/outputs.ts';
import { syncRequest, syncTarget } from '#shared/sync/request.ts';
import { retryRequest, type StartRunRequest, startRun } from '#shared/sync/run.ts';
import type { SyncRuntime } from '#shared/sync/runtime.ts';

export const SYNC_SETTINGS: SettingKey[] = [
  'sync.table',
  'sync.objectType',
  ...SYNC_CORE,
  'queues.sync',
  'queues.scan',
  'sqs.endpoint',
  'aws.region',
  'scan.minTasks',
  'scan.rowsPerTask',
  'scan.fetchSize',
  'sync.onlyMissing',
  'sync.stale',
  ...SEARCH_SETTINGS,
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
    req.filter
      ? `  ids checked against the search index: ${result.idsEnumerated}; missing${req.filter === DRIFT_FILTER.missingOrStale ? ' or stale' : ''}, sent on: ${result.idsKept}`
      : `  ids enumerated: ${result.idsEnumerated}`,
    req.dryRun
      ? `  blocks: ${result.blocks} (no API call made)`
      : `  blocks: ${result.blocks} (${result.blocksSucceeded} accepted, ${result.blocksFailed} failed)`,
    req.dryRun ? '' : `  ids synced: ${result.idsSucceeded}, failed: ${result.idsFailed}`,
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
  // A drift filter (--only-missing) is checked before anything starts: a wrong index is exit 2 at once.
  const drift = req.filter ? new DriftRuntime(cfg, () => rt.cassandra) : undefined;
  if (drift) await drift.search.requireIndex(drift.indexOf(req.table));
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
        ...(drift ? { filters: drift.filters() } : {}),
      },
      {
        onStarted: (run) => {
          const what = req.ids ? `${req.ids.length} ids` : `${run.tasks} token sub-ranges`;
          process.stderr.write(
            `run ${run.runId} started (${what}, ${cfg['queues.sync'] ? 'SQS queue' : 'in-process queue'})\n`,
          );
          bar.start();
        },
        onEnumerated: (n, kept) => bar.enumerated(req.filter ? kept : n),
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
    await drift?.close();
  }
  console.log(summary(req, result, out));
  return result.idsFailed > 0 ? EXIT.someFailed : EXIT.ok;
}

function execOptions(opts: Record<string, unknown>): ExecOptions {
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
    concurrency: n('concurrency', opts.concurrency, 1),
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
    .option('--concurrency <n>', 'parallel Sync API calls (the original made one at a time)')
    .option('--scan-concurrency <n>', 'token sub-ranges scanned in parallel')
    .action(async (opts: Record<string, unknown>) => {
      let cfg: FlatConfig;
      let req: StartRunRequest;
      let x: ExecOptions;
      try {
        cfg = configFromOptions(opts, SYNC_SETTINGS);
        x = execOptions(opts);
        const filter = driftFilterName({ onlyMissing: cfg['sync.onlyMissing'], stale: cfg['sync.stale'] });
        if (filter && cfg['sync.idFile'])
          throw new UsageError('--only-missing checks a full scan; an --id-file is synced as given');
        if (filter && !cfg['es.url'])
          throw new UsageError('--only-missing needs --es-url (ES_URL): the search index to check against');
        const ids = await idFileIds(cfg);
        const request = syncRequest(cfg, {
          ids,
          source: ids
            ? `cli: id file ${cfg['sync.idFile']}`
            : `cli: full scan${filter ? ', only ids the index lacks' : ''}`,
          ...(filter
            ? { over: { filter }, params: { index: indexFor(syncTarget(cfg).table, cfg['es.index']) } }
            : {}),
        });
        req = filter ? { ...request, plan: filteredPlan(request.plan) } : request;
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
    .option('--concurrency <n>', 'parallel Sync API calls')
    .action(async (runId: string, opts: Record<string, unknown>) => {
      let cfg: FlatConfig;
      let x: ExecOptions;
      try {
        cfg = configFromOptions(opts, SYNC_SETTINGS);
        x = execOptions(opts);
      } catch (err) {
        failWith(err);
      }
      await withRuntime(cfg, async (rt) => {
        await rt.ledger.ready();
        const req = await retryRequest(rt.ledger, runId, cfg['cassandra.keyspace']);
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
