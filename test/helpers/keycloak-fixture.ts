/**
 * A throw-away Keycloak realm populated the way the deletion job meets real data, built through the real
 * Admin API and token endpoint of the local Keycloak (`npm run services -- up keycloak`).
 *
 * Everything is created through Keycloak's own API except user consents: the Admin API can list and revoke
 * consents but not grant them, and granting one needs a browser login through the consent screen. Those
 * rows (`user_consent` + `user_consent_client_scope`) are inserted with SQL, as Keycloak itself writes them.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import type { PgPool } from '#shared/clients/postgres.ts';
import { createKeycloakAdminApi, type KeycloakAdminApi } from '#shared/keycloak/admin-api.ts';

export interface KeycloakEndpoint {
  baseUrl: string;
  adminUser: string;
  adminPassword: string;
}

export type UserKind =
  | 'admin-direct'
  | 'admin-via-group'
  | 'admin-via-composite'
  | 'admin-client-role'
  | 'no-roles'
  | 'not-in-cassandra'
  | 'normal';

export interface FixtureUser {
  id: string;
  username: string;
  password: string;
  kind: UserKind;
  inCassandra: boolean;
}

export interface KeycloakRealmFixture {
  realm: string;
  realmId: string;
  /** The public client used for password logins and offline sessions. */
  clientId: string;
  users: FixtureUser[];
  byKind(kind: UserKind): FixtureUser[];
  api: KeycloakAdminApi;
  /** Create one more normal user (role, password, attributes, group, consent, IdP link, offline session). */
  addNormalUser(opts?: { inCassandra?: boolean }): Promise<FixtureUser>;
  /** Password-grant login for a user of the realm; `offline` asks for an offline token. */
  login(user: FixtureUser, offline?: boolean): Promise<{ status: number; body: string }>;
  /** Delete the realm (and with it its users). */
  dispose(): Promise<void>;
}

export interface FixtureOptions {
  endpoint: KeycloakEndpoint;
  pool: PgPool;
  cassandra: CassandraClient;
  /** Keyspace holding `user`. */
  keyspace: string;
  normalUsers?: number;
}

const CLIENT_ID = 'dataops-test-app';
const IDP_ALIAS = 'upstream-idp';

async function expectStatus(
  api: KeycloakAdminApi,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
  ok = [200, 201, 204],
) {
  const res = await api.adminRequest(method, path, body);
  if (!ok.includes(res.status))
    throw new Error(`${method} ${path} → ${res.status} ${res.text.slice(0, 300)}`);
  return res;
}

export async function createKeycloakRealmFixture(opts: FixtureOptions): Promise<KeycloakRealmFixture> {
  const { endpoint, pool, cassandra, keyspace } = opts;
  const api = createKeycloakAdminApi({
    baseUrl: endpoint.baseUrl,
    adminRealm: 'master',
    clientId: 'admin-cli',
    username: endpoint.adminUser,
    password: endpoint.adminPassword,
    concurrency: 4,
  });
  const realm = `kc_${randomBytes(4).toString('hex')}`;
  const r = `/admin/realms/${realm}`;
  await expectStatus(api, 'POST', '/admin/realms', { realm, enabled: true });

  // Keycloak 24+ silently drops attributes the user profile does not declare, unless allowed.
  const profile = (await expectStatus(api, 'GET', `${r}/users/profile`)).json<Record<string, unknown>>();
  await expectStatus(api, 'PUT', `${r}/users/profile`, { ...profile, unmanagedAttributePolicy: 'ENABLED' });

  // A public client that allows the password grant, so users can log in and hold offline sessions.
  await expectStatus(api, 'POST', `${r}/clients`, {
    clientId: CLIENT_ID,
    enabled: true,
    publicClient: true,
    directAccessGrantsEnabled: true,
    standardFlowEnabled: false,
  });
  const client = (await expectStatus(api, 'GET', `${r}/clients?clientId=${CLIENT_ID}`)).json<
    Array<{ id: string }>
  >()[0]!;

  for (const name of ['admin', 'public', 'super']) {
    await expectStatus(api, 'POST', `${r}/roles`, { name });
  }
  const role = async (name: string) =>
    (await expectStatus(api, 'GET', `${r}/roles/${name}`)).json<{ id: string; name: string }>();
  const [adminRole, publicRole, superRole] = [await role('admin'), await role('public'), await role('super')];
  await expectStatus(api, 'POST', `${r}/roles/super/composites`, [adminRole]);
  await expectStatus(api, 'POST', `${r}/clients/${client.id}/roles`, { name: 'admin' });
  const clientAdminRole = (await expectStatus(api, 'GET', `${r}/clients/${client.id}/roles/admin`)).json<{
    id: string;
    name: string;
  }>();
  const defaultRole = await role(`default-roles-${realm}`);

  const group = async (name: string, parent?: string): Promise<string> => {
    const res = await expectStatus(api, 'POST', parent ? `${r}/groups/${parent}/children` : `${r}/groups`, {
      name,
    });
    const location = String(res.headers.location ?? '');
    if (location) return location.slice(location.lastIndexOf('/') + 1);
    return res.json<{ id: string }>().id;
  };
  const learners = await group('learners');
  const staff = await group('staff');
  // The admin role sits on the parent group: membership of the child must still protect.
  const admins = await group('admins', staff);
  await expectStatus(api, 'POST', `${r}/groups/${staff}/role-mappings/realm`, [adminRole]);

  await expectStatus(api, 'POST', `${r}/identity-provider/instances`, {
    alias: IDP_ALIAS,
    providerId: 'oidc',
    enabled: true,
    config: {
      clientId: 'upstream-client',
      clientSecret: 'upstream-secret',
      authorizationUrl: 'http://127.0.0.1:1/auth',
      tokenUrl: 'http://127.0.0.1:1/token',
      clientAuthMethod: 'client_secret_post',
    },
  });

  const realmId = (await pool.query<{ id: string }>('SELECT id FROM realm WHERE name = $1', [realm])).rows[0]!
    .id;
  const users: FixtureUser[] = [];
  let seq = 0;

  const login = async (user: FixtureUser, offline = false) => {
    const form = new URLSearchParams({
      grant_type: 'password',
      client_id: CLIENT_ID,
      username: user.username,
      password: user.password,
      scope: offline ? 'openid offline_access' : 'openid',
    });
    const res = await request(`${endpoint.baseUrl}/realms/${realm}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    return { status: res.statusCode, body: await res.body.text() };
  };

  const createUser = async (kind: UserKind, inCassandra: boolean): Promise<FixtureUser> => {
    const username = `${kind}-${++seq}-${randomBytes(3).toString('hex')}`;
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const res = await expectStatus(api, 'POST', `${r}/users`, {
      username,
      enabled: true,
      email: `${username}@example.test`,
      emailVerified: true,
      firstName: 'Test',
      lastName: kind,
      attributes: { sunbirdOrg: ['org-1'], kind: [kind] },
      credentials: [{ type: 'password', value: password, temporary: false }],
    });
    const location = String(res.headers.location ?? '');
    const id = location.slice(location.lastIndexOf('/') + 1);
    const user: FixtureUser = { id, username, password, kind, inCassandra };
    const u = `${r}/users/${id}`;
    switch (kind) {
      case 'admin-direct':
        await expectStatus(api, 'POST', `${u}/role-mappings/realm`, [adminRole]);
        break;
      case 'admin-via-group':
        await expectStatus(api, 'PUT', `${u}/groups/${admins}`);
        break;
      case 'admin-via-composite':
        await expectStatus(api, 'POST', `${u}/role-mappings/realm`, [superRole]);
        break;
      case 'admin-client-role':
        await expectStatus(api, 'POST', `${u}/role-mappings/clients/${client.id}`, [clientAdminRole]);
        break;
      case 'no-roles':
        // Every new user gets default-roles-<realm>: take it away so the user has no role mapping at all.
        await expectStatus(api, 'DELETE', `${u}/role-mappings/realm`, [defaultRole]);
        break;
      default:
        await expectStatus(api, 'POST', `${u}/role-mappings/realm`, [publicRole]);
    }
    if (kind === 'normal' || kind === 'not-in-cassandra') {
      await expectStatus(api, 'PUT', `${u}/groups/${learners}`);
      await expectStatus(api, 'POST', `${u}/federated-identity/${IDP_ALIAS}`, {
        identityProvider: IDP_ALIAS,
        userId: `upstream-${id}`,
        userName: username,
      });
      // An offline session (offline_user_session / offline_client_session, offline_flag '1'); the
      // persistent user sessions of Keycloak 25+ also store the online session there (flag '0').
      const offline = await login(user, true);
      if (offline.status !== 200)
        throw new Error(`offline login of ${username} → ${offline.status} ${offline.body}`);
      await insertConsent(pool, id, client.id);
      // Required actions last: they would block the password grant above.
      await expectStatus(api, 'PUT', u, { requiredActions: ['CONFIGURE_TOTP'] });
    }
    if (inCassandra) {
      await cassandra.execute(
        `INSERT INTO ${keyspace}.user (id, username, status) VALUES (?, ?, ?)`,
        [id, username, 1],
        {
          prepare: true,
        },
      );
    }
    users.push(user);
    return user;
  };

  const plan: Array<[UserKind, boolean]> = [
    ['admin-direct', true],
    ['admin-via-group', true],
    ['admin-via-composite', true],
    ['admin-client-role', true],
    ['no-roles', true],
    ['no-roles', true],
    ['not-in-cassandra', false],
    ['not-in-cassandra', false],
    ...Array.from({ length: opts.normalUsers ?? 6 }, (): [UserKind, boolean] => ['normal', true]),
  ];
  for (const [kind, inCassandra] of plan) await createUser(kind, inCassandra);

  return {
    realm,
    realmId,
    clientId: CLIENT_ID,
    users,
    byKind: (kind) => users.filter((u) => u.kind === kind),
    api,
    addNormalUser: (o = {}) => createUser('normal', o.inCassandra ?? true),
    login,
    async dispose() {
      await api.adminRequest('DELETE', r).catch(() => undefined);
      await api.close();
    },
  };
}

/** A granted consent exactly as Keycloak stores one (see the module comment for why SQL). */
async function insertConsent(pool: PgPool, userId: string, clientUuid: string): Promise<void> {
  const consentId = crypto.randomUUID();
  const now = Date.now();
  await pool.query(
    `INSERT INTO user_consent (id, client_id, user_id, created_date, last_updated_date) VALUES ($1, $2, $3, $4, $4)`,
    [consentId, clientUuid, userId, now],
  );
  await pool.query(
    `INSERT INTO user_consent_client_scope (user_consent_id, scope_id)
     SELECT $1, cs.id FROM client_scope cs JOIN realm r ON r.id = cs.realm_id
       JOIN user_entity ue ON ue.realm_id = r.id
      WHERE ue.id = $2 AND cs.name IN ('profile', 'email')`,
    [consentId, userId],
  );
}

/** Ids of rows that hang off a user without naming it: captured before deletion, counted after. */
export interface UserRefs {
  consentIds: string[];
  sessionIds: string[];
}

export async function userRefs(pool: PgPool, ids: readonly string[]): Promise<UserRefs> {
  const consents = await pool.query<{ id: string }>('SELECT id FROM user_consent WHERE user_id = ANY($1)', [
    ids,
  ]);
  const sessions = await pool.query<{ id: string }>(
    'SELECT DISTINCT user_session_id AS id FROM offline_user_session WHERE user_id = ANY($1)',
    [ids],
  );
  return { consentIds: consents.rows.map((r) => r.id), sessionIds: sessions.rows.map((r) => r.id) };
}

/** Rows per table that belong to the users, in every table of Keycloak 26 that holds user data. */
export async function countUserRows(
  pool: PgPool,
  ids: readonly string[],
  refs: UserRefs,
): Promise<Record<string, number>> {
  const byUser = [
    'user_entity:id',
    'credential:user_id',
    'user_attribute:user_id',
    'user_required_action:user_id',
    'user_role_mapping:user_id',
    'user_group_membership:user_id',
    'federated_identity:user_id',
    'user_consent:user_id',
    'offline_user_session:user_id',
  ];
  const out: Record<string, number> = {};
  const count = async (table: string, column: string, values: readonly string[]) =>
    (
      await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${column} = ANY($1)`, [
        values,
      ])
    ).rows[0]!.n;
  for (const entry of byUser) {
    const [table, column] = entry.split(':') as [string, string];
    out[table] = await count(table, column, ids);
  }
  out.user_consent_client_scope = await count(
    'user_consent_client_scope',
    'user_consent_id',
    refs.consentIds,
  );
  out.offline_client_session = await count('offline_client_session', 'user_session_id', refs.sessionIds);
  return out;
}
