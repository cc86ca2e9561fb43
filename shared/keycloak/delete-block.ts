/**
 * One block of the Keycloak deletion: the unit the SQS worker and the CLI both run.
 *
 * Selection happened earlier (maybe much earlier, in another process), so every safety rule is checked
 * again here, at delete time: a user that has since gained a protected role (directly, through a group or
 * a composite role), became a service account, lost every role mapping, or vanished from Cassandra is
 * skipped and reported. In SQL
 * mode the protection check is repeated inside the deleting transaction with the users' rows locked, so no
 * role can be granted in between.
 */
import type { PgPool } from '#shared/clients/postgres.ts';
import type { FailedId, KeycloakAdminApi } from '#shared/keycloak/admin-api.ts';
import { KeycloakFatalError } from '#shared/keycloak/admin-api.ts';
import { keycloakUsers, protectedAmong, readOnly, realmIdByName } from '#shared/keycloak/candidates.ts';
import { afterSqlDelete, sqlDeleteBlock } from '#shared/keycloak/sql-delete.ts';
import type { UserDirectory } from '#shared/keycloak/user-directory.ts';
import type { Logger } from '#shared/logger.ts';

export type DeleteMode = 'admin-api' | 'sql';

export interface DeleteBlockInput {
  /** Realm name. */
  realm: string;
  ids: readonly string[];
  mode: DeleteMode;
  dryRun: boolean;
}

export interface DeleteBlockDeps {
  /** Keycloak's PostgreSQL. */
  pool: PgPool;
  directory: UserDirectory;
  /** Required for admin-api mode; in SQL mode used to clear the user cache afterwards. */
  adminApi?: KeycloakAdminApi;
  protectedRoles: readonly string[];
  logger?: Logger;
}

export interface DeleteBlockResult {
  realm: string;
  mode: DeleteMode;
  dryRun: boolean;
  deleted: string[];
  /** Dry run only: what would have been deleted. */
  wouldDelete: string[];
  /** Not (or no longer) a user of this realm. */
  notFound: string[];
  failed: FailedId[];
  /** Holds a protected role, or is a service account. */
  skippedProtected: string[];
  skippedNotInCassandra: string[];
  /** Has no role mapping (any more): never a candidate, as in the original query. */
  skippedNoRoleMapping: string[];
  /** Things the operator must act on (e.g. restart Keycloak after SQL deletion). */
  warnings: string[];
}

/** The block had to stop (403, too many 401s): `partial` is what had happened by then. */
export class DeleteBlockStopped extends Error {
  override name = 'DeleteBlockStopped';
  readonly partial: DeleteBlockResult;
  constructor(message: string, partial: DeleteBlockResult, options?: ErrorOptions) {
    super(message, options);
    this.partial = partial;
  }
}

export async function deleteBlock(
  input: DeleteBlockInput,
  deps: DeleteBlockDeps,
): Promise<DeleteBlockResult> {
  if (!input.realm) throw new Error('a realm is required for each block');
  if (deps.protectedRoles.filter((r) => r.trim()).length === 0) {
    throw new Error('at least one protected role name is required');
  }
  const ids = [...new Set(input.ids.map((id) => id.trim()).filter(Boolean))];
  const result: DeleteBlockResult = {
    realm: input.realm,
    mode: input.mode,
    dryRun: input.dryRun,
    deleted: [],
    wouldDelete: [],
    notFound: [],
    failed: [],
    skippedProtected: [],
    skippedNotInCassandra: [],
    skippedNoRoleMapping: [],
    warnings: [],
  };
  if (ids.length === 0) return result;
  if (!input.dryRun && input.mode === 'admin-api' && !deps.adminApi) {
    throw new Error(
      'admin-api mode needs the Keycloak Admin API configured (KEYCLOAK_BASE_URL and credentials)',
    );
  }

  const { realmId, users, protectedIds } = await readOnly(deps.pool, async (db) => ({
    realmId: await realmIdByName(db, input.realm),
    users: await keycloakUsers(db, ids),
    protectedIds: await protectedAmong(db, ids, deps.protectedRoles),
  }));

  const present: string[] = [];
  for (const id of ids) {
    const user = users.get(id);
    if (!user || user.realmId !== realmId) result.notFound.push(id);
    else if (protectedIds.has(id) || user.serviceAccount) result.skippedProtected.push(id);
    else if (!user.hasRoleMapping) result.skippedNoRoleMapping.push(id);
    else present.push(id);
  }
  const inCassandra = await deps.directory.existing(present);
  const eligible: string[] = [];
  for (const id of present) {
    if (inCassandra.has(id)) eligible.push(id);
    else result.skippedNotInCassandra.push(id);
  }

  if (input.dryRun || eligible.length === 0) {
    if (input.dryRun) result.wouldDelete = eligible;
    log(deps, result);
    return result;
  }

  if (input.mode === 'admin-api') {
    try {
      const out = await deps.adminApi!.deleteUsers(input.realm, eligible);
      Object.assign(result, { deleted: out.deleted, failed: out.failed });
      result.notFound.push(...out.notFound);
    } catch (err) {
      if (err instanceof KeycloakFatalError) {
        if (err.partial) {
          Object.assign(result, { deleted: err.partial.deleted, failed: err.partial.failed });
          result.notFound.push(...err.partial.notFound);
        }
        throw new DeleteBlockStopped(err.message, result, { cause: err });
      }
      throw err;
    }
  } else {
    const out = await sqlDeleteBlock(deps.pool, eligible, {
      realmId,
      guard: async (db, locked) => {
        const nowProtected = await protectedAmong(db, locked, deps.protectedRoles);
        const rows = await keycloakUsers(db, locked);
        return locked.filter((id) => {
          const row = rows.get(id);
          return !nowProtected.has(id) && row !== undefined && !row.serviceAccount && row.hasRoleMapping;
        });
      },
    });
    if (out.ok) {
      result.deleted = out.deleted;
      result.notFound.push(...out.notFound);
      result.skippedProtected.push(...out.refused);
      if (out.deleted.length > 0) result.warnings.push(...(await afterSqlDelete(deps.adminApi, input.realm)));
    } else {
      result.failed = out.failed;
    }
  }
  log(deps, result);
  return result;
}

function log(deps: DeleteBlockDeps, r: DeleteBlockResult): void {
  deps.logger?.info('keycloak block done', {
    realm: r.realm,
    mode: r.mode,
    dryRun: r.dryRun,
    deleted: r.deleted.length,
    wouldDelete: r.wouldDelete.length,
    notFound: r.notFound.length,
    failed: r.failed.length,
    skippedProtected: r.skippedProtected.length,
    skippedNotInCassandra: r.skippedNotInCassandra.length,
    skippedNoRoleMapping: r.skippedNoRoleMapping.length,
  });
  for (const w of r.warnings) deps.logger?.warn(w);
}
