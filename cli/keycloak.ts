/**
 * `sunbird-dataops delete-keycloak-users` — the drop-in for the "Delete Keycloak user data" job.
 *
 * Dry run by default. Runs the whole chain here: candidates (read-only) → blocks → Sync API → delete stage
 * for the accepted blocks, and writes the result lists into `<out>/<runId>/`. Every outcome is also in the
 * run ledger (`sunbird-dataops report <runId>`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
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
import { ensureLedger } from '#cli/sync.ts';
import { effectivePacing, type FlatConfig, type SettingKey } from '#shared/config.ts';
import { DeleteStageStopped, processDeleteBlock } from '#shared/keycloak/delete-stage.ts';
import { DeletionLedger, type DeletionRow } from '#shared/keycloak/deletion-ledger.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import { RESTART_WARNING } from '#shared/keycloak/sql-delete.ts';
import {
  type KeycloakDeletionRequest,
  prepareKeycloakDeletion,
  startKeycloakDeletion,
  withRealms,
} from '#shared/keycloak/start.ts';
import { MemoryQueue } from '#shared/queue.ts';
import { readIdFile } from '#shared/sync/ids.ts';
import { runLocal } from '#shared/sync/local.ts';
import { type Block, blockSchema, parseMessage } from '#shared/sync/messages.ts';
import type { SyncRuntime } from '#shared/sync/runtime.ts';
import { TalendLogs } from '#shared/sync/talend-log.ts';

export const KEYCLOAK_SETTINGS: SettingKey[] = [
  ...SYNC_CORE,
  'postgres.url',
  'postgres.password',
  'keycloak.baseUrl',
  'keycloak.realm',
  'keycloak.adminRealm',
  'keycloak.adminUser',
  'keycloak.adminPassword',
  'keycloak.clientId',
  'keycloak.clientSecret',
  'keycloak.protectedRoles',
  'keycloak.limit',
  'keycloak.deleteMode',
  'keycloak.concurrency',
  'keycloak.maxRetries',
  'keycloak.timeoutMs',
  'queues.sync',
  'sqs.endpoint',
  'aws.region',
  'log.level',
];

interface Lists {
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

const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ');

function addRows(lists: Lists, rows: readonly DeletionRow[]): void {
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

async function writeLists(dir: string, lists: Lists, dryRun: boolean): Promise<string[]> {
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

export interface DeletionCliOptions {
  out: string;
  target: 'local' | 'aws';
  quiet?: boolean;
}

function loud(message: string): void {
  const bar = '!'.repeat(100);
  process.stderr.write(`\n${bar}\n!! ${message}\n${bar}\n\n`);
}

/** The whole job on this machine (or, with `--target aws`, only its start). Returns the exit code. */
export async function runKeycloakDeletion(
  rt: SyncRuntime,
  kc: KeycloakRuntime,
  req: KeycloakDeletionRequest,
  x: DeletionCliOptions,
): Promise<number> {
  const log = (m: string): void => {
    if (!x.quiet) process.stderr.write(`${m}\n`);
  };
  const sqlWithoutApi = req.mode === 'sql' && !kc.hasAdminApi;
  if (!req.dryRun && sqlWithoutApi) loud(RESTART_WARNING);

  if (x.target === 'aws') {
    const q = rt.queue('sync');
    const started = await startKeycloakDeletion(req, {
      pool: kc.pool,
      directory: kc.directory,
      cassandra: rt.cassandra,
      ledger: rt.ledger,
      scanQueue: q,
      blockQueue: q,
    });
    console.log(
      `run ${started.runId} handed to the deployed stack: ${started.blocks} blocks (${started.ids} candidates) enqueued`,
    );
    console.log(`follow it with: sunbird-dataops report ${started.runId}`);
    return EXIT.ok;
  }

  const started = Date.now();
  const prepared = await prepareKeycloakDeletion(req, { pool: kc.pool, directory: kc.directory });
  const { selection } = prepared;
  log(
    `selected ${selection.selected} Keycloak user(s)${req.realm ? ` of realm ${req.realm}` : ''}: ${selection.candidates.length} candidate(s), ${prepared.excluded.length} left out${prepared.notInKeycloak.length ? `, ${prepared.notInKeycloak.length} id(s) not in Keycloak` : ''}`,
  );
  const lists: Lists = {
    deleted: [],
    wouldDelete: [],
    notFound: [...prepared.notInKeycloak],
    failed: [],
    skippedProtected: [],
    skipped: [],
  };
  for (const e of prepared.excluded) {
    if (e.reason === 'protected-role' || e.reason === 'service-account') lists.skippedProtected.push(e.id);
    else
      lists.skipped.push({
        id: e.id,
        reason: e.reason === 'not-in-cassandra' ? 'not in Cassandra' : 'not selected (no role mapping)',
      });
  }

  const deletions = new MemoryQueue(64);
  const stage = kc.stageDeps(rt.ledger);
  const deletionLedger = new DeletionLedger(rt.ledger);
  const warnings = new Set<string>();
  let stoppedBy: string | undefined;
  // A stop (403, refused login) ends the whole job: blocks not yet synced are not sent either.
  const stop = new AbortController();
  const deleteQueue = withRealms(deletions, prepared.realmOf);
  const consumer = (async () => {
    for (let body = await deletions.receive(); body !== null; body = await deletions.receive()) {
      const block: Block = parseMessage(blockSchema, body);
      if (stoppedBy) {
        const error = `not attempted: run stopped: ${stoppedBy}`;
        const rows = block.ids.map(
          (id): DeletionRow => ({
            rangeNo: block.rangeNo,
            seq: block.seq,
            id,
            outcome: 'failed',
            realm: block.realm ?? null,
            error,
          }),
        );
        addRows(lists, await deletionLedger.recordBlock(block, rows, stoppedBy));
        continue;
      }
      try {
        const out = await processDeleteBlock(block, stage);
        addRows(lists, out.rows);
        for (const w of out.warnings) warnings.add(w);
      } catch (err) {
        if (err instanceof DeleteStageStopped) {
          stoppedBy = err.message;
          stop.abort();
          loud(`deletion stopped: ${err.message}`);
          addRows(lists, err.rows);
        } else {
          const error = (err as Error).message ?? String(err);
          for (const id of block.ids) lists.failed.push({ id, error });
        }
      }
    }
  })();

  const logs = req.dryRun ? undefined : await TalendLogs.open(x.out);
  let run: Awaited<ReturnType<typeof runLocal>>;
  try {
    run = await runLocal(
      prepared.runRequest,
      {
        cassandra: rt.cassandra,
        ledger: rt.ledger,
        syncApi: rt.syncApi,
        deleteQueue,
      },
      {
        onStarted: (r) => log(`run ${r.runId} started (${r.ids} candidate(s) in ${r.blocks} block(s))`),
        onCall: (_b, r, n) => logs?.append(r.ok, n, r.requestBody, r.responseBody || r.error || ''),
        onBlockDone: (_b, outcome) => {
          // A block the Sync API did not accept is never deleted: its ids are failures to retry.
          for (const id of outcome.failedIds) {
            lists.failed.push({ id, error: `not deleted: sync failed: ${outcome.reason ?? 'failed'}` });
          }
        },
        // The consumer records a block that arrives after the stop as "not attempted".
        onSkipped: (block) => deleteQueue.send([JSON.stringify(block)]),
        log,
      },
      { workerConcurrency: 1, signal: stop.signal },
    );
  } finally {
    deletions.close();
    await consumer.catch(() => undefined);
    await logs?.close();
  }
  const dir = join(x.out, run.runId);
  const files = await writeLists(dir, lists, req.dryRun);
  for (const w of warnings) loud(w);
  const lines = [
    `run ${run.runId} ${req.dryRun ? '(dry run) ' : ''}finished in ${formatDuration(Date.now() - started)}`,
    `  mode: ${req.mode}${req.realm ? `, realm: ${req.realm}` : ', every realm'}`,
    `  candidates: ${selection.candidates.length} (selected ${selection.selected}, limit ${req.limit})`,
    req.dryRun ? `  would delete: ${lists.wouldDelete.length}` : `  deleted: ${lists.deleted.length}`,
    `  failed: ${lists.failed.length}`,
    `  not found: ${lists.notFound.length}`,
    `  skipped (protected): ${lists.skippedProtected.length}`,
    `  skipped (other): ${lists.skipped.length}`,
    stoppedBy ? `  STOPPED: ${stoppedBy}` : '',
    selection.selected >= req.limit && selection.lastSelectedId
      ? `  the limit was reached: continue with --after-id ${selection.lastSelectedId}`
      : '',
    `  lists: ${files.join('\n         ')}`,
    logs ? `  sync logs: ${logs.successPath}\n             ${logs.failurePath}` : '',
  ];
  console.log(lines.filter(Boolean).join('\n'));
  if (!req.dryRun && sqlWithoutApi && lists.deleted.length > 0) loud(RESTART_WARNING);
  return lists.failed.length > 0 || stoppedBy ? EXIT.someFailed : EXIT.ok;
}

export function buildDeletionRequest(
  cfg: FlatConfig,
  ids: string[] | undefined,
  afterId: string | undefined,
): KeycloakDeletionRequest {
  return {
    ...(cfg['keycloak.realm'] ? { realm: cfg['keycloak.realm'] } : {}),
    limit: cfg['keycloak.limit'],
    protectedRoles: cfg['keycloak.protectedRoles'],
    ...(ids ? { ids } : {}),
    ...(afterId ? { afterId } : {}),
    keyspace: cfg['cassandra.keyspace'],
    mode: cfg['keycloak.deleteMode'],
    dryRun: cfg['sync.dryRun'],
    verify: cfg['sync.verify'],
    ...effectivePacing(cfg['sync.blockSize'], cfg['sync.sleepMs']),
    source: ids ? `cli: keycloak candidates ∩ id file ${cfg['sync.idFile']}` : 'cli: keycloak candidates',
  };
}

export function registerKeycloakCommand(program: Command): void {
  const cmd = program
    .command('delete-keycloak-users')
    .description(
      'Sync, then delete from Keycloak, the users whose data lives in Cassandra (dry run by default)',
    );
  addSettingOptions(cmd, KEYCLOAK_SETTINGS)
    .option('--out <dir>', 'where the result lists (in <out>/<runId>/) and sync logs are written', '.')
    .option('--after-id <id>', 'continue after this Keycloak user id (printed when the limit is reached)')
    .option('--target <where>', 'local: run here (default); aws: only start the run on the deployed stack')
    .action(async (opts: Record<string, unknown>) => {
      let cfg: FlatConfig;
      let req: KeycloakDeletionRequest;
      let x: DeletionCliOptions;
      try {
        cfg = configFromOptions(opts, KEYCLOAK_SETTINGS);
        const target = (opts.target as string | undefined) ?? 'local';
        if (target !== 'local' && target !== 'aws') throw new UsageError('--target expects local or aws');
        x = { out: resolve((opts.out as string | undefined) ?? '.'), target };
        let ids: string[] | undefined;
        if (cfg['sync.idFile']) {
          const read = await readIdFile(cfg['sync.idFile']);
          ids = read.ids;
          process.stderr.write(`id file: ${read.stats.ids} ids (a filter on the candidates)\n`);
        }
        req = buildDeletionRequest(cfg, ids, opts.afterId as string | undefined);
        if (req.protectedRoles.length === 0) throw new UsageError('at least one protected role is required');
      } catch (err) {
        fail((err as Error).message);
      }
      await withRuntime(cfg, async (rt) => {
        await ensureLedger(rt);
        const tables = await rt.cassandra.execute(
          'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?',
          [cfg['cassandra.opsKeyspace']],
        );
        if (!tables.rows.some((r) => r.table_name === 'run_deletions')) {
          throw new UsageError(
            `the ledger table run_deletions is missing: run \`npm run migrate -- --only ops\``,
          );
        }
        const kc = new KeycloakRuntime(cfg, () => rt.cassandra);
        try {
          return await runKeycloakDeletion(rt, kc, req, x);
        } finally {
          await kc.close();
        }
      });
    });
}
