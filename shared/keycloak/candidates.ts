/**
 * Which Keycloak users may be deleted. Read-only against Keycloak's PostgreSQL.
 *
 * The original job's rule, kept: users with at least one direct role mapping and no role named `admin`,
 * at most 20000, and only those that also exist in Cassandra `sunbird.user`. Stricter than the original
 * (deleting the wrong user is the worst thing this job can do):
 * - a protected role also protects when it is held through a group (or a parent group) or inside a
 *   composite role, not only as a direct mapping;
 * - service-account users (they belong to a client) are never candidates.
 */
import type { PoolClient } from 'pg';
import type { PgPool } from '#shared/clients/postgres.ts';
import type { UserDirectory } from '#shared/keycloak/user-directory.ts';

export interface Candidate {
  id: string;
  /** Realm name. */
  realm: string;
}

export type ExclusionReason =
  | 'protected-role'
  | 'service-account'
  | 'not-in-cassandra'
  /** An id from the id file that the Keycloak query did not select (unknown, no role, other realm…). */
  | 'not-selected';

export interface Excluded {
  id: string;
  realm?: string;
  reason: ExclusionReason;
}

export interface CandidateSelection {
  candidates: Candidate[];
  excluded: Excluded[];
  /** Rows the Keycloak query returned (before protection and Cassandra checks). */
  selected: number;
  /** The greatest id the query returned; pass as `afterId` to continue past it. */
  lastSelectedId?: string;
}

export interface SelectCandidatesOptions {
  /** Realm name; undefined or empty means every realm. */
  realm?: string;
  protectedRoles: readonly string[];
  limit: number;
  /** Restrict the selection to these ids (the id file). */
  ids?: readonly string[];
  /** Keyset paging: only ids greater than this one. */
  afterId?: string;
}

export class KeycloakDataError extends Error {
  override name = 'KeycloakDataError';
}

type Queryable = Pick<PoolClient, 'query'>;

/** Runs `fn` in a READ ONLY transaction: the selection can never write to Keycloak's database. */
export async function readOnly<T>(pool: PgPool, fn: (db: Queryable) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN READ ONLY');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export async function realmIdByName(db: Queryable, realm: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM realm WHERE name = $1', [realm]);
  if (!rows[0]) throw new KeycloakDataError(`Keycloak realm "${realm}" does not exist`);
  return rows[0].id;
}

/**
 * The ids among `ids` that hold a protected role in any way: directly, through a group or any of its
 * ancestors, or inside a composite role (recursively). Role names match realm and client roles alike,
 * as the original query did.
 */
export async function protectedAmong(
  db: Queryable,
  ids: readonly string[],
  protectedRoles: readonly string[],
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ user_id: string }>(
    `WITH RECURSIVE
       user_groups(user_id, group_id, parent_group) AS (
         SELECT ugm.user_id, g.id, g.parent_group
           FROM user_group_membership ugm JOIN keycloak_group g ON g.id = ugm.group_id
          WHERE ugm.user_id = ANY($1::varchar[])
         UNION
         SELECT ug.user_id, p.id, p.parent_group
           FROM user_groups ug JOIN keycloak_group p ON p.id = ug.parent_group
       ),
       granted(user_id, role_id) AS (
         SELECT urm.user_id, urm.role_id FROM user_role_mapping urm WHERE urm.user_id = ANY($1::varchar[])
         UNION
         SELECT ug.user_id, grm.role_id FROM user_groups ug JOIN group_role_mapping grm ON grm.group_id = ug.group_id
       ),
       effective(user_id, role_id) AS (
         SELECT user_id, role_id FROM granted
         UNION
         SELECT e.user_id, cr.child_role FROM effective e JOIN composite_role cr ON cr.composite = e.role_id
       )
     SELECT DISTINCT e.user_id FROM effective e JOIN keycloak_role kr ON kr.id = e.role_id
      WHERE kr.name = ANY($2::varchar[])`,
    [ids, protectedRoles],
  );
  return new Set(rows.map((r) => r.user_id));
}

export interface KeycloakUserRow {
  id: string;
  realmId: string;
  realm: string;
  serviceAccount: boolean;
  /** Has at least one direct role mapping (the original job's first condition). */
  hasRoleMapping: boolean;
}

/** The users among `ids` that exist in Keycloak, with their realm. */
export async function keycloakUsers(
  db: Queryable,
  ids: readonly string[],
): Promise<Map<string, KeycloakUserRow>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<{
    id: string;
    realm_id: string;
    realm: string;
    service_account: boolean;
    has_role: boolean;
  }>(
    `SELECT ue.id, ue.realm_id, r.name AS realm, ue.service_account_client_link IS NOT NULL AS service_account,
            EXISTS (SELECT 1 FROM user_role_mapping urm WHERE urm.user_id = ue.id) AS has_role
       FROM user_entity ue JOIN realm r ON r.id = ue.realm_id
      WHERE ue.id = ANY($1::varchar[])`,
    [ids],
  );
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        realmId: r.realm_id,
        realm: r.realm,
        serviceAccount: r.service_account,
        hasRoleMapping: r.has_role,
      },
    ]),
  );
}

/**
 * The original query, with the optional realm filter, id restriction and keyset paging added; ordered by
 * id so repeated runs and `afterId` paging are deterministic.
 */
async function selectFromKeycloak(
  db: Queryable,
  opts: SelectCandidatesOptions,
  realmId: string | null,
): Promise<KeycloakUserRow[]> {
  const { rows } = await db.query<{ id: string; realm_id: string; realm: string; service_account: boolean }>(
    `SELECT urm.user_id AS id, ue.realm_id, r.name AS realm,
            ue.service_account_client_link IS NOT NULL AS service_account
       FROM user_role_mapping urm
       JOIN keycloak_role kr ON kr.id = urm.role_id
       JOIN user_entity ue ON ue.id = urm.user_id
       JOIN realm r ON r.id = ue.realm_id
      WHERE ($1::varchar IS NULL OR ue.realm_id = $1::varchar)
        AND ($2::varchar[] IS NULL OR urm.user_id = ANY($2::varchar[]))
        AND ($3::varchar IS NULL OR urm.user_id > $3::varchar)
      GROUP BY urm.user_id, ue.realm_id, r.name, ue.service_account_client_link
     HAVING SUM(CASE WHEN kr.name = ANY($4::varchar[]) THEN 1 ELSE 0 END) = 0
      ORDER BY urm.user_id
      LIMIT $5`,
    [realmId, opts.ids ? [...opts.ids] : null, opts.afterId ?? null, opts.protectedRoles, opts.limit],
  );
  return rows.map((r) => ({
    id: r.id,
    realmId: r.realm_id,
    realm: r.realm,
    serviceAccount: r.service_account,
    hasRoleMapping: true,
  }));
}

export function validateSelectionOptions(opts: SelectCandidatesOptions): void {
  if (!Number.isInteger(opts.limit) || opts.limit < 1)
    throw new KeycloakDataError('limit must be a whole number ≥ 1');
  if (opts.protectedRoles.filter((r) => r.trim()).length === 0) {
    throw new KeycloakDataError('at least one protected role name is required');
  }
}

export async function selectCandidates(
  pool: PgPool,
  directory: UserDirectory,
  opts: SelectCandidatesOptions,
): Promise<CandidateSelection> {
  validateSelectionOptions(opts);
  const { rows, protectedIds } = await readOnly(pool, async (db) => {
    const realmId = opts.realm ? await realmIdByName(db, opts.realm) : null;
    const rows = await selectFromKeycloak(db, opts, realmId);
    const protectedIds = await protectedAmong(
      db,
      rows.map((r) => r.id),
      opts.protectedRoles,
    );
    return { rows, protectedIds };
  });

  const excluded: Excluded[] = [];
  const eligible: KeycloakUserRow[] = [];
  for (const row of rows) {
    if (protectedIds.has(row.id)) excluded.push({ id: row.id, realm: row.realm, reason: 'protected-role' });
    else if (row.serviceAccount) excluded.push({ id: row.id, realm: row.realm, reason: 'service-account' });
    else eligible.push(row);
  }
  const inCassandra = await directory.existing(eligible.map((r) => r.id));
  const candidates: Candidate[] = [];
  for (const row of eligible) {
    if (inCassandra.has(row.id)) candidates.push({ id: row.id, realm: row.realm });
    else excluded.push({ id: row.id, realm: row.realm, reason: 'not-in-cassandra' });
  }
  if (opts.ids) {
    const selected = new Set(rows.map((r) => r.id));
    for (const id of new Set(opts.ids)) {
      if (!selected.has(id)) excluded.push({ id, reason: 'not-selected' });
    }
  }
  const last = rows.at(-1);
  return { candidates, excluded, selected: rows.length, ...(last ? { lastSelectedId: last.id } : {}) };
}
