/**
 * The delete stage of the Keycloak job: one synced block in, per-id outcomes out (and in the ledger).
 * Shared by the delete-keycloak-users Lambda and the CLI through `DeleteStage`, which also holds the one
 * notion of "the run stopped": after a 403 or a refused admin login, every later block is recorded as
 * not attempted (so a retry picks it up) instead of being tried.
 *
 * A block carries its realm (`context.realm`) when the run knew it; a block without one is split by the
 * realm each user is in now.
 */
import {
  type DeleteBlockDeps,
  type DeleteBlockResult,
  DeleteBlockStopped,
  deleteBlock,
} from '#shared/keycloak/delete-block.ts';
import { DeleteStageStopped } from '#shared/keycloak/errors.ts';
import type { DeletionOutcome, DeletionRecords, DeletionRow } from '#shared/keycloak/ports.ts';
import { scrubString } from '#shared/redact.ts';
import { type Block, MessageError } from '#shared/sync/messages.ts';
import type { BlockOutcome, BlockStatus, RunLedger } from '#shared/sync/ports.ts';

/** The stage's name in a run's `next` and in the ledger. */
export const DELETE_STAGE = 'delete';

export interface DeleteStageDeps extends DeleteBlockDeps {
  ledger?: RunLedger;
  records?: DeletionRecords;
}

export interface DeleteStageResult {
  rows: DeletionRow[];
  warnings: string[];
  /** Some ids failed in a way another delivery may fix (5xx, network, rolled-back SQL block). */
  retryable: boolean;
}

/** The per-id outcomes of one block's result (every id of the block appears once). */
export function deletionRows(block: Pick<Block, 'rangeNo' | 'seq'>, r: DeleteBlockResult): DeletionRow[] {
  const base = { rangeNo: block.rangeNo, seq: block.seq, realm: r.realm || null };
  const rows: DeletionRow[] = [];
  const add = (ids: readonly string[], outcome: DeletionOutcome): void => {
    for (const id of ids) rows.push({ ...base, id, outcome, error: null });
  };
  add(r.deleted, 'deleted');
  add(r.wouldDelete, 'would-delete');
  add(r.notFound, 'not-found');
  add(r.skippedProtected, 'skipped-protected');
  add(r.skippedNotInCassandra, 'skipped-not-in-cassandra');
  add(r.skippedNoRoleMapping, 'skipped-no-role');
  for (const f of r.failed)
    rows.push({ ...base, id: f.id, outcome: 'failed', error: f.error, retryable: f.retryable });
  return rows;
}

export const failedRows = (
  block: Block,
  ids: readonly string[],
  error: string,
  realm: string | null,
  retryable: boolean,
): DeletionRow[] =>
  ids.map((id) => ({
    rangeNo: block.rangeNo,
    seq: block.seq,
    id,
    outcome: 'failed',
    realm,
    error,
    retryable,
  }));

/** The block row for the ledger (stage `delete`): failed ids are the ids to retry. */
export function deletionBlockOutcome(
  block: Block,
  rows: readonly DeletionRow[],
  stopped?: string,
): BlockOutcome {
  const failed = rows.filter((r) => r.outcome === 'failed');
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  let status: BlockStatus;
  if (block.run.dryRun) status = 'dry-run';
  else if (failed.length === 0) status = counts.deleted ? 'succeeded' : 'skipped';
  else status = failed.length === rows.length ? 'failed' : 'partial';
  return {
    rangeNo: block.rangeNo,
    seq: block.seq,
    stage: DELETE_STAGE,
    status,
    ids: rows.map((r) => r.id),
    failedIds: failed.map((r) => r.id),
    reason: stopped ?? failed[0]?.error ?? null,
    attempts: 1,
    httpStatus: null,
    response: JSON.stringify(counts),
  };
}

/**
 * Records one block's per-id rows and its block row; returns the rows as written. An id recorded as deleted
 * by an earlier delivery is never downgraded to "not found" by the redelivery that finds it gone.
 */
export async function recordDeletion(
  block: Block,
  rows: DeletionRow[],
  deps: Pick<DeleteStageDeps, 'ledger' | 'records'>,
  stopped?: string,
): Promise<DeletionRow[]> {
  if (!deps.records) return rows;
  const runId = block.run.runId;
  const before = await deps.records.outcomes(runId, block.rangeNo, block.seq);
  const written = rows.map((r) =>
    before.get(r.id) === 'deleted' && r.outcome === 'not-found' ? { ...r, outcome: 'deleted' as const } : r,
  );
  await deps.records.write(runId, written);
  await deps.ledger?.recordBlock(runId, deletionBlockOutcome(block, written, stopped));
  return written;
}

async function realmGroups(
  block: Block,
  deps: DeleteStageDeps,
): Promise<{ groups: Map<string, string[]>; unknown: string[] }> {
  const groups = new Map<string, string[]>();
  const realm = block.context?.realm;
  if (realm) {
    groups.set(realm, [...block.ids]);
    return { groups, unknown: [] };
  }
  const users = await deps.users.lookup(block.ids);
  const unknown: string[] = [];
  for (const id of block.ids) {
    const r = users.get(id)?.realm;
    if (!r) unknown.push(id);
    else groups.set(r, [...(groups.get(r) ?? []), id]);
  }
  return { groups, unknown };
}

/** Runs the realms of a block; a stop records what happened and everything not attempted, then rethrows. */
async function deleteRealms(
  block: Block,
  deps: DeleteStageDeps,
  rows: DeletionRow[],
  warnings: string[],
): Promise<void> {
  const { groups, unknown } = await realmGroups(block, deps);
  for (const id of unknown)
    rows.push({ rangeNo: block.rangeNo, seq: block.seq, id, outcome: 'not-found', realm: null, error: null });
  for (const [realm, ids] of groups) {
    let result: DeleteBlockResult;
    try {
      result = await deleteBlock({ realm, ids, dryRun: block.run.dryRun }, deps);
    } catch (err) {
      if (!(err instanceof DeleteBlockStopped)) throw err;
      rows.push(...deletionRows(block, err.partial));
      const seen = new Set(rows.map((r) => r.id));
      const reason = `not attempted: run stopped: ${scrubString(err.message)}`;
      rows.push(
        ...failedRows(
          block,
          block.ids.filter((id) => !seen.has(id)),
          reason,
          realm,
          false,
        ),
      );
      const written = await recordDeletion(block, rows, deps, err.message);
      throw new DeleteStageStopped(err.message, written, { cause: err.cause });
    }
    rows.push(...deletionRows(block, result));
    warnings.push(...result.warnings);
  }
}

export async function processDeleteBlock(block: Block, deps: DeleteStageDeps): Promise<DeleteStageResult> {
  // Deleting is the one irreversible step: only blocks of runs that asked for it are ever acted on.
  if (block.run.next !== DELETE_STAGE) {
    throw new MessageError(
      `block of run ${block.run.runId} (job "${block.run.job}") was not meant for the delete stage`,
    );
  }
  const rows: DeletionRow[] = [];
  const warnings: string[] = [];
  try {
    await deleteRealms(block, deps, rows, warnings);
  } catch (err) {
    if (err instanceof DeleteStageStopped) throw err;
    // Unexpected (database down, Cassandra timeout…): the ids not yet settled are recorded as failed and
    // the error goes back to the caller, so the block is delivered again.
    const seen = new Set(rows.map((r) => r.id));
    const error = scrubString((err as Error).message ?? String(err));
    const rest = failedRows(
      block,
      block.ids.filter((id) => !seen.has(id)),
      error,
      block.context?.realm ?? null,
      true,
    );
    await recordDeletion(block, [...rows, ...rest], deps).catch(() => undefined);
    throw err;
  }
  const written = await recordDeletion(block, rows, deps);
  const retryable = rows.some((r) => r.outcome === 'failed' && r.retryable === true);
  return { rows: written, warnings, retryable };
}

export interface StageOutcome extends DeleteStageResult {
  /** Set when the run stopped (by this block or an earlier one): the block's ids were not all attempted. */
  stopped?: string;
  /** The error that stopped the run (its kind says why: refused credentials or Keycloak unreachable). */
  stopCause?: unknown;
}

/** The delete stage of one run (CLI) or one invocation (Lambda): after a stop, nothing more is tried. */
/**
 * The delete stage of one run (CLI) or one invocation (Lambda): after a stop, nothing more is tried. A
 * block that arrives after the stop is recorded as not attempted when nothing else will bring it back
 * (`recordNotAttempted`, the CLI's in-process queue); on SQS it is left unrecorded, as the queue delivers
 * it again.
 */
export class DeleteStage {
  readonly #deps: DeleteStageDeps;
  readonly #recordNotAttempted: boolean;
  stoppedBy: string | undefined;
  stopCause: unknown;

  constructor(deps: DeleteStageDeps, opts: { recordNotAttempted: boolean }) {
    this.#deps = deps;
    this.#recordNotAttempted = opts.recordNotAttempted;
  }

  async handle(block: Block): Promise<StageOutcome> {
    if (this.stoppedBy) {
      const error = `not attempted: run stopped: ${this.stoppedBy}`;
      const rows = failedRows(block, block.ids, error, block.context?.realm ?? null, false);
      const written = this.#recordNotAttempted
        ? await recordDeletion(block, rows, this.#deps, this.stoppedBy)
        : rows;
      return {
        rows: written,
        warnings: [],
        retryable: false,
        stopped: this.stoppedBy,
        stopCause: this.stopCause,
      };
    }
    try {
      return await processDeleteBlock(block, this.#deps);
    } catch (err) {
      if (!(err instanceof DeleteStageStopped)) throw err;
      this.stoppedBy = err.message;
      this.stopCause = err.cause;
      return { rows: err.rows, warnings: [], retryable: false, stopped: err.message, stopCause: err.cause };
    }
  }
}
