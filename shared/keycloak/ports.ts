/**
 * What the Keycloak deletion job needs from the outside world. The cores (selection, delete block, delete
 * stage, local run) use only these; the adapters are `pg-users.ts` (Keycloak's PostgreSQL, read-only),
 * `sql-store.ts` and `admin-api-store.ts` (the two ways to delete), `cassandra-directory.ts` and
 * `cassandra-records.ts` (Cassandra), and `memory.ts` holds an in-memory adapter of each for unit tests.
 */

/** A Keycloak user as the safety rules see it. */
export interface KeycloakUserRow {
  id: string;
  realmId: string;
  /** Realm name. */
  realm: string;
  serviceAccount: boolean;
  /** Has at least one direct role mapping (the original job's first condition). */
  hasRoleMapping: boolean;
}

export interface SelectOptions {
  /** Realm name; undefined or empty means every realm. */
  realm?: string;
  protectedRoles: readonly string[];
  limit: number;
  /** Restrict the selection to these ids (the id file). */
  ids?: readonly string[];
  /** Keyset paging: only ids greater than this one. */
  afterId?: string;
}

/** Keycloak's users, read-only (its database): the selection and every re-check read through this. */
export interface KeycloakUsers {
  /**
   * The original job's query with the optional filters: users with at least one role mapping and no
   * directly held protected role, ordered by id, at most `limit`.
   */
  select(opts: SelectOptions): Promise<KeycloakUserRow[]>;
  /** The users among `ids` that exist, with their realm. */
  lookup(ids: readonly string[]): Promise<Map<string, KeycloakUserRow>>;
  /**
   * The ids among `ids` that hold a protected role in any way: directly, through a group or any of its
   * ancestors, or inside a composite role (at any depth), as a realm or a client role.
   */
  protectedAmong(ids: readonly string[], protectedRoles: readonly string[]): Promise<Set<string>>;
  /** The realm's id; a missing realm is bad input. */
  realmId(realm: string): Promise<string>;
}

/** "Which of these ids exist in sunbird.user?" — answered by point look-ups, never by a scan. */
export interface UserDirectory {
  existing(ids: readonly string[]): Promise<Set<string>>;
}

export type DeleteMode = 'admin-api' | 'sql';

export interface FailedId {
  id: string;
  error: string;
  /** Another attempt may succeed (5xx, 429, network, a rolled-back transaction). */
  retryable: boolean;
}

export interface StoreDeleteResult {
  deleted: string[];
  /** Not (or no longer) a user of the realm. */
  notFound: string[];
  /** Refused by the delete-time re-check (e.g. gained a protected role since it was checked). */
  refused: string[];
  failed: FailedId[];
}

/**
 * The re-check a store applies as close to the deletion as it can: a user is deleted only if it still
 * exists in the realm, holds no protected role, is no service account and still has a role mapping.
 */
export interface Recheck {
  protectedRoles: readonly string[];
  stillDeletable: (row: KeycloakUserRow | undefined, isProtected: boolean) => boolean;
}

/** Where users are deleted: Keycloak's Admin API, or its database directly. */
export interface UserStore {
  readonly mode: DeleteMode;
  /**
   * Deletes the ids (all of one realm). Throws `DeletionStopped` when nothing more can be deleted in this
   * run (403, a refused admin login, too many 401s), carrying what was done by then.
   */
  delete(
    realm: { name: string; id: string },
    ids: readonly string[],
    recheck: Recheck,
  ): Promise<StoreDeleteResult>;
  /** What must follow deletions in a realm (SQL: clear Keycloak's user cache); returns warnings. */
  afterDelete(realm: string): Promise<string[]>;
  /**
   * The preflight, before the run's first side effect (its first Sync API call): can this store delete
   * users of these realms? `samples` holds one candidate per realm, for the checks Keycloak answers per
   * user. Admin API: an admin token is obtained and Keycloak confirms the admin may manage the sample
   * user (`manage-users`). SQL: the database accepts the login and the role may delete from
   * `user_entity`. Throws on the taxonomy: refused → credentials refused, unreachable → unavailable.
   */
  check(samples: ReadonlyArray<{ realm: string; id: string }>): Promise<void>;
}

export const DELETION_OUTCOMES = [
  'deleted',
  'not-found',
  'failed',
  'skipped-protected',
  'skipped-not-in-cassandra',
  'skipped-no-role',
  'would-delete',
] as const;
export type DeletionOutcome = (typeof DELETION_OUTCOMES)[number];

/** One id's outcome in one block of a deletion run. */
export interface DeletionRow {
  rangeNo: number;
  seq: number;
  id: string;
  outcome: DeletionOutcome;
  realm: string | null;
  error: string | null;
  /** For a failure: worth another delivery. Not kept in the ledger. */
  retryable?: boolean;
}

/** The per-id part of the run ledger for the deletion stage. */
export interface DeletionRecords {
  /** The outcomes recorded earlier for one block (a redelivered block finds its own earlier rows). */
  outcomes(runId: string, rangeNo: number, seq: number): Promise<Map<string, DeletionOutcome>>;
  write(runId: string, rows: readonly DeletionRow[]): Promise<void>;
  /** Every row of the given blocks of a run. */
  rows(runId: string, blocks: ReadonlyArray<{ rangeNo: number; seq: number }>): AsyncIterable<DeletionRow>;
}
