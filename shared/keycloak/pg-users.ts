/**
 * Keycloak's users, read from its PostgreSQL — always inside a `READ ONLY` transaction, so the selection
 * can never write to Keycloak's database. The query functions also run inside the SQL store's deleting
 * transaction, for the re-check under row locks.
 */
import type { PoolClient } from 'pg';
import { type PgPool, postgresError } from '#shared/clients/postgres.ts';

/** How errors name Keycloak's PostgreSQL. */
export const KEYCLOAK_DB = 'Keycloak database';

import { KeycloakDataError } from '#shared/keycloak/errors.ts';
import type { KeycloakUserRow, KeycloakUsers, SelectOptions } from '#shared/keycloak/ports.ts';

export type Queryable = Pick<PoolClient, 'query'>;

/** Runs `fn` in a READ ONLY transaction; an unreachable or refusing database is an error on the taxonomy. */
export async function readOnly<T>(pool: PgPool, fn: (db: Queryable) => Promise<T>): Promise<T> {
  const client = await pool.connect().catch((err: unknown) => {
    throw postgresError(err, pool, KEYCLOAK_DB);
  });
  try {
    await client.query('BEGIN READ ONLY');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw postgresError(err, pool, KEYCLOAK_DB);
  } finally {
    client.release();
  }
}

export async function realmIdIn(db: Queryable, realm: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM realm WHERE name = $1', [realm]);
  if (!rows[0]) throw new KeycloakDataError(`Keycloak realm "${realm}" does not exist`);
  return rows[0].id;
}

/**
 * The ids among `ids` that hold a protected role in any way: directly, through a group or any of its
 * ancestors, or inside a composite role (recursively). Role names match realm and client roles alike,
 * as the original query did.
 */
export async function protectedIn(
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

/** The users among `ids` that exist in Keycloak, with their realm. */
export async function lookupIn(db: Queryable, ids: readonly string[]): Promise<Map<string, KeycloakUserRow>> {
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
async function selectIn(
  db: Queryable,
  opts: SelectOptions,
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

export class PgKeycloakUsers implements KeycloakUsers {
  readonly #pool: PgPool;

  constructor(pool: PgPool) {
    this.#pool = pool;
  }

  select(opts: SelectOptions): Promise<KeycloakUserRow[]> {
    return readOnly(this.#pool, async (db) =>
      selectIn(db, opts, opts.realm ? await realmIdIn(db, opts.realm) : null),
    );
  }

  lookup(ids: readonly string[]): Promise<Map<string, KeycloakUserRow>> {
    return ids.length ? readOnly(this.#pool, (db) => lookupIn(db, ids)) : Promise.resolve(new Map());
  }

  protectedAmong(ids: readonly string[], protectedRoles: readonly string[]): Promise<Set<string>> {
    return ids.length
      ? readOnly(this.#pool, (db) => protectedIn(db, ids, protectedRoles))
      : Promise.resolve(new Set());
  }

  realmId(realm: string): Promise<string> {
    return readOnly(this.#pool, (db) => realmIdIn(db, realm));
  }
}
