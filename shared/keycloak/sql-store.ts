/**
 * The SQL user store (deletion mode `sql`): removes users straight from Keycloak's PostgreSQL, one
 * transaction per block.
 *
 * Which tables hold a user's rows differs between Keycloak versions, so nothing is hard-coded: the foreign
 * keys that lead to `user_entity` are read from `pg_constraint` at run time, recursively (e.g.
 * `user_consent_client_scope` under `user_consent`, `credential_attribute` under `credential` in old
 * versions), and rows are deleted children first, `user_entity` last. Session tables that carry a user id
 * without a foreign key (`offline_user_session`, `offline_client_session` through `user_session_id`) are
 * deleted explicitly when they exist.
 *
 * Keycloak caches users in memory: afterwards the realm's user cache is cleared through the Admin API, or
 * — without one — the caller gets a loud warning that Keycloak must be restarted.
 */
import { type PgPool, postgresError } from '#shared/clients/postgres.ts';
import { CredentialsRefusedError } from '#shared/core/errors.ts';
import type { KeycloakAdminApi } from '#shared/keycloak/admin-api.ts';
import { KEYCLOAK_DB, lookupIn, protectedIn, type Queryable } from '#shared/keycloak/pg-users.ts';
import type { FailedId, Recheck, StoreDeleteResult, UserStore } from '#shared/keycloak/ports.ts';
import { scrubString } from '#shared/redact.ts';

export interface ForeignKey {
  constraint: string;
  /** Quoted, schema-qualified where needed (regclass text). */
  child: string;
  parent: string;
  childCols: string[];
  parentCols: string[];
}

export interface DeletionStep {
  table: string;
  /** How the table reaches user_entity, e.g. `user_consent_client_scope → user_consent → user_entity`. */
  path: string;
  sql: string;
}

const ROOT = 'user_entity';
/** $1 = user ids, $2 = realm id or null. */
const ROOT_FILTER = `id = ANY($1::varchar[]) AND ($2::varchar IS NULL OR realm_id = $2::varchar)`;

export async function readForeignKeys(db: Queryable): Promise<{ root: string; keys: ForeignKey[] }> {
  const root = await db.query<{ name: string | null }>(`SELECT to_regclass('${ROOT}')::text AS name`);
  const rootName = root.rows[0]?.name;
  if (!rootName) throw new Error(`table ${ROOT} not found: is this Keycloak's database?`);
  const { rows } = await db.query<{
    conname: string;
    child: string;
    parent: string;
    child_cols: string[];
    parent_cols: string[];
  }>(
    `SELECT c.conname, c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent,
            ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, i)
                    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.i)::text[] AS child_cols,
            ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.confkey) WITH ORDINALITY k(attnum, i)
                    JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.i)::text[] AS parent_cols
       FROM pg_constraint c
      WHERE c.contype = 'f'
      ORDER BY c.conrelid::regclass::text, c.conname`,
  );
  return {
    root: rootName,
    keys: rows.map((r) => ({
      constraint: r.conname,
      child: r.child,
      parent: r.parent,
      childCols: r.child_cols,
      parentCols: r.parent_cols,
    })),
  };
}

interface Node {
  table: string;
  /** SELECT of this node's rows to delete, projecting the given columns. */
  select: (cols: string[]) => string;
  path: string[];
}

const tuple = (cols: string[]): string => (cols.length === 1 ? cols[0]! : `(${cols.join(', ')})`);

/**
 * Deletion statements, children before parents, `user_entity` last. A table reached through several
 * foreign keys gets one statement per path; a foreign-key cycle is not followed (Keycloak has none below
 * user_entity) but is reported so it is never silent.
 */
export function planDeletion(
  root: string,
  keys: readonly ForeignKey[],
): { steps: DeletionStep[]; cycles: string[] } {
  const byParent = new Map<string, ForeignKey[]>();
  for (const fk of keys) {
    const list = byParent.get(fk.parent) ?? [];
    list.push(fk);
    byParent.set(fk.parent, list);
  }
  const steps: DeletionStep[] = [];
  const cycles: string[] = [];
  const visit = (node: Node): void => {
    for (const fk of byParent.get(node.table) ?? []) {
      // A self-reference is checked at the end of each DELETE statement, so it needs no ordering.
      if (fk.child === fk.parent) continue;
      if (node.path.includes(fk.child)) {
        cycles.push([fk.child, ...node.path].join(' → '));
        continue;
      }
      const where = `${tuple(fk.childCols)} IN (${node.select(fk.parentCols)})`;
      visit({
        table: fk.child,
        select: (cols) => `SELECT ${cols.join(', ')} FROM ${fk.child} WHERE ${where}`,
        path: [fk.child, ...node.path],
      });
      steps.push({
        table: fk.child,
        path: [fk.child, ...node.path].join(' → '),
        sql: `DELETE FROM ${fk.child} WHERE ${where}`,
      });
    }
  };
  visit({
    table: root,
    select: (cols) => `SELECT ${cols.join(', ')} FROM ${root} WHERE ${ROOT_FILTER}`,
    path: [root],
  });
  return { steps, cycles };
}

/** Session tables with a user id and no foreign key; Keycloak removes these rows itself on user removal. */
async function sessionSteps(db: Queryable, root: string): Promise<DeletionStep[]> {
  const { rows } = await db.query<{ ous: string | null; ocs: string | null }>(
    `SELECT to_regclass('offline_user_session')::text AS ous, to_regclass('offline_client_session')::text AS ocs`,
  );
  const { ous, ocs } = rows[0] ?? { ous: null, ocs: null };
  if (!ous) return [];
  const users = `SELECT id FROM ${root} WHERE ${ROOT_FILTER}`;
  const steps: DeletionStep[] = [];
  if (ocs) {
    steps.push({
      table: ocs,
      path: `${ocs} → ${ous} (user_session_id) → ${root} (no foreign key)`,
      sql: `DELETE FROM ${ocs} WHERE user_session_id IN (SELECT user_session_id FROM ${ous} WHERE user_id IN (${users}))`,
    });
  }
  steps.push({
    table: ous,
    path: `${ous} → ${root} (user_id, no foreign key)`,
    sql: `DELETE FROM ${ous} WHERE user_id IN (${users})`,
  });
  return steps;
}

export interface SqlBlockOptions {
  /** Realm id (not name) the ids must belong to; null/undefined means any realm. */
  realmId?: string | null;
  /**
   * Runs inside the transaction after the users' rows are locked (FOR UPDATE, so no role can be granted
   * to them concurrently); returns the ids that may still be deleted, the others are left untouched.
   */
  guard?: (db: Queryable, lockedIds: string[]) => Promise<string[]>;
  /** Per-statement lock wait; a block that waits longer fails and rolls back. */
  lockTimeoutMs?: number;
  /** Test hook: a statement run inside the transaction just before COMMIT. */
  onStep?: (step: DeletionStep, rowCount: number) => void;
}

export type SqlBlockResult =
  | {
      ok: true;
      deleted: string[];
      /** Not in user_entity (of that realm) when the block ran. */
      notFound: string[];
      /** Locked but refused by the guard. */
      refused: string[];
      rowsByTable: Record<string, number>;
    }
  | { ok: false; error: string; failed: FailedId[] };

/** Deletes one block of users in a single transaction; any error rolls the whole block back. */
export async function sqlDeleteBlock(
  pool: PgPool,
  ids: readonly string[],
  opts: SqlBlockOptions = {},
): Promise<SqlBlockResult> {
  const unique = [...new Set(ids)];
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(opts.lockTimeoutMs ?? 30_000))}`);
    const realmId = opts.realmId ?? null;
    const { root, keys } = await readForeignKeys(client);
    const locked = await client.query<{ id: string }>(
      `SELECT id FROM ${root} WHERE ${ROOT_FILTER} ORDER BY id FOR UPDATE`,
      [unique, realmId],
    );
    const lockedIds = locked.rows.map((r) => r.id);
    const allowed = opts.guard ? await opts.guard(client, lockedIds) : lockedIds;
    const allowedSet = new Set(allowed.filter((id) => lockedIds.includes(id)));
    const toDelete = lockedIds.filter((id) => allowedSet.has(id));
    const rowsByTable: Record<string, number> = {};
    let deleted: string[] = [];
    if (toDelete.length > 0) {
      const { steps, cycles } = planDeletion(root, keys);
      if (cycles.length > 0) throw new Error(`foreign-key cycle below ${root}: ${cycles.join('; ')}`);
      const all = [...(await sessionSteps(client, root)), ...steps];
      for (const step of all) {
        const res = await client.query(step.sql, [toDelete, realmId]);
        rowsByTable[step.table] = (rowsByTable[step.table] ?? 0) + (res.rowCount ?? 0);
        opts.onStep?.(step, res.rowCount ?? 0);
      }
      const res = await client.query<{ id: string }>(
        `DELETE FROM ${root} WHERE ${ROOT_FILTER} RETURNING id`,
        [toDelete, realmId],
      );
      rowsByTable[root] = res.rowCount ?? 0;
      deleted = res.rows.map((r) => r.id);
    }
    await client.query('COMMIT');
    const lockedSet = new Set(lockedIds);
    return {
      ok: true,
      deleted,
      notFound: unique.filter((id) => !lockedSet.has(id)),
      refused: lockedIds.filter((id) => !allowedSet.has(id)),
      rowsByTable,
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    const error = `block rolled back: ${scrubString((err as Error).message ?? String(err))}`;
    return { ok: false, error, failed: unique.map((id) => ({ id, error, retryable: true })) };
  } finally {
    client.release();
  }
}

export const RESTART_WARNING =
  'KEYCLOAK MUST BE RESTARTED (or its user cache cleared): users were deleted with SQL underneath a running Keycloak, ' +
  'and no Admin API is configured to clear the user cache. Until then the deleted users can still log in from the cache.';

/** After SQL deletion: clear the realm's user cache, or say loudly that Keycloak must be restarted. */
export async function afterSqlDelete(
  adminApi: KeycloakAdminApi | undefined,
  realm: string,
): Promise<string[]> {
  if (!adminApi) return [RESTART_WARNING];
  try {
    await adminApi.clearUserCache(realm);
    return [];
  } catch (err) {
    return [`${RESTART_WARNING} Clearing the cache failed: ${scrubString((err as Error).message)}`];
  }
}

/** The SQL store: the re-check runs inside each block's transaction, on the rows it has locked. */
export class SqlUserStore implements UserStore {
  readonly mode = 'sql';
  readonly #pool: PgPool;
  readonly #adminApi: () => KeycloakAdminApi | undefined;

  /** `adminApi` (when configured) clears the realm's user cache after deletions. */
  constructor(pool: PgPool, adminApi: () => KeycloakAdminApi | undefined) {
    this.#pool = pool;
    this.#adminApi = adminApi;
  }

  async delete(
    realm: { name: string; id: string },
    ids: readonly string[],
    rule: Recheck,
  ): Promise<StoreDeleteResult> {
    const out = await sqlDeleteBlock(this.#pool, ids, {
      realmId: realm.id,
      guard: async (db, locked) => {
        const nowProtected = await protectedIn(db, locked, rule.protectedRoles);
        const rows = await lookupIn(db, locked);
        return locked.filter((id) => rule.stillDeletable(rows.get(id), nowProtected.has(id)));
      },
    });
    if (!out.ok) return { deleted: [], notFound: [], refused: [], failed: out.failed };
    return { deleted: out.deleted, notFound: out.notFound, refused: out.refused, failed: [] };
  }

  afterDelete(realm: string): Promise<string[]> {
    return afterSqlDelete(this.#adminApi(), realm);
  }

  /**
   * The database accepts our login and our role may delete Keycloak's users; when an Admin API is
   * configured (to clear the user cache afterwards) its login works too.
   */
  async check(): Promise<void> {
    const { rows } = await this.#pool
      .query<{ ok: boolean | null }>(`SELECT has_table_privilege(to_regclass('user_entity'), 'DELETE') AS ok`)
      .catch((err: unknown) => {
        throw postgresError(err, this.#pool, KEYCLOAK_DB);
      });
    if (rows[0]?.ok !== true)
      throw new CredentialsRefusedError(
        KEYCLOAK_DB,
        rows[0]?.ok === false
          ? "the Keycloak database role may not delete from user_entity (sql mode needs DELETE on Keycloak's user tables)"
          : "no table user_entity in the Keycloak database: is KEYCLOAK_DB_URL Keycloak's database?",
      );
    await this.#adminApi()?.login();
  }
}
