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
  type CommandResult,
  configFromOptions,
  EXIT,
  EXIT_CODES_HELP,
  formatDuration,
  idFileIds,
  interruptible,
  Out,
  SYNC_CORE,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { deletionCounts, writeLists } from '#shared/keycloak/lists.ts';
import {
  type LocalDeletionResult,
  resumeDeletionLocally,
  runDeletionLocally,
} from '#shared/keycloak/local.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import { RESTART_WARNING } from '#shared/keycloak/sql-store.ts';
import {
  deletionRequest,
  type KeycloakDeletionRequest,
  startKeycloakDeletion,
} from '#shared/keycloak/start.ts';
import { RunOutputs } from '#shared/sync/outputs.ts';
import type { ResumePlan } from '#shared/sync/resume.ts';
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

async function enqueue(
  rt: SyncRuntime,
  kc: KeycloakRuntime,
  req: KeycloakDeletionRequest,
  out: Out,
): Promise<CommandResult> {
  const q = rt.queue('sync');
  const started = await startKeycloakDeletion(req, {
    users: kc.users,
    directory: kc.directory,
    ids: rt.ids,
    ledger: rt.ledger,
    scanQueue: q,
    blockQueue: q,
  });
  out.say(
    `run ${started.runId} handed to the deployed stack: ${started.blocks} blocks (${started.ids} candidates) enqueued`,
  );
  out.say(`follow it with: sunbird-dataops report ${started.runId}`);
  return {
    exitCode: EXIT.ok,
    json: { runId: started.runId, status: 'enqueued', candidates: started.ids, blocks: started.blocks },
  };
}

function summary(
  req: KeycloakDeletionRequest,
  r: LocalDeletionResult,
  files: string[],
  out: RunOutputs,
): string {
  const { lists, prepared } = r;
  const sel = prepared?.selection;
  const logs = out.logs;
  const state = r.interrupted ? 'interrupted' : r.stoppedBy ? 'stopped' : 'finished';
  return [
    `run ${r.runId} ${req.dryRun ? '(dry run) ' : ''}${state} in ${formatDuration(r.durationMs)}`,
    `  mode: ${req.mode}${req.realm ? `, realm: ${req.realm}` : ', every realm'}`,
    sel ? `  candidates: ${sel.candidates.length} (selected ${sel.selected}, limit ${req.limit})` : '',
    req.dryRun ? `  would delete: ${lists.wouldDelete.length}` : `  deleted: ${lists.deleted.length}`,
    `  failed: ${lists.failed.length}`,
    `  not found: ${lists.notFound.length}`,
    `  skipped (protected): ${lists.skippedProtected.length}`,
    `  skipped (other): ${lists.skipped.length}`,
    r.stoppedBy ? `  STOPPED: ${r.stoppedBy}` : '',
    sel && sel.selected >= req.limit && sel.lastSelectedId
      ? `  the limit was reached: continue with --after-id ${sel.lastSelectedId}`
      : '',
    `  lists: ${files.join('\n         ')}`,
    logs ? `  sync logs: ${logs.successPath}\n             ${logs.failurePath}` : '',
    r.interrupted ? `  continue with: sunbird-dataops resume ${r.runId}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** Lists, summary, warnings and the exit code of a deletion run (started or resumed here). */
async function report(
  rt: SyncRuntime,
  kc: KeycloakRuntime,
  req: KeycloakDeletionRequest,
  r: LocalDeletionResult,
  outputs: RunOutputs,
  out: Out,
): Promise<CommandResult> {
  if (r.stoppedBy) loud(`deletion stopped: ${r.stoppedBy}`);
  const files = await writeLists(join(outputs.dir, r.runId), r.lists, req.dryRun);
  for (const w of r.warnings) loud(w);
  out.say(summary(req, r, files, outputs));
  if (!req.dryRun && req.mode === 'sql' && !kc.hasAdminApi && r.lists.deleted.length > 0)
    loud(RESTART_WARNING);
  const exitCode = r.interrupted
    ? EXIT.interrupted
    : r.lists.failed.length > 0 || r.stoppedBy
      ? EXIT.someFailed
      : EXIT.ok;
  const counts = await deletionCounts(rt.ledger, kc.records, r.runId);
  const status = r.interrupted
    ? 'interrupted'
    : r.stoppedBy
      ? 'stopped'
      : exitCode
        ? 'finished with failures'
        : 'finished';
  return {
    exitCode,
    json: {
      runId: r.runId,
      status,
      dryRun: req.dryRun,
      mode: req.mode,
      counts,
      stoppedBy: r.stoppedBy ?? null,
      files: [...files, ...outputs.files],
    },
  };
}

/** The whole job on this machine. */
export async function runHere(
  rt: SyncRuntime,
  kc: KeycloakRuntime,
  req: KeycloakDeletionRequest,
  outDir: string,
  out: Out,
): Promise<CommandResult> {
  if (!req.dryRun && req.mode === 'sql' && !kc.hasAdminApi) loud(RESTART_WARNING);
  const outputs = await RunOutputs.open(outDir, { dryRun: req.dryRun, givenIds: true });
  const signals = interruptible((m) => out.note(m));
  let result: LocalDeletionResult;
  try {
    result = await runDeletionLocally(
      { ...req, params: { out: outputs.dir, logStamp: outputs.stamp, queue: 'memory' } },
      { sync: { ids: rt.ids, ledger: rt.ledger, syncApi: rt.syncApi }, stage: kc.stageDeps(rt.ledger) },
      {
        log: (m) => out.note(m),
        onStarted: (r) =>
          out.note(
            `run ${r.runId} started (${r.ids} candidate(s) in ${r.blocks} block(s), ledger ${rt.ledgerLocation})`,
          ),
        onCall: (_b, r, n) => outputs.call(r, n),
      },
      { signal: signals.stop, abort: signals.cancel },
    );
  } finally {
    await outputs.close();
  }
  return report(rt, kc, req, result, outputs, out);
}

/** Continues an interrupted deletion run here (the `resume` command, for a run of this job). */
export async function resumeHere(
  rt: SyncRuntime,
  cfg: FlatConfig,
  plan: ResumePlan,
  outDir: string,
  out: Out,
): Promise<CommandResult> {
  const kc = new KeycloakRuntime(
    cfg,
    () => rt.cassandra,
    undefined,
    () => rt.stateDb,
  );
  const p = plan.record.params;
  const req = deletionRequest(cfg, {
    source: String(plan.record.source),
    over: { realm: (p.realm as string) || undefined },
  });
  const outputs = await RunOutputs.open(outDir, {
    dryRun: plan.run.dryRun,
    givenIds: true,
    ...(typeof p.logStamp === 'number' ? { stamp: p.logStamp } : {}),
  });
  const signals = interruptible((m) => out.note(m));
  try {
    const result = await resumeDeletionLocally(
      plan,
      { sync: { ids: rt.ids, ledger: rt.ledger, syncApi: rt.syncApi }, stage: kc.stageDeps(rt.ledger) },
      { log: (m) => out.note(m), onCall: (_b, r, n) => outputs.call(r, n) },
      { signal: signals.stop, abort: signals.cancel },
    );
    await outputs.close();
    return await report(rt, kc, { ...req, dryRun: plan.run.dryRun }, result, outputs, out);
  } finally {
    await kc.close();
  }
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
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (opts: Record<string, unknown>) => {
      const out: Out = new Out(opts);
      let cfg: FlatConfig;
      let req: KeycloakDeletionRequest;
      let target: string;
      try {
        cfg = configFromOptions(opts, KEYCLOAK_SETTINGS);
        target = (opts.target as string | undefined) ?? 'local';
        if (target !== 'local' && target !== 'aws') throw new UsageError('--target expects local or aws');
        const ids = await idFileIds(cfg, out, ' (a filter on the candidates)');
        const source = ids
          ? `cli: keycloak candidates ∩ id file ${cfg['sync.idFile']}`
          : 'cli: keycloak candidates';
        req = deletionRequest(cfg, { source, ids, afterId: opts.afterId as string | undefined });
        if (req.protectedRoles.length === 0) throw new UsageError('at least one protected role is required');
      } catch (err) {
        out.fail(err);
      }
      await withRuntime(cfg, out, async (rt) => {
        await rt.ledger.ready();
        const kc = new KeycloakRuntime(
          cfg,
          () => rt.cassandra,
          undefined,
          () => rt.stateDb,
        );
        try {
          if (target === 'aws') return await enqueue(rt, kc, req, out);
          return await runHere(rt, kc, req, resolve((opts.out as string | undefined) ?? '.'), out);
        } finally {
          await kc.close();
        }
      });
    });
}
