/**
 * `sunbird-dataops sync` — the drop-in for Sync_run.sh — `retry <runId>` and `resume <runId>`: options in,
 * a run through the sync cores (shared/sync/local.ts), progress and a summary out.
 */
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import {
  addSettingOptions,
  type CommandResult,
  configFromOptions,
  EXIT,
  EXIT_CODES_HELP,
  explicitSettings,
  formatDuration,
  idFileIds,
  interruptible,
  Out,
  SYNC_CORE,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import { SEARCH_SETTINGS } from '#cli/diff.ts';
import { effectiveConcurrency, effectivePacing, type FlatConfig, type SettingKey } from '#shared/config.ts';
import { exitCodeOf } from '#shared/core/errors.ts';
import { indexFor } from '#shared/drift/check.ts';
import { DRIFT_FILTER, driftFilterName, filteredPlan } from '#shared/drift/filter.ts';
import { DriftRuntime } from '#shared/drift/runtime.ts';
import {
  type LocalRunDeps,
  type LocalRunHooks,
  type LocalRunResult,
  resumeLocal,
  runLocal,
} from '#shared/sync/local.ts';
import { RunOutputs } from '#shared/sync/outputs.ts';
import { achievedRate, estimateRunTime } from '#shared/sync/pacing.ts';
import { autoPace, syncRequest, syncTarget } from '#shared/sync/request.ts';
import type { ResumeOverrides, ResumePlan } from '#shared/sync/resume.ts';
import { retryRequest, type StartRunRequest, startRun } from '#shared/sync/run.ts';
import type { SyncRuntime } from '#shared/sync/runtime.ts';
import { summarise } from '#shared/sync/summary.ts';

export const SYNC_SETTINGS: SettingKey[] = [
  'sync.table',
  'sync.objectType',
  ...SYNC_CORE,
  'queues.sync',
  'queues.scan',
  'sqs.endpoint',
  'aws.region',
  'sync.stallMs',
  'sync.pace',
  'sync.maxRate',
  'scan.minTasks',
  'scan.rowsPerTask',
  'scan.fetchSize',
  'sync.onlyMissing',
  'sync.stale',
  ...SEARCH_SETTINGS,
  'log.level',
];

export interface ExecOptions {
  out: string;
  /** `--out` was given (a resume otherwise writes where the run wrote). */
  outGiven: boolean;
  target: 'local' | 'aws';
  concurrency: number;
  scanConcurrency: number;
}

/** Hands a run to the deployed stack: only the start (scan tasks or id blocks) happens here. */
async function enqueue(rt: SyncRuntime, req: StartRunRequest, out: Out): Promise<CommandResult> {
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
  const what = started.tasks
    ? `${started.tasks} scan tasks`
    : `${started.blocks} blocks (${started.ids} ids)`;
  out.say(`run ${started.runId} handed to the deployed stack: ${what} enqueued`);
  out.say(`follow it with: sunbird-dataops report ${started.runId}`);
  return {
    exitCode: EXIT.ok,
    json: {
      runId: started.runId,
      status: 'enqueued',
      tasks: started.tasks,
      blocks: started.blocks,
      ids: started.ids,
    },
  };
}

/** The progress bar on a terminal; otherwise the original's line after each call. */
function progress(dryRun: boolean, total0: number, out: Out) {
  const tty = Boolean(process.stderr.isTTY);
  const started = Date.now();
  let done = 0;
  let failed = 0;
  let total = total0;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: `${dryRun ? 'dry run' : 'sync'} [{bar}] {value}/{total} ids | {rate} ids/s | ETA {eta_formatted} | failed {failed}`,
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
      else if (!dryRun) out.say(`Sync API call done for ${done}/${total} records...`);
    },
    stop: () => bar?.stop(),
  };
}

function localDeps(rt: SyncRuntime, drift: DriftRuntime | undefined): LocalRunDeps {
  const cfg = rt.cfg;
  return {
    ids: rt.ids,
    ledger: rt.ledger,
    syncApi: rt.syncApi,
    ...(cfg['queues.sync'] ? { blocks: rt.queue('sync'), durable: true } : {}),
    ...(drift ? { filters: drift.filters() } : {}),
  };
}

/**
 * The drift runtime of a run that names a drift filter (`--only-missing`), its index checked before
 * anything starts: a wrong index is exit 2 at once. None for a plain run.
 */
async function driftFor(rt: SyncRuntime, filter: string | undefined, table: string) {
  if (!filter) return undefined;
  const drift = new DriftRuntime(rt.cfg, () => rt.cassandra);
  try {
    await drift.search.requireIndex(drift.indexOf(table));
  } catch (err) {
    await drift.close();
    throw err;
  }
  return drift;
}

function hooks(
  rt: SyncRuntime,
  bar: ReturnType<typeof progress>,
  outputs: RunOutputs,
  out: Out,
  total: number,
  concurrency: number,
  filter: string | undefined,
): LocalRunHooks {
  return {
    onStarted: (run) => {
      const what = run.tasks ? `${run.tasks} token sub-range(s) to scan` : `${run.ids || total} ids`;
      out.note(
        `run ${run.runId} started (${what}, ${rt.cfg['queues.sync'] ? 'SQS queue' : 'in-process queue'}, ledger ${rt.ledgerLocation})`,
      );
      if (run.estimatedIds && !run.run.dryRun) {
        const scan = run.tasks ? ' (the planner’s row estimate)' : '';
        out.note(`estimate${scan}: ${estimateRunTime(run.estimatedIds, run.run, concurrency)}`);
      }
      bar.start();
    },
    onEnumerated: (n, kept) => bar.enumerated(filter ? kept : n),
    onCall: (_block, r, n) => outputs.call(r, n),
    onBlockDone: (block, outcome) => {
      outputs.blockDone(block);
      bar.blockDone(block.ids.length, outcome.failedIds.length);
    },
    log: (m) => out.note(m),
  };
}

/** The end of a local run: a summary from the ledger (the whole run, resumed parts included) and the exit code. */
async function finish(
  rt: SyncRuntime,
  result: LocalRunResult & { filter?: string | undefined },
  outputs: RunOutputs,
  out: Out,
): Promise<CommandResult> {
  const s = await summarise(rt.ledger, result.runId);
  const dryRun = result.dryRun;
  const failed = s?.idsFailed ?? result.idsFailed;
  const status = result.interrupted
    ? 'interrupted'
    : s && !s.complete
      ? 'incomplete'
      : failed > 0
        ? 'finished with failures'
        : 'finished';
  const lines = [
    `run ${result.runId} ${dryRun ? '(dry run) ' : ''}${status} in ${formatDuration(result.durationMs)}`,
    result.filter
      ? `  ids checked against the search index: ${s?.idsEnumerated ?? result.idsEnumerated}; missing${result.filter === DRIFT_FILTER.missingOrStale ? ' or stale' : ''}, sent on: ${s?.idsInBlocks ?? result.idsKept}`
      : `  ids enumerated: ${s?.idsEnumerated ?? result.idsEnumerated}`,
    dryRun
      ? `  blocks: ${s?.blocks['dry-run'] ?? result.blocks} (no API call made)`
      : `  blocks: ${s?.blocksRecorded ?? result.blocks} (${(s?.blocks.succeeded ?? 0) + (s?.blocks.partial ?? 0)} accepted, ${s?.blocks.failed ?? result.blocksFailed} failed${s?.blocksPending ? `, ${s.blocksPending} pending` : ''})`,
    dryRun ? '' : `  ids synced: ${s?.idsSucceeded ?? result.idsSucceeded}, failed: ${failed}`,
    dryRun
      ? ''
      : `  ${achievedRate(result.idsSucceeded + result.idsFailed, result.blocks, result.durationMs)}`,
    outputs.logs ? `  logs: ${outputs.logs.successPath}\n        ${outputs.logs.failurePath}` : '',
    outputs.idsCsvPath ? `  ids that would be synced: ${outputs.idsCsvPath}` : '',
    result.interrupted || status === 'incomplete'
      ? `  continue with: sunbird-dataops resume ${result.runId}`
      : '',
    !result.interrupted && failed ? `  retry the failures: sunbird-dataops retry ${result.runId}` : '',
  ];
  out.say(lines.filter(Boolean).join('\n'));
  const exitCode = result.interrupted
    ? EXIT.interrupted
    : failed > 0
      ? EXIT.someFailed
      : status === 'incomplete'
        ? EXIT.unavailable
        : EXIT.ok;
  const json = {
    runId: result.runId,
    status,
    dryRun,
    idsEnumerated: s?.idsEnumerated ?? result.idsEnumerated,
    ...(result.filter ? { filter: result.filter, idsSentOn: s?.idsInBlocks ?? result.idsKept } : {}),
    idsSucceeded: s?.idsSucceeded ?? result.idsSucceeded,
    idsFailed: failed,
    blocks: s ? { ...s.blocks, expected: s.blocksExpected } : { done: result.blocks },
    files: outputs.files,
    ledger: rt.ledgerLocation,
    ...(dryRun
      ? {}
      : {
          idsPerSecond: (result.idsSucceeded + result.idsFailed) / Math.max(0.001, result.durationMs / 1000),
        }),
  };
  return { exitCode, json };
}

async function runHere(
  rt: SyncRuntime,
  out: Out,
  start: (
    deps: LocalRunDeps,
    h: LocalRunHooks,
    sig: ReturnType<typeof interruptible>,
  ) => Promise<LocalRunResult>,
  outputs: RunOutputs,
  dryRun: boolean,
  total: number,
  concurrency: number,
  target: { filter?: string | undefined; table: string },
): Promise<CommandResult> {
  const drift = await driftFor(rt, target.filter, target.table);
  const bar = progress(dryRun, total, out);
  const signals = interruptible((m) => out.note(m));
  let result: LocalRunResult;
  let runId: string | undefined;
  const h = hooks(rt, bar, outputs, out, total, concurrency, target.filter);
  try {
    result = await start(
      localDeps(rt, drift),
      {
        ...h,
        onStarted: (run) => {
          runId = run.runId;
          h.onStarted?.(run);
        },
      },
      signals,
    );
  } catch (err) {
    // A service gone for longer than its retry window: the ledger holds where the run was.
    if (runId && exitCodeOf(err) === EXIT.unavailable) {
      bar.stop();
      out.note(
        `run ${runId} stopped; once the service is back, continue with: sunbird-dataops resume ${runId}`,
      );
    }
    throw err;
  } finally {
    bar.stop();
    await outputs.close();
    await drift?.close();
  }
  return finish(rt, { ...result, filter: target.filter }, outputs, out);
}

function runOptions(rt: SyncRuntime, x: ExecOptions, sig: ReturnType<typeof interruptible>) {
  return {
    workerConcurrency: x.concurrency,
    scanConcurrency: x.scanConcurrency,
    fetchSize: rt.cfg['scan.fetchSize'],
    stallMs: rt.cfg['sync.stallMs'],
    signal: sig.stop,
    abort: sig.cancel,
  };
}

/** Runs a prepared request here (in-process or through `--queue-url`), or hands it to the deployed stack. */
export async function execute(
  rt: SyncRuntime,
  req: StartRunRequest,
  x: ExecOptions,
  out: Out,
): Promise<CommandResult> {
  if (x.target === 'aws') return enqueue(rt, req, out);
  const outputs = await RunOutputs.open(x.out, { dryRun: req.dryRun, givenIds: Boolean(req.ids) });
  // Where the run writes, kept with the run so a resume appends to the same Talend logs.
  const withOut = {
    ...req,
    params: {
      ...req.params,
      out: outputs.dir,
      logStamp: outputs.stamp,
      queue: rt.cfg['queues.sync'] ? 'sqs' : 'memory',
    },
  };
  return runHere(
    rt,
    out,
    (deps, h, sig) => runLocal(withOut, deps, h, runOptions(rt, x, sig)),
    outputs,
    req.dryRun,
    req.ids?.length ?? 0,
    x.concurrency,
    { filter: req.filter, table: req.table },
  );
}

/** The settings a resume applies, kept beside the run's original ones. */
export async function recordApplied(rt: SyncRuntime, plan: ResumePlan, concurrency: number): Promise<void> {
  const p = plan.record.params;
  const applied = [
    ...((p.applied as unknown[]) ?? []),
    { at: new Date().toISOString(), blockSize: plan.run.blockSize, sleepMs: plan.run.sleepMs, concurrency },
  ];
  await rt.ledger.annotate(plan.run.runId, { applied });
}

/** Continues an interrupted sync run from the ledger (see shared/sync/resume.ts). */
export async function resumeHere(
  rt: SyncRuntime,
  plan: ResumePlan,
  x: ExecOptions,
  out: Out,
): Promise<CommandResult> {
  const p = plan.record.params;
  const outputs = await RunOutputs.open(x.outGiven ? x.out : String(p.out ?? x.out), {
    dryRun: plan.run.dryRun,
    givenIds: plan.scanTasks.length === 0,
    ...(!x.outGiven && typeof p.logStamp === 'number' ? { stamp: p.logStamp } : {}),
  });
  out.note(
    `resuming ${plan.run.runId}: ${plan.scanTasks.length} range(s) to scan on, ${plan.pending.length} block(s) whose outcome is unknown${plan.forward.length ? `, ${plan.forward.length} block(s) for stage ${plan.run.next}` : ''}`,
  );
  const durable = Boolean(rt.cfg['queues.sync']) && p.queue === 'sqs';
  return runHere(
    rt,
    out,
    (deps, h, sig) => resumeLocal(plan, { ...deps, durable }, h, runOptions(rt, x, sig)),
    outputs,
    plan.run.dryRun,
    0,
    x.concurrency,
    { filter: plan.run.filter, table: String(plan.record.params.table ?? plan.run.objectType) },
  );
}

export function execOptions(opts: Record<string, unknown>, cfg: FlatConfig): ExecOptions {
  const target = (opts.target as string | undefined) ?? 'local';
  if (target !== 'local' && target !== 'aws') throw new UsageError('--target expects local or aws');
  const n = (name: string, v: unknown, d: number): number => {
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 1 || x > 256)
      throw new UsageError(`--${name} expects a whole number from 1 to 256`);
    return x;
  };
  return {
    out: resolve((opts.out as string | undefined) ?? '.'),
    outGiven: opts.out !== undefined,
    target,
    concurrency: effectiveConcurrency(
      opts.concurrency === undefined ? undefined : n('concurrency', opts.concurrency, 1),
      cfg['sync.pace'],
    ),
    scanConcurrency: n('scan-concurrency', opts.scanConcurrency, 4),
  };
}

/** New pacing given on this command line (retry and resume honour it; the ledger keeps the original). */
export function pacingOverrides(opts: Record<string, unknown>, cfg: FlatConfig): ResumeOverrides {
  const given = explicitSettings(opts, SYNC_SETTINGS);
  const paced = effectivePacing(cfg['sync.blockSize'], cfg['sync.sleepMs']);
  return {
    ...(given.has('sync.blockSize') ? { blockSize: paced.blockSize } : {}),
    ...(given.has('sync.sleepMs') ? { sleepMs: paced.sleepMs } : {}),
    ...(given.has('sync.pace') || given.has('sync.maxRate')
      ? autoPace(cfg['sync.pace'], cfg['sync.maxRate'])
      : {}),
  };
}

export function localOptions(cmd: Command, outHelp: string): Command {
  return cmd
    .option('--out <dir>', outHelp)
    .option('--target <where>', 'local: run here (default); aws: only enqueue for the deployed stack')
    .option(
      '--concurrency <n>',
      'parallel Sync API calls: 1 by default, as the original; with --pace auto at most this many (default 8)',
    )
    .option('--scan-concurrency <n>', 'token sub-ranges scanned in parallel')
    .addHelpText('after', EXIT_CODES_HELP);
}

export function registerSyncCommands(program: Command): void {
  const sync = program
    .command('sync')
    .description(
      'Sync users or organisations from Cassandra to Elasticsearch through the Sync API (dry run by default)',
    );
  localOptions(
    addSettingOptions(sync, SYNC_SETTINGS),
    'where the logs and syncIds.csv are written (default: .)',
  ).action(async (opts: Record<string, unknown>) => {
    const out: Out = new Out(opts);
    let cfg: FlatConfig;
    let req: StartRunRequest;
    let x: ExecOptions;
    try {
      cfg = configFromOptions(opts, SYNC_SETTINGS);
      x = execOptions(opts, cfg);
      const filter = driftFilterName({ onlyMissing: cfg['sync.onlyMissing'], stale: cfg['sync.stale'] });
      if (filter && cfg['sync.idFile'])
        throw new UsageError('--only-missing checks a full scan; an --id-file is synced as given');
      if (filter && !cfg['es.url'])
        throw new UsageError('--only-missing needs --es-url (ES_URL): the search index to check against');
      const ids = await idFileIds(cfg, out);
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
      out.fail(err);
    }
    await withRuntime(cfg, out, async (rt) => {
      await rt.ledger.ready();
      return execute(rt, req, x, out);
    });
  });

  const retry = program
    .command('retry <runId>')
    .description('Re-sync only the ids that failed in an earlier run');
  localOptions(addSettingOptions(retry, SYNC_SETTINGS), 'where the logs are written (default: .)').action(
    async (runId: string, opts: Record<string, unknown>) => {
      const out: Out = new Out(opts);
      let cfg: FlatConfig;
      let x: ExecOptions;
      try {
        cfg = configFromOptions(opts, SYNC_SETTINGS);
        x = execOptions(opts, cfg);
      } catch (err) {
        out.fail(err);
      }
      await withRuntime(cfg, out, async (rt) => {
        await rt.ledger.ready();
        const req = await retryRequest(rt.ledger, runId, cfg['cassandra.keyspace']);
        if (!req?.ids) {
          out.say(`run ${runId} has no failed ids; nothing to retry`);
          return { exitCode: EXIT.ok, json: { runId, status: 'nothing to retry' } };
        }
        const given = explicitSettings(opts, SYNC_SETTINGS);
        out.note(`retrying ${req.ids.length} failed id(s) of ${runId}`);
        const dryRun = given.has('sync.dryRun') ? cfg['sync.dryRun'] : req.dryRun;
        return execute(rt, { ...req, ...pacingOverrides(opts, cfg), dryRun }, x, out);
      });
    },
  );
}
