/**
 * SQL deletion on an older Keycloak schema, hand-made (Keycloak ≤ 7 had `credential_attribute` under
 * `credential`; < 4 had `user_consent_role` / `user_consent_prot_mapper` under `user_consent`): proves the
 * tables to clean are discovered from the database's foreign keys, not from one version's list.
 * Runs in a database of its own on the local PostgreSQL (KEYCLOAK_TEST_PG_URL overrides the server),
 * created and dropped by the test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createPgPool, type PgPool } from '#shared/clients/postgres.ts';
import { planDeletion, readForeignKeys, sqlDeleteBlock } from '#shared/keycloak/sql-store.ts';

const server = process.env.KEYCLOAK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const database = `kc_legacy_${randomBytes(4).toString('hex')}`;

// Trimmed to the columns that matter, with the constraint shapes of Keycloak 3.x.
const LEGACY_SCHEMA = `
  CREATE TABLE realm (id varchar(36) PRIMARY KEY, name varchar(255) UNIQUE);
  CREATE TABLE keycloak_role (id varchar(36) PRIMARY KEY, name varchar(255), realm_id varchar(255));
  CREATE TABLE user_entity (
    id varchar(36) PRIMARY KEY, username varchar(255), realm_id varchar(255),
    service_account_client_link varchar(36));
  CREATE TABLE credential (
    id varchar(36) PRIMARY KEY, type varchar(255), value varchar(4000),
    user_id varchar(36) CONSTRAINT fk_pfyr0glasqyl0dei3kl69r6v0 REFERENCES user_entity(id));
  CREATE TABLE credential_attribute (
    id varchar(36) PRIMARY KEY, name varchar(255), value varchar(4000),
    credential_id varchar(36) NOT NULL CONSTRAINT fk_cred_attr REFERENCES credential(id));
  CREATE TABLE user_attribute (
    id varchar(36) PRIMARY KEY, name varchar(255) NOT NULL, value varchar(255),
    user_id varchar(36) NOT NULL CONSTRAINT fk_5hrm2vlf9ql5fu043kqepovbr REFERENCES user_entity(id),
    UNIQUE (user_id, name));
  CREATE TABLE user_required_action (
    user_id varchar(36) NOT NULL CONSTRAINT fk_6qj3w1jw9cvafhe19bwsiuvmd REFERENCES user_entity(id),
    required_action varchar(255) NOT NULL, PRIMARY KEY (required_action, user_id));
  CREATE TABLE user_role_mapping (
    role_id varchar(255) NOT NULL,
    user_id varchar(36) NOT NULL CONSTRAINT fk_c4fqv34p1mbylloxang7b1q3l REFERENCES user_entity(id),
    PRIMARY KEY (role_id, user_id));
  CREATE TABLE federated_identity (
    identity_provider varchar(255) NOT NULL, realm_id varchar(36), federated_user_id varchar(255),
    user_id varchar(36) NOT NULL CONSTRAINT fk404288b92ef007a6 REFERENCES user_entity(id),
    PRIMARY KEY (identity_provider, user_id));
  CREATE TABLE user_consent (
    id varchar(36) PRIMARY KEY, client_id varchar(36),
    user_id varchar(36) NOT NULL CONSTRAINT fk_grntcsnt_user REFERENCES user_entity(id));
  CREATE TABLE user_consent_role (
    user_consent_id varchar(36) NOT NULL CONSTRAINT fk_grntcsnt_role_gr REFERENCES user_consent(id),
    role_id varchar(36) NOT NULL, PRIMARY KEY (user_consent_id, role_id));
  CREATE TABLE user_consent_prot_mapper (
    user_consent_id varchar(36) NOT NULL CONSTRAINT fk_grntcsnt_prm_gr REFERENCES user_consent(id),
    protocol_mapper_id varchar(36) NOT NULL, PRIMARY KEY (user_consent_id, protocol_mapper_id));
  CREATE TABLE offline_user_session (
    user_session_id varchar(36) NOT NULL, user_id varchar(255), realm_id varchar(36),
    offline_flag varchar(4) NOT NULL, data text, PRIMARY KEY (user_session_id, offline_flag));
  CREATE TABLE offline_client_session (
    user_session_id varchar(36) NOT NULL, client_id varchar(36) NOT NULL, offline_flag varchar(4) NOT NULL,
    data text, PRIMARY KEY (user_session_id, client_id, offline_flag));
  -- A site's own extension table two levels down with a two-column foreign key: discovery must follow it.
  CREATE TABLE user_attribute_history (
    id serial PRIMARY KEY, user_id varchar(36) NOT NULL, name varchar(255) NOT NULL, old_value varchar(255),
    CONSTRAINT fk_attr_history FOREIGN KEY (user_id, name) REFERENCES user_attribute(user_id, name));
`;

const TABLES_BY_USER: Record<string, string> = {
  user_entity: 'SELECT count(*)::int AS n FROM user_entity WHERE id = ANY($1)',
  credential: 'SELECT count(*)::int AS n FROM credential WHERE user_id = ANY($1)',
  credential_attribute: `SELECT count(*)::int AS n FROM credential_attribute WHERE credential_id LIKE ANY(
      SELECT u || '%' FROM unnest($1::text[]) u)`,
  user_attribute: 'SELECT count(*)::int AS n FROM user_attribute WHERE user_id = ANY($1)',
  user_attribute_history: 'SELECT count(*)::int AS n FROM user_attribute_history WHERE user_id = ANY($1)',
  user_required_action: 'SELECT count(*)::int AS n FROM user_required_action WHERE user_id = ANY($1)',
  user_role_mapping: 'SELECT count(*)::int AS n FROM user_role_mapping WHERE user_id = ANY($1)',
  federated_identity: 'SELECT count(*)::int AS n FROM federated_identity WHERE user_id = ANY($1)',
  user_consent: 'SELECT count(*)::int AS n FROM user_consent WHERE user_id = ANY($1)',
  user_consent_role: `SELECT count(*)::int AS n FROM user_consent_role WHERE user_consent_id LIKE ANY(
      SELECT u || '%' FROM unnest($1::text[]) u)`,
  user_consent_prot_mapper: `SELECT count(*)::int AS n FROM user_consent_prot_mapper WHERE user_consent_id LIKE ANY(
      SELECT u || '%' FROM unnest($1::text[]) u)`,
  offline_user_session: 'SELECT count(*)::int AS n FROM offline_user_session WHERE user_id = ANY($1)',
  offline_client_session: `SELECT count(*)::int AS n FROM offline_client_session WHERE user_session_id LIKE ANY(
      SELECT u || '%' FROM unnest($1::text[]) u)`,
};

async function counts(pool: PgPool, ids: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [table, sql] of Object.entries(TABLES_BY_USER)) {
    out[table] = (await pool.query<{ n: number }>(sql, [ids])).rows[0]!.n;
  }
  return out;
}

/** One user with a row in every table; child ids start with the user id so the counts can find them. */
async function seedUser(pool: PgPool, id: string, realmId: string): Promise<void> {
  const q = (sql: string, values: unknown[]) => pool.query(sql, values);
  await q('INSERT INTO user_entity (id, username, realm_id) VALUES ($1, $1, $2)', [id, realmId]);
  for (const n of [1, 2]) {
    await q('INSERT INTO credential (id, type, value, user_id) VALUES ($1, $2, $3, $4)', [
      `${id}-c${n}`,
      'password',
      'hash',
      id,
    ]);
    await q('INSERT INTO credential_attribute (id, name, value, credential_id) VALUES ($1, $2, $3, $4)', [
      `${id}-ca${n}`,
      'salt',
      'x',
      `${id}-c${n}`,
    ]);
  }
  await q('INSERT INTO user_attribute (id, name, value, user_id) VALUES ($1, $2, $3, $4)', [
    `${id}-a`,
    'org',
    'org-1',
    id,
  ]);
  await q('INSERT INTO user_attribute_history (user_id, name, old_value) VALUES ($1, $2, $3)', [
    id,
    'org',
    'org-0',
  ]);
  await q('INSERT INTO user_required_action (user_id, required_action) VALUES ($1, $2)', [
    id,
    'UPDATE_PASSWORD',
  ]);
  await q('INSERT INTO user_role_mapping (role_id, user_id) VALUES ($1, $2)', ['role-public', id]);
  await q(
    'INSERT INTO federated_identity (identity_provider, realm_id, federated_user_id, user_id) VALUES ($1, $2, $3, $4)',
    ['google', realmId, `g-${id}`, id],
  );
  await q('INSERT INTO user_consent (id, client_id, user_id) VALUES ($1, $2, $3)', [
    `${id}-consent`,
    'app',
    id,
  ]);
  await q('INSERT INTO user_consent_role (user_consent_id, role_id) VALUES ($1, $2)', [
    `${id}-consent`,
    'role-public',
  ]);
  await q('INSERT INTO user_consent_prot_mapper (user_consent_id, protocol_mapper_id) VALUES ($1, $2)', [
    `${id}-consent`,
    'mapper-email',
  ]);
  await q(
    'INSERT INTO offline_user_session (user_session_id, user_id, realm_id, offline_flag) VALUES ($1, $2, $3, $4)',
    [`${id}-s1`, id, realmId, '1'],
  );
  await q(
    'INSERT INTO offline_client_session (user_session_id, client_id, offline_flag) VALUES ($1, $2, $3)',
    [`${id}-s1`, 'app', '1'],
  );
}

describe('SQL deletion on a legacy Keycloak schema', () => {
  let admin: pg.Client;
  let pool: PgPool;

  before(async () => {
    admin = new pg.Client({ connectionString: `${server}/postgres` });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    pool = createPgPool({ url: `${server}/${database}`, max: 3 });
    await pool.query(LEGACY_SCHEMA);
    await pool.query(`INSERT INTO realm (id, name) VALUES ('r-sunbird', 'sunbird'), ('r-other', 'other')`);
    for (const id of ['u-del-1', 'u-del-2', 'u-keep-1']) await seedUser(pool, id, 'r-sunbird');
    await seedUser(pool, 'u-other-realm', 'r-other');
  });

  after(async () => {
    await pool?.end();
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  });

  test('the foreign keys are discovered recursively and ordered children first', async () => {
    const { root, keys } = await readForeignKeys(pool);
    const { steps, cycles } = planDeletion(root, keys);
    assert.deepEqual(cycles, []);
    const order = steps.map((s) => s.table);
    assert.deepEqual([...order].sort(), [
      'credential',
      'credential_attribute',
      'federated_identity',
      'user_attribute',
      'user_attribute_history',
      'user_consent',
      'user_consent_prot_mapper',
      'user_consent_role',
      'user_required_action',
      'user_role_mapping',
    ]);
    const before = (child: string, parent: string) =>
      assert.ok(order.indexOf(child) < order.indexOf(parent), `${child} before ${parent}`);
    before('credential_attribute', 'credential');
    before('user_consent_role', 'user_consent');
    before('user_consent_prot_mapper', 'user_consent');
    before('user_attribute_history', 'user_attribute');
    assert.match(steps.find((s) => s.table === 'user_attribute_history')!.sql, /\(user_id, name\) IN/);
  });

  test('one transaction deletes every row of the block, and nothing of anyone else', async () => {
    const keep = ['u-keep-1', 'u-other-realm'];
    const keptBefore = await counts(pool, keep);
    const r = await sqlDeleteBlock(pool, ['u-del-1', 'u-del-2', 'u-other-realm', 'u-missing'], {
      realmId: 'r-sunbird',
    });
    assert.equal(r.ok, true, r.ok ? '' : r.error);
    if (!r.ok) return;
    assert.deepEqual(r.deleted.sort(), ['u-del-1', 'u-del-2']);
    assert.deepEqual(r.notFound.sort(), ['u-missing', 'u-other-realm']);
    const gone = await counts(pool, ['u-del-1', 'u-del-2']);
    assert.deepEqual(gone, Object.fromEntries(Object.keys(gone).map((k) => [k, 0])));
    assert.equal(r.rowsByTable.credential_attribute, 4);
    assert.equal(r.rowsByTable.offline_client_session, 2);
    assert.deepEqual(await counts(pool, keep), keptBefore);
  });

  test('a block the guard refuses is left untouched', async () => {
    const r = await sqlDeleteBlock(pool, ['u-keep-1'], { realmId: 'r-sunbird', guard: async () => [] });
    assert.equal(r.ok, true);
    if (!r.ok) return;
    assert.deepEqual(r.deleted, []);
    assert.deepEqual(r.refused, ['u-keep-1']);
    assert.equal((await counts(pool, ['u-keep-1'])).credential_attribute, 2);
  });
});
