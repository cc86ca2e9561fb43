/**
 * The whole deletion job on one machine (the CLI): candidates (read-only) → blocks → Sync API → delete
 * stage for the accepted blocks, through the same cores as the Lambda chain. A stop (403, a refused login)
 * ends the whole job: blocks not yet synced are not sent either, and are recorded as not attempted. An
 * interrupted run is resumed like a sync run; its accepted blocks the delete stage has not recorded are
 * handed to it again.
 */
import { DeleteStage, type DeleteStageDeps } from '#shared/keycloak/delete-stage.ts';
import { addRows, type DeletionLists, selectionLists } from '#shared/keycloak/lists.ts';
import type { PreparedSelection } from '#shared/keycloak/selection.ts';
import { deletionRunRequest, type KeycloakDeletionRequest, prepareDeletion } from '#shared/keycloak/start.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import {
  type LocalRunDeps,
  type LocalRunHooks,
  type LocalRunOptions,
  type LocalRunResult,
  resumeLocal,
  runLocal,
} from '#shared/sync/local.ts';
import { blockSchema, parseMessage } from '#shared/sync/messages.ts';
import type { ResumePlan } from '#shared/sync/resume.ts';

export interface LocalDeletionDeps {
  sync: Pick<LocalRunDeps, 'ids' | 'ledger' | 'syncApi'>;
  stage: DeleteStageDeps;
}

export type LocalDeletionHooks = Pick<LocalRunHooks, 'onCall' | 'log' | 'onStarted'>;
export type LocalDeletionOptions = Pick<LocalRunOptions, 'signal' | 'abort'>;

export interface LocalDeletionResult {
  runId: string;
  /** The selection (a resumed run does not select again). */
  prepared?: PreparedSelection;
  /** What happened to each id in this invocation. */
  lists: DeletionLists;
  warnings: string[];
  /** Why the run stopped early, if it did. */
  stoppedBy?: string;
  stopCause?: unknown;
  /** Ctrl-C or SIGTERM stopped it (resumable). */
  interrupted: boolean;
  durationMs: number;
}

type Go = (deps: LocalRunDeps, hooks: LocalRunHooks, opts: LocalRunOptions) => Promise<LocalRunResult>;

/** Runs the sync side with the delete stage consuming its accepted blocks; the stage's stop stops both. */
async function withDeleteStage(
  deps: LocalDeletionDeps,
  hooks: LocalDeletionHooks,
  opts: LocalDeletionOptions,
  lists: DeletionLists,
  go: Go,
): Promise<Omit<LocalDeletionResult, 'prepared' | 'durationMs'>> {
  const warnings = new Set<string>();
  const deletions = new MemoryQueue(64);
  const stage = new DeleteStage(deps.stage, { recordNotAttempted: true });
  const stop = new AbortController();
  const consumer = (async () => {
    for (let body = await deletions.take(); body !== null; body = await deletions.take()) {
      const block = parseMessage(blockSchema, body);
      try {
        const out = await stage.handle(block);
        addRows(lists, out.rows);
        for (const w of out.warnings) warnings.add(w);
        if (out.stopped && !stop.signal.aborted) {
          hooks.log?.(`deletion stopped: ${out.stopped}`);
          stop.abort();
        }
      } catch (err) {
        const error = (err as Error).message ?? String(err);
        for (const id of block.ids) lists.failed.push({ id, error });
      }
    }
  })();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  let run: LocalRunResult;
  try {
    run = await go(
      { ...deps.sync, stage: () => deletions },
      {
        ...hooks,
        onBlockDone: (_b, outcome) => {
          // A block the Sync API did not accept is never deleted: its ids are failures to retry.
          for (const id of outcome.failedIds) {
            lists.failed.push({ id, error: `not deleted: sync failed: ${outcome.reason ?? 'failed'}` });
          }
        },
        // After a stop, the stage records a block that arrives as "not attempted"; after Ctrl-C, it stays
        // pending in the ledger for the resume.
        onSkipped: (block) => (stop.signal.aborted ? deletions.send([JSON.stringify(block)]) : undefined),
      },
      { workerConcurrency: 1, signal, ...(opts.abort ? { abort: opts.abort } : {}) },
    );
  } finally {
    deletions.close();
    await consumer.catch(() => undefined);
  }
  return {
    runId: run.runId,
    lists,
    warnings: [...warnings],
    ...(stage.stoppedBy ? { stoppedBy: stage.stoppedBy, stopCause: stage.stopCause } : {}),
    interrupted: Boolean(opts.signal?.aborted) && !stage.stoppedBy,
  };
}

export async function runDeletionLocally(
  req: KeycloakDeletionRequest,
  deps: LocalDeletionDeps,
  hooks: LocalDeletionHooks = {},
  opts: LocalDeletionOptions = {},
): Promise<LocalDeletionResult> {
  const started = Date.now();
  const prepared = await prepareDeletion(req, deps.stage);
  const { selection } = prepared;
  hooks.log?.(
    `selected ${selection.selected} Keycloak user(s)${req.realm ? ` of realm ${req.realm}` : ''}: ${selection.candidates.length} candidate(s), ${prepared.excluded.length} left out${prepared.notInKeycloak.length ? `, ${prepared.notInKeycloak.length} id(s) not in Keycloak` : ''}`,
  );
  // Preflight before the first Sync API call: the store can delete (one candidate per realm asked about).
  if (!req.dryRun)
    await deps.stage.store().check([...prepared.byRealm].map(([realm, [id]]) => ({ realm, id: id! })));
  const runReq = deletionRunRequest(req, prepared);
  const out = await withDeleteStage(deps, hooks, opts, selectionLists(prepared), (d, h, o) =>
    runLocal(runReq, d, h, o),
  );
  return { ...out, prepared, durationMs: Date.now() - started };
}

/** Continues an interrupted deletion run from its ledger (shared/sync/resume.ts says what is left). */
export async function resumeDeletionLocally(
  plan: ResumePlan,
  deps: LocalDeletionDeps,
  hooks: LocalDeletionHooks = {},
  opts: LocalDeletionOptions = {},
): Promise<LocalDeletionResult> {
  const started = Date.now();
  const lists: DeletionLists = {
    deleted: [],
    wouldDelete: [],
    notFound: [],
    failed: [],
    skippedProtected: [],
    skipped: [],
  };
  if (!plan.run.dryRun) {
    // Preflight, as for a new run: one id per realm of the blocks still to go.
    const samples = new Map<string, string>();
    for (const b of [...plan.pending, ...plan.forward]) {
      const realm = b.context?.realm;
      if (realm && b.ids[0] && !samples.has(realm)) samples.set(realm, b.ids[0]);
    }
    if (samples.size) await deps.stage.store().check([...samples].map(([realm, id]) => ({ realm, id })));
  }
  const out = await withDeleteStage(deps, hooks, opts, lists, (d, h, o) => resumeLocal(plan, d, h, o));
  return { ...out, durationMs: Date.now() - started };
}
