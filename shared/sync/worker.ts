/**
 * One block through the Sync API: the unit of work of the sync-block function and of the CLI. The outcome
 * goes to the ledger (and the Talend logs when the caller keeps them). When the run names a next stage
 * (`run.next`, set by whoever started it), a block the Sync API accepted moves on to that stage's queue
 * with the ids it confirmed — a block whose sync failed never does.
 */
import { BadInputError, InterruptedError } from '#shared/core/errors.ts';
import { isRetryableStatus } from '#shared/core/retry.ts';
import type { Block } from '#shared/sync/messages.ts';
import type {
  AttemptReport,
  BlockOutcome,
  MessageQueue,
  RunLedger,
  SyncApi,
  SyncCallResult,
} from '#shared/sync/ports.ts';

export interface WorkerDeps {
  syncApi: SyncApi;
  ledger?: RunLedger;
  /** The queue of a later stage, by the name the run gives it in `run.next`. */
  stage?: (name: string) => MessageQueue;
  /** Called once per real API call, e.g. to write the Talend logs. */
  onCall?: (block: Block, result: SyncCallResult) => void;
  /** Told after each attempt of the call (retries included), e.g. the pacer. */
  onAttempt?: (attempt: AttemptReport) => void;
  /** Awaited before each retry of the call is sent (the pacer's turn for it). */
  beforeRetry?: () => Promise<unknown>;
  /** Cancels the call in flight; the block is then not recorded (InterruptedError). */
  signal?: AbortSignal;
}

export interface BlockResult {
  outcome: BlockOutcome;
  /** Worth another delivery (429, 5xx, network) as opposed to a permanent rejection (400, 401, 413). */
  retryable: boolean;
}

/** The failure's reason for the ledger and the failure list: status, the API's error code and message. */
export function reasonOf(r: SyncCallResult): string {
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

function base(block: Block) {
  return {
    rangeNo: block.rangeNo,
    seq: block.seq,
    stage: 'sync',
    ids: block.ids,
    ...(block.context ? { context: block.context } : {}),
  };
}

export function outcomeOf(block: Block, result: SyncCallResult): BlockOutcome {
  if (result.ok) {
    const unconfirmed = result.unconfirmedIds ?? [];
    return {
      ...base(block),
      status: unconfirmed.length ? 'partial' : 'succeeded',
      failedIds: unconfirmed,
      reason: unconfirmed.length ? 'not confirmed by esSyncResponse' : null,
      attempts: result.attempts,
      httpStatus: result.status,
      response: result.responseBody,
    };
  }
  return {
    ...base(block),
    status: 'failed',
    failedIds: block.ids,
    reason: reasonOf(result),
    attempts: result.attempts,
    httpStatus: result.status,
    response: result.responseBody || result.error || null,
  };
}

function dryRunOutcome(block: Block): BlockOutcome {
  return {
    ...base(block),
    status: 'dry-run',
    failedIds: [],
    reason: null,
    attempts: 0,
    httpStatus: null,
    response: null,
  };
}

/** Hands the accepted ids on to the run's next stage, if it names one. */
async function forward(block: Block, outcome: BlockOutcome, deps: WorkerDeps): Promise<void> {
  const next = block.run.next;
  if (!next || outcome.status === 'failed') return;
  if (!deps.stage) {
    throw new BadInputError(
      `block ${block.rangeNo}/${block.seq} goes on to stage "${next}", which has no queue here`,
    );
  }
  const failed = new Set(outcome.failedIds);
  const ids = block.ids.filter((id) => !failed.has(id));
  if (ids.length) await deps.stage(next).send([JSON.stringify({ ...block, ids } satisfies Block)]);
}

export async function processBlock(block: Block, deps: WorkerDeps): Promise<BlockResult> {
  if (block.run.dryRun) {
    const outcome = dryRunOutcome(block);
    await deps.ledger?.recordBlock(block.run.runId, outcome);
    await forward(block, outcome, deps);
    return { outcome, retryable: false };
  }
  const result = await deps.syncApi.sync(block.run.objectType, block.ids, {
    verify: block.run.verify,
    ...(deps.signal ? { signal: deps.signal } : {}),
    ...(deps.onAttempt ? { onAttempt: deps.onAttempt } : {}),
    ...(deps.beforeRetry ? { beforeRetry: deps.beforeRetry } : {}),
  });
  // Cancelled in flight: the outcome is unknown, so nothing is recorded (the block stays pending).
  if (deps.signal?.aborted)
    throw new InterruptedError(`block ${block.rangeNo}/${block.seq} was cancelled in flight`);
  deps.onCall?.(block, result);
  const outcome = outcomeOf(block, result);
  await deps.ledger?.recordBlock(block.run.runId, outcome);
  await forward(block, outcome, deps);
  const retryable = !result.ok && (result.status === null || isRetryableStatus(result.status));
  return { outcome, retryable };
}
