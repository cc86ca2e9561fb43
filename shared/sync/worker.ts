/**
 * One block through the Sync API: the unit of work of the sync-block function and of the CLI.
 * The outcome goes to the ledger (and the Talend logs when the caller keeps them); for the Keycloak job
 * a block the Sync API accepted moves on to the delete queue — a block whose sync failed never does.
 */
import type { SyncApiClient, SyncCallResult } from '#shared/clients/sync-api.ts';
import type { MessageQueue } from '#shared/queue.ts';
import type { BlockOutcome, Ledger } from '#shared/sync/ledger.ts';
import type { Block } from '#shared/sync/messages.ts';

export interface WorkerDeps {
  syncApi: SyncApiClient;
  ledger?: Ledger;
  /** The next stage for `delete-keycloak-users` blocks. */
  deleteQueue?: MessageQueue;
  /** Called once per real API call, e.g. to write the Talend logs. */
  onCall?: (block: Block, result: SyncCallResult) => void;
}

export interface BlockResult {
  outcome: BlockOutcome;
  /** Worth another delivery (429, 5xx, network) as opposed to a permanent rejection (400, 401, 413). */
  retryable: boolean;
}

function reasonOf(r: SyncCallResult): string {
  if (r.status === null) return `network error: ${r.error ?? 'no response'}`;
  let detail = '';
  try {
    const body = JSON.parse(r.responseBody) as { params?: { err?: string; errmsg?: string } };
    detail = [body.params?.err, body.params?.errmsg].filter(Boolean).join(' ');
  } catch {
    detail = r.responseBody.slice(0, 120);
  }
  return `HTTP ${r.status}${detail ? `: ${detail}` : ''}${r.attempts > 1 ? ` after ${r.attempts} attempts` : ''}`;
}

export async function processBlock(block: Block, deps: WorkerDeps): Promise<BlockResult> {
  const base = { rangeNo: block.rangeNo, seq: block.seq, stage: 'sync' as const, ids: block.ids };
  if (block.run.dryRun) {
    const outcome: BlockOutcome = {
      ...base,
      status: 'dry-run',
      failedIds: [],
      reason: null,
      attempts: 0,
      httpStatus: null,
      response: null,
    };
    await deps.ledger?.recordBlock(block.run.runId, outcome);
    if (block.run.job === 'delete-keycloak-users' && deps.deleteQueue)
      await deps.deleteQueue.send([JSON.stringify(block)]);
    return { outcome, retryable: false };
  }
  const result = await deps.syncApi.sync(block.run.objectType, block.ids, { verify: block.run.verify });
  deps.onCall?.(block, result);
  let outcome: BlockOutcome;
  if (result.ok) {
    const unconfirmed = result.unconfirmedIds ?? [];
    outcome = {
      ...base,
      status: unconfirmed.length ? 'partial' : 'succeeded',
      failedIds: unconfirmed,
      reason: unconfirmed.length ? 'not confirmed by esSyncResponse' : null,
      attempts: result.attempts,
      httpStatus: result.status,
      response: result.responseBody,
    };
  } else {
    outcome = {
      ...base,
      status: 'failed',
      failedIds: block.ids,
      reason: reasonOf(result),
      attempts: result.attempts,
      httpStatus: result.status,
      response: result.responseBody || result.error || null,
    };
  }
  await deps.ledger?.recordBlock(block.run.runId, outcome);
  if (result.ok && block.run.job === 'delete-keycloak-users' && deps.deleteQueue) {
    const confirmed = block.ids.filter((id) => !outcome.failedIds.includes(id));
    if (confirmed.length) await deps.deleteQueue.send([JSON.stringify({ ...block, ids: confirmed })]);
  }
  const retryable = !result.ok && (result.status === null || result.status === 429 || result.status >= 500);
  return { outcome, retryable };
}
