/**
 * The delete stage of the Keycloak job: one synced block in, per-id outcomes out (and in the ledger).
 * Shared by the delete-keycloak-users Lambda and the CLI.
 *
 * A block carries its realm when the run knew it; a block without one (a run over several realms) is split
 * by the realm each user is in now. A 403 or a refused admin login stops the stage: what had been done is
 * recorded and the rest of the block is recorded as failed ("not attempted"), so a retry picks it up.
 */
import type { PgPool } from '#shared/clients/postgres.ts';
import type { KeycloakAdminApi } from '#shared/keycloak/admin-api.ts';
import { keycloakUsers, readOnly } from '#shared/keycloak/candidates.ts';
import {
  type DeleteBlockResult,
  DeleteBlockStopped,
  type DeleteMode,
  deleteBlock,
} from '#shared/keycloak/delete-block.ts';
import { type DeletionLedger, type DeletionRow, deletionRows } from '#shared/keycloak/deletion-ledger.ts';
import type { UserDirectory } from '#shared/keycloak/user-directory.ts';
import type { Logger } from '#shared/logger.ts';
import { scrubString } from '#shared/redact.ts';
import { type Block, MessageError } from '#shared/sync/messages.ts';

export interface DeleteStageDeps {
  pool: PgPool;
  directory: UserDirectory;
  /** Asked for only when a block really deletes (never in a dry run); undefined = no Admin API. */
  adminApi: () => KeycloakAdminApi | undefined;
  protectedRoles: readonly string[];
  mode: DeleteMode;
  ledger?: DeletionLedger;
  logger?: Logger;
}

export interface DeleteStageResult {
  rows: DeletionRow[];
  warnings: string[];
  /** Some ids failed in a way another delivery may fix (5xx, network, rolled-back SQL block). */
  retryable: boolean;
}

/** The stage had to stop (403, admin login refused, too many 401s): later blocks must not be tried. */
export class DeleteStageStopped extends Error {
  override name = 'DeleteStageStopped';
  readonly rows: DeletionRow[];
  constructor(message: string, rows: DeletionRow[], options?: ErrorOptions) {
    super(message, options);
    this.rows = rows;
  }
}

/** "HTTP 4xx" (other than 429) answers are final; everything else may pass on another try. */
export function isRetryableError(error: string): boolean {
  const m = /^HTTP (\d{3})/.exec(error);
  if (!m) return true;
  const status = Number(m[1]);
  return status === 429 || status >= 500;
}

async function realmGroups(
  pool: PgPool,
  block: Block,
): Promise<{ groups: Map<string, string[]>; unknown: string[] }> {
  const groups = new Map<string, string[]>();
  if (block.realm) {
    groups.set(block.realm, [...block.ids]);
    return { groups, unknown: [] };
  }
  const users = await readOnly(pool, (db) => keycloakUsers(db, block.ids));
  const unknown: string[] = [];
  for (const id of block.ids) {
    const realm = users.get(id)?.realm;
    if (!realm) unknown.push(id);
    else groups.set(realm, [...(groups.get(realm) ?? []), id]);
  }
  return { groups, unknown };
}

const failedRows = (
  block: Block,
  ids: readonly string[],
  error: string,
  realm: string | null,
): DeletionRow[] =>
  ids.map((id) => ({ rangeNo: block.rangeNo, seq: block.seq, id, outcome: 'failed', realm, error }));

export async function processDeleteBlock(block: Block, deps: DeleteStageDeps): Promise<DeleteStageResult> {
  if (block.run.job !== 'delete-keycloak-users') {
    throw new MessageError(`block of job "${block.run.job}" sent to the Keycloak delete stage`);
  }
  const rows: DeletionRow[] = [];
  const warnings: string[] = [];
  const done = (): Set<string> => new Set(rows.map((r) => r.id));
  try {
    const { groups, unknown } = await realmGroups(deps.pool, block);
    for (const id of unknown) {
      rows.push({
        rangeNo: block.rangeNo,
        seq: block.seq,
        id,
        outcome: 'not-found',
        realm: null,
        error: null,
      });
    }
    for (const [realm, ids] of groups) {
      let result: DeleteBlockResult;
      try {
        const adminApi = block.run.dryRun ? undefined : deps.adminApi();
        result = await deleteBlock(
          { realm, ids, mode: deps.mode, dryRun: block.run.dryRun },
          {
            pool: deps.pool,
            directory: deps.directory,
            protectedRoles: deps.protectedRoles,
            ...(adminApi ? { adminApi } : {}),
            ...(deps.logger ? { logger: deps.logger } : {}),
          },
        );
      } catch (err) {
        if (!(err instanceof DeleteBlockStopped)) throw err;
        rows.push(...deletionRows(block, err.partial));
        const seen = done();
        const reason = `not attempted: run stopped: ${scrubString(err.message)}`;
        rows.push(
          ...failedRows(
            block,
            block.ids.filter((id) => !seen.has(id)),
            reason,
            realm,
          ),
        );
        const written = (await deps.ledger?.recordBlock(block, rows, err.message)) ?? rows;
        throw new DeleteStageStopped(err.message, written, { cause: err });
      }
      rows.push(...deletionRows(block, result));
      warnings.push(...result.warnings);
    }
  } catch (err) {
    if (err instanceof DeleteStageStopped || err instanceof MessageError) throw err;
    // Unexpected (database down, Cassandra timeout…): the ids not yet settled are recorded as failed and
    // the error goes back to the caller, so the block is delivered again.
    const seen = done();
    const error = scrubString((err as Error).message ?? String(err));
    const all = [
      ...rows,
      ...failedRows(
        block,
        block.ids.filter((id) => !seen.has(id)),
        error,
        block.realm ?? null,
      ),
    ];
    await deps.ledger?.recordBlock(block, all).catch(() => undefined);
    throw err;
  }
  const written = (await deps.ledger?.recordBlock(block, rows)) ?? rows;
  const retryable = written.some((r) => r.outcome === 'failed' && isRetryableError(r.error ?? ''));
  return { rows: written, warnings, retryable };
}
