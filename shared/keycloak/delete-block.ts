/**
 * One block of the Keycloak deletion: the unit the SQS worker and the CLI both run.
 *
 * Selection happened earlier (maybe much earlier, in another process), so every safety rule is checked
 * again here, at delete time: a user that has since gained a protected role (directly, through a group or
 * a composite role), became a service account, lost every role mapping, or vanished from Cassandra is
 * skipped and reported. The store applies the same re-check once more as close to the deletion as it can
 * (SQL: inside the deleting transaction with the users' rows locked, so no role can be granted in between).
 */
import { DataOpsError, type ErrorKind, kindOf } from '#shared/core/errors.ts';
import { DeletionStopped } from '#shared/keycloak/errors.ts';
import type {
  FailedId,
  KeycloakUserRow,
  KeycloakUsers,
  Recheck,
  UserDirectory,
  UserStore,
} from '#shared/keycloak/ports.ts';
import type { Logger } from '#shared/logger.ts';

export interface DeleteBlockInput {
  /** Realm name. */
  realm: string;
  ids: readonly string[];
  dryRun: boolean;
}

export interface DeleteBlockDeps {
  users: KeycloakUsers;
  directory: UserDirectory;
  /** Asked for only when a block really deletes (never in a dry run). */
  store: () => UserStore;
  protectedRoles: readonly string[];
  logger?: Logger;
}

export interface DeleteBlockResult {
  realm: string;
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

/** The block had to stop (403, too many 401s, Keycloak gone): `partial` is what had happened by then. */
export class DeleteBlockStopped extends DataOpsError {
  override name = 'DeleteBlockStopped';
  readonly partial: DeleteBlockResult;
  constructor(message: string, partial: DeleteBlockResult, options?: ErrorOptions) {
    super(message, options);
    this.partial = partial;
  }
  get kind(): ErrorKind {
    return kindOf(this.cause) ?? 'run-failed';
  }
}

/** The delete-time rule: still a user of the realm, unprotected, no service account, with a role mapping. */
export function stillDeletable(row: KeycloakUserRow | undefined, isProtected: boolean): boolean {
  return row !== undefined && !isProtected && !row.serviceAccount && row.hasRoleMapping;
}

function emptyResult(input: DeleteBlockInput): DeleteBlockResult {
  return {
    realm: input.realm,
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
}

/** Sorts the block's ids by the rules; returns the ids that may be deleted. */
async function recheck(
  ids: string[],
  realmId: string,
  deps: DeleteBlockDeps,
  result: DeleteBlockResult,
): Promise<string[]> {
  const users = await deps.users.lookup(ids);
  const protectedIds = await deps.users.protectedAmong(ids, deps.protectedRoles);
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
  return eligible;
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
  const result = emptyResult(input);
  if (ids.length === 0) return result;
  // In a real run the store is set up first: a missing Admin API is a configuration error before any read.
  const store = input.dryRun ? undefined : deps.store();
  const realmId = await deps.users.realmId(input.realm);
  const eligible = await recheck(ids, realmId, deps, result);
  if (!store || eligible.length === 0) {
    if (input.dryRun) result.wouldDelete = eligible;
    log(deps, result);
    return result;
  }
  const rule: Recheck = { protectedRoles: deps.protectedRoles, stillDeletable };
  try {
    const out = await store.delete({ name: input.realm, id: realmId }, eligible, rule);
    result.deleted = out.deleted;
    result.failed = out.failed;
    result.notFound.push(...out.notFound);
    result.skippedProtected.push(...out.refused);
  } catch (err) {
    if (!(err instanceof DeletionStopped)) throw err;
    result.deleted = err.partial.deleted;
    result.failed = err.partial.failed;
    result.notFound.push(...err.partial.notFound);
    result.skippedProtected.push(...err.partial.refused);
    throw new DeleteBlockStopped(err.message, result, { cause: err.cause });
  }
  if (result.deleted.length > 0) result.warnings.push(...(await store.afterDelete(input.realm)));
  log(deps, result);
  return result;
}

function log(deps: DeleteBlockDeps, r: DeleteBlockResult): void {
  deps.logger?.info('keycloak block done', {
    realm: r.realm,
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
