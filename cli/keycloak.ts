/**
 * `sunbird-dataops delete-keycloak-users` — the drop-in for the "Delete Keycloak user data" job.
 *
 * Dry run by default. Runs the whole chain here (shared/keycloak/local.ts): candidates (read-only) →
 * blocks → Sync API → delete stage for the accepted blocks, and writes the result lists into
 * `<out>/<runId>/`. Every outcome is also in the run ledger (`sunbird-dataops report <runId>`).
 */
import { join, resolve } from 'node:path';
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
import { idFileIds } from '#cli/sync.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { writeLists } from '#shared/keycloak/lists.ts';
import { type LocalDeletionResult, runDeletionLocally } from '#shared/keycloak/local.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import { RESTART_WARNING } from '#shared/keycloak/sql-store.ts';
import {
  deletionRequest,
  type KeycloakDeletionRequest,
  startKeycloakDeletion,
} from '#shared/keycloak/start.ts';
import { RunOutputs } from '#shared/sync/outputs.ts';
import type { SyncRuntime } from '#shared/sync/runtime.ts';

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

function loud(message: string): void {
  const bar = '!'.repeat(100);
  process.stderr.write(`\n${bar}\n!! ${message}\n${bar}\n\n`);
}

async function enqueue(rt: SyncRuntime, kc: KeycloakRuntime, req: KeycloakDeletionRequest): Promise<number> {
  const q = rt.queue('sync');
  const started = await startKeycloakDeletion(req, {
    users: kc.users,
    directory: kc.directory,
    ids: rt.ids,
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

function summary(
  req: KeycloakDeletionRequest,
  r: LocalDeletionResult,
  files: string[],
  out: RunOutputs,
): string {
  const { lists, prepared } = r;
  const sel = prepared.selection;
  const logs = out.logs;
  return [
    `run ${r.runId} ${req.dryRun ? '(dry run) ' : ''}finished in ${formatDuration(r.durationMs)}`,
    `  mode: ${req.mode}${req.realm ? `, realm: ${req.realm}` : ', every realm'}`,
    `  candidates: ${sel.candidates.length} (selected ${sel.selected}, limit ${req.limit})`,
    req.dryRun ? `  would delete: ${lists.wouldDelete.length}` : `  deleted: ${lists.deleted.length}`,
    `  failed: ${lists.failed.length}`,
    `  not found: ${lists.notFound.length}`,
    `  skipped (protected): ${lists.skippedProtected.length}`,
    `  skipped (other): ${lists.skipped.length}`,
    r.stoppedBy ? `  STOPPED: ${r.stoppedBy}` : '',
    sel.selected >= req.limit && sel.lastSelectedId
      ? `  the limit was reached: continue with --after-id ${sel.lastSelectedId}`
      : '',
    `  lists: ${files.join('\n         ')}`,
    logs ? `  sync logs: ${logs.successPath}\n             ${logs.failurePath}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** The whole job on this machine. Returns the exit code. */
export async function runHere(
  rt: SyncRuntime,
  kc: KeycloakRuntime,
  req: KeycloakDeletionRequest,
  outDir: string,
): Promise<number> {
  const sqlWithoutApi = req.mode === 'sql' && !kc.hasAdminApi;
  if (!req.dryRun && sqlWithoutApi) loud(RESTART_WARNING);
  const out = await RunOutputs.open(outDir, { dryRun: req.dryRun, givenIds: true });
  let result: LocalDeletionResult;
  try {
    result = await runDeletionLocally(
      req,
      { sync: { ids: rt.ids, ledger: rt.ledger, syncApi: rt.syncApi }, stage: kc.stageDeps(rt.ledger) },
      {
        log: (m) => process.stderr.write(`${m}\n`),
        onStarted: (r) =>
          process.stderr.write(`run ${r.runId} started (${r.ids} candidate(s) in ${r.blocks} block(s))\n`),
        onCall: (_b, r, n) => out.call(r, n),
      },
    );
  } finally {
    await out.close();
  }
  if (result.stoppedBy) loud(`deletion stopped: ${result.stoppedBy}`);
  const files = await writeLists(join(outDir, result.runId), result.lists, req.dryRun);
  for (const w of result.warnings) loud(w);
  console.log(summary(req, result, files, out));
  if (!req.dryRun && sqlWithoutApi && result.lists.deleted.length > 0) loud(RESTART_WARNING);
  return result.lists.failed.length > 0 || result.stoppedBy ? EXIT.someFailed : EXIT.ok;
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
      let target: string;
      try {
        cfg = configFromOptions(opts, KEYCLOAK_SETTINGS);
        target = (opts.target as string | undefined) ?? 'local';
        if (target !== 'local' && target !== 'aws') throw new UsageError('--target expects local or aws');
        const ids = await idFileIds(cfg, ' (a filter on the candidates)');
        const source = ids
          ? `cli: keycloak candidates ∩ id file ${cfg['sync.idFile']}`
          : 'cli: keycloak candidates';
        req = deletionRequest(cfg, { source, ids, afterId: opts.afterId as string | undefined });
        if (req.protectedRoles.length === 0) throw new UsageError('at least one protected role is required');
      } catch (err) {
        failWith(err);
      }
      await withRuntime(cfg, async (rt) => {
        await rt.ledger.ready();
        const kc = new KeycloakRuntime(cfg, () => rt.cassandra);
        try {
          if (target === 'aws') return await enqueue(rt, kc, req);
          return await runHere(rt, kc, req, resolve((opts.out as string | undefined) ?? '.'));
        } finally {
          await kc.close();
        }
      });
    });
}
