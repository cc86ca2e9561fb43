/**
 * The whole deletion job on one machine (the CLI): candidates (read-only) → blocks → Sync API → delete
 * stage for the accepted blocks, through the same cores as the Lambda chain. A stop (403, a refused login)
 * ends the whole job: blocks not yet synced are not sent either, and are recorded as not attempted.
 */
import { DeleteStage, type DeleteStageDeps } from '#shared/keycloak/delete-stage.ts';
import { addRows, type DeletionLists, selectionLists } from '#shared/keycloak/lists.ts';
import type { PreparedSelection } from '#shared/keycloak/selection.ts';
import { deletionRunRequest, type KeycloakDeletionRequest, prepareDeletion } from '#shared/keycloak/start.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import { type LocalRunDeps, type LocalRunHooks, runLocal } from '#shared/sync/local.ts';
import { blockSchema, parseMessage } from '#shared/sync/messages.ts';

export interface LocalDeletionDeps {
  sync: Pick<LocalRunDeps, 'ids' | 'ledger' | 'syncApi'>;
  stage: DeleteStageDeps;
}

export interface LocalDeletionResult {
  runId: string;
  prepared: PreparedSelection;
  lists: DeletionLists;
  warnings: string[];
  /** Why the run stopped early, if it did. */
  stoppedBy?: string;
  stopCause?: unknown;
  durationMs: number;
}

export async function runDeletionLocally(
  req: KeycloakDeletionRequest,
  deps: LocalDeletionDeps,
  hooks: Pick<LocalRunHooks, 'onCall' | 'log' | 'onStarted'> = {},
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
  const lists = selectionLists(prepared);
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
  let runId: string;
  try {
    const run = await runLocal(
      deletionRunRequest(req, prepared),
      { ...deps.sync, stage: () => deletions },
      {
        ...hooks,
        onBlockDone: (_b, outcome) => {
          // A block the Sync API did not accept is never deleted: its ids are failures to retry.
          for (const id of outcome.failedIds) {
            lists.failed.push({ id, error: `not deleted: sync failed: ${outcome.reason ?? 'failed'}` });
          }
        },
        // The stage records a block that arrives after the stop as "not attempted".
        onSkipped: (block) => deletions.send([JSON.stringify(block)]),
      },
      { workerConcurrency: 1, signal: stop.signal },
    );
    runId = run.runId;
  } finally {
    deletions.close();
    await consumer.catch(() => undefined);
  }
  return {
    runId,
    prepared,
    lists,
    warnings: [...warnings],
    ...(stage.stoppedBy ? { stoppedBy: stage.stoppedBy, stopCause: stage.stopCause } : {}),
    durationMs: Date.now() - started,
  };
}
