/**
 * `sunbird-dataops sync` — the drop-in for Sync_run.sh — and `retry <runId>`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import {
  addSettingOptions,
  configFromOptions,
  EXIT,
  fail,
  formatDuration,
  SYNC_CORE,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import { effectivePacing, type FlatConfig, type SettingKey } from '#shared/config.ts';
import { readIdFile } from '#shared/sync/ids.ts';
import { type LocalRunResult, runLocal } from '#shared/sync/local.ts';
import { retryRequest, type StartRunRequest, startRun } from '#shared/sync/run.ts';
import type { SyncRuntime } from '#shared/sync/runtime.ts';
import { TalendLogs } from '#shared/sync/talend-log.ts';

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
  'log.level',
];

interface ExecOptions {
  out: string;
  target: 'local' | 'aws';
  concurrency: number;
  scanConcurrency: number;
  quiet?: boolean;
}

export async function ensureLedger(rt: SyncRuntime): Promise<void> {
  const ks = rt.cfg['cassandra.opsKeyspace'];
  const rs = await rt.cassandra.execute(
    'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?',
    [ks],
  );
  if (!rs.rows.some((r) => r.table_name === 'run_blocks')) {
    throw new UsageError(
      `the run ledger keyspace "${ks}" is missing: create it with \`npm run migrate -- --only ops\``,
    );
  }
}

/** Runs a prepared request locally (embedded or real queue) or hands it to the deployed stack. */
export async function execute(rt: SyncRuntime, req: StartRunRequest, x: ExecOptions): Promise<number> {
  const cfg = rt.cfg;
  await mkdir(x.out, { recursive: true });
  if (x.target === 'aws') {
    const blockQueue = rt.queue('sync');
    const scanQueue = rt.hasQueue('scan') ? rt.queue('scan') : undefined;
    if (!req.ids && !scanQueue)
      throw new UsageError('--target aws with a full scan needs --scan-queue-url (SCAN_QUEUE_URL)');
    const started = await startRun(req, {
      cassandra: rt.cassandra,
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

  const tty = Boolean(process.stderr.isTTY) && !x.quiet;
  const logs = req.dryRun ? undefined : await TalendLogs.open(x.out);
  const idsCsvPath = join(x.out, 'syncIds.csv');
  // A dry run without an id file leaves the list of ids that would be synced, as the original did.
  const idsCsv = req.dryRun && !req.ids ? createWriteStream(idsCsvPath) : undefined;
  let done = 0;
  let failedIds = 0;
  let enumerated = req.ids?.length ?? 0;
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
  let result: LocalRunResult;
  const started = Date.now();
  try {
    result = await runLocal(
      req,
      {
        cassandra: rt.cassandra,
        ledger: rt.ledger,
        syncApi: rt.syncApi,
        ...(cfg['queues.sync'] ? { sqs: { client: rt.sqs, url: cfg['queues.sync'] } } : {}),
      },
      {
        onStarted: (run) => {
          process.stderr.write(
            `run ${run.runId} started (${req.ids ? `${req.ids.length} ids` : `${run.tasks} token sub-ranges`}, ${cfg['queues.sync'] ? 'SQS queue' : 'in-process queue'})\n`,
          );
          bar?.start(Math.max(1, enumerated), 0, { rate: 0, failed: 0 });
        },
        onEnumerated: (n) => {
          enumerated = n;
          bar?.setTotal(Math.max(1, n));
        },
        onCall: (_block, r, n) => logs?.append(r.ok, n, r.requestBody, r.responseBody || r.error || ''),
        onBlockDone: (block, outcome) => {
          done += block.ids.length;
          failedIds += outcome.failedIds.length;
          if (idsCsv) idsCsv.write(`${block.ids.join('\n')}\n`);
          if (bar) {
            bar.update(done, {
              rate: Math.round(done / Math.max(0.001, (Date.now() - started) / 1000)),
              failed: failedIds,
            });
          } else if (!x.quiet && !req.dryRun) {
            console.log(`Sync API call done for ${done}/${enumerated} records...`);
          }
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
    bar?.stop();
    await logs?.close();
    if (idsCsv) await new Promise((r) => idsCsv.end(r));
  }
  const lines = [
    `run ${result.runId} ${req.dryRun ? '(dry run) ' : ''}finished in ${formatDuration(result.durationMs)}`,
    `  ids enumerated: ${result.idsEnumerated}`,
    req.dryRun
      ? `  blocks: ${result.blocks} (no API call made)`
      : `  blocks: ${result.blocks} (${result.blocksSucceeded} accepted, ${result.blocksFailed} failed)`,
    req.dryRun ? '' : `  ids synced: ${result.idsSucceeded}, failed: ${result.idsFailed}`,
    logs ? `  logs: ${logs.successPath}\n        ${logs.failurePath}` : '',
    idsCsv ? `  ids that would be synced: ${idsCsvPath}` : '',
    result.idsFailed ? `  retry the failures: sunbird-dataops retry ${result.runId}` : '',
  ];
  console.log(lines.filter(Boolean).join('\n'));
  return result.idsFailed > 0 ? EXIT.someFailed : EXIT.ok;
}

export function buildRequest(cfg: FlatConfig, ids: string[] | undefined, source: string): StartRunRequest {
  const table =
    cfg['sync.table'] ||
    (cfg['sync.objectType'] === 'organisation'
      ? 'organisation'
      : cfg['sync.objectType'] === 'user'
        ? 'user'
        : '');
  const objectType = cfg['sync.objectType'] || table;
  if (!table || !objectType) {
    throw new UsageError(
      'say what to sync: --table user|organisation (sunbird_cassandra_table) or --object-type',
    );
  }
  if (objectType === 'location')
    throw new UsageError(
      'objectType location has no Cassandra table here; sync locations by id file with --table user|organisation',
    );
  return {
    job: 'sync',
    objectType,
    table,
    keyspace: cfg['cassandra.keyspace'],
    dryRun: cfg['sync.dryRun'],
    verify: cfg['sync.verify'],
    ...effectivePacing(cfg['sync.blockSize'], cfg['sync.sleepMs']),
    ...(ids ? { ids } : {}),
    source,
    plan: { rowsPerTask: cfg['scan.rowsPerTask'], minTasks: cfg['scan.minTasks'] },
  };
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
        let ids: string[] | undefined;
        if (cfg['sync.idFile']) {
          const read = await readIdFile(cfg['sync.idFile']);
          ids = read.ids;
          const dropped = read.stats.blank + read.stats.duplicates;
          process.stderr.write(
            `id file: ${read.stats.ids} ids${dropped ? ` (dropped ${read.stats.blank} blank line(s), ${read.stats.duplicates} duplicate(s))` : ''}\n`,
          );
        }
        req = buildRequest(cfg, ids, ids ? `cli: id file ${cfg['sync.idFile']}` : 'cli: full scan');
      } catch (err) {
        fail((err as Error).message);
      }
      await withRuntime(cfg, async (rt) => {
        await ensureLedger(rt);
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
        fail((err as Error).message);
      }
      await withRuntime(cfg, async (rt) => {
        await ensureLedger(rt);
        const req = await retryRequest(rt.ledger, runId, cfg['cassandra.keyspace']);
        if (!req?.ids) {
          console.log(`run ${runId} has no failed ids; nothing to retry`);
          return EXIT.ok;
        }
        const explicitDryRun =
          opts.dryRun !== undefined || (opts.context_param as string[]).some((p) => p.startsWith('dry_run'));
        process.stderr.write(`retrying ${req.ids.length} failed id(s) of ${runId}\n`);
        return execute(
          rt,
          // This command re-syncs; it never re-runs a deletion stage.
          { ...req, job: 'sync', dryRun: explicitDryRun ? cfg['sync.dryRun'] : req.dryRun },
          x,
        );
      });
    });
}
