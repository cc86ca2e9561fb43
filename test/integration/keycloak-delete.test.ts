/**
 * Deleting Keycloak users, against the real local Keycloak 26 (`npm run services -- up keycloak`), its
 * PostgreSQL database (schema created by Keycloak itself) and the local Cassandra. Each run works in a realm
 * and a keyspace of its own and removes both afterwards.
 * Overrides: KEYCLOAK_TEST_URL, KEYCLOAK_TEST_DB_URL, CASSANDRA_HOSTS / CASSANDRA_PORT / CASSANDRA_LOCAL_DC.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import {
  KEYCLOAK_ADMIN_PASSWORD,
  KEYCLOAK_ADMIN_USER,
  KEYCLOAK_DB_URL,
  KEYCLOAK_URL,
} from '#scripts/services/keycloak.ts';
import { ensureServices } from '#scripts/services.ts';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import { createPgPool, type PgPool } from '#shared/clients/postgres.ts';
import {
  type AdminApiOptions,
  createKeycloakAdminApi,
  type KeycloakAdminApi,
} from '#shared/keycloak/admin-api.ts';
import { cassandraUserDirectory } from '#shared/keycloak/cassandra-directory.ts';
import { type DeleteBlockInput, DeleteBlockStopped, deleteBlock } from '#shared/keycloak/delete-block.ts';
import { KeycloakRefusedError } from '#shared/keycloak/errors.ts';
import { PgKeycloakUsers } from '#shared/keycloak/pg-users.ts';
import type { DeleteMode, UserDirectory } from '#shared/keycloak/ports.ts';
import { pgDeleteDeps } from '#shared/keycloak/runtime.ts';
import { selectCandidates } from '#shared/keycloak/selection.ts';
import { RESTART_WARNING } from '#shared/keycloak/sql-store.ts';
import { registerSecret } from '#shared/redact.ts';
import { migrate } from '#shared/schema.ts';
import {
  countUserRows,
  createKeycloakRealmFixture,
  type FixtureUser,
  type KeycloakRealmFixture,
  userRefs,
} from '#test/helpers/keycloak-fixture.ts';

const baseUrl = process.env.KEYCLOAK_TEST_URL ?? KEYCLOAK_URL;
const dbUrl = process.env.KEYCLOAK_TEST_DB_URL ?? KEYCLOAK_DB_URL;
registerSecret(KEYCLOAK_ADMIN_PASSWORD);

const ids = (users: readonly FixtureUser[]): string[] => users.map((u) => u.id).sort();
const sorted = (xs: readonly string[]): string[] => [...xs].sort();
const allZero = (counts: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.keys(counts).map((k) => [k, 0]));

describe('Keycloak user deletion against a real Keycloak', { timeout: 600_000 }, () => {
  let pool: PgPool;
  let cassandra: CassandraClient;
  let keyspace: string;
  let directory: UserDirectory;
  let fx: KeycloakRealmFixture;
  let adminApi: KeycloakAdminApi;
  const apiOptions: AdminApiOptions = {
    baseUrl,
    adminRealm: 'master',
    clientId: 'admin-cli',
    username: KEYCLOAK_ADMIN_USER,
    password: KEYCLOAK_ADMIN_PASSWORD,
    concurrency: 4,
    retryBaseMs: 10,
  };
  /** One block through the core, on Keycloak's database and (unless overridden) the Admin API. */
  const del = (
    input: DeleteBlockInput & { mode: DeleteMode },
    over: { adminApi?: KeycloakAdminApi | undefined } = {},
  ) =>
    deleteBlock(
      { realm: input.realm, ids: input.ids, dryRun: input.dryRun },
      pgDeleteDeps({
        pool,
        directory,
        mode: input.mode,
        adminApi: 'adminApi' in over ? over.adminApi : adminApi,
        protectedRoles: ['admin'],
      }),
    );
  const userExists = async (u: FixtureUser): Promise<number> =>
    (await adminApi.adminRequest('GET', `/admin/realms/${fx.realm}/users/${u.id}`)).status;

  before(async () => {
    // Keycloak is an on-demand service: this suite asks for it (≈ 50 s the first time, ≈ 1 s when up).
    if (!process.env.KEYCLOAK_TEST_URL) await ensureServices(['keycloak', 'cassandra']);
    pool = createPgPool({ url: dbUrl, max: 6 });
    cassandra = createCassandraClient({
      hosts: (process.env.CASSANDRA_HOSTS ?? '127.0.0.1').split(','),
      port: Number(process.env.CASSANDRA_PORT ?? 9042),
      localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1',
      consistency: 'LOCAL_ONE',
    });
    await cassandra.connect();
    keyspace = `kc_${randomBytes(4).toString('hex')}`;
    await migrate(cassandra, { keyspaces: { sunbird: keyspace }, only: ['sunbird'] });
    directory = cassandraUserDirectory(cassandra, { keyspace, concurrency: 8 });
    fx = await createKeycloakRealmFixture({
      endpoint: { baseUrl, adminUser: KEYCLOAK_ADMIN_USER, adminPassword: KEYCLOAK_ADMIN_PASSWORD },
      pool,
      cassandra,
      keyspace,
      normalUsers: 6,
    });
    adminApi = createKeycloakAdminApi(apiOptions);
  });

  after(async () => {
    await fx?.dispose();
    await adminApi?.close();
    if (cassandra) {
      await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
      await cassandra.shutdown();
    }
    await pool?.end();
  });

  test('the fixture holds every kind of user data the deletion must remove', async () => {
    const normal = fx.byKind('normal');
    const counts = await countUserRows(pool, ids(normal), await userRefs(pool, ids(normal)));
    for (const [table, n] of Object.entries(counts)) assert.ok(n >= normal.length, `${table}: ${n} rows`);
  });

  test('candidates: only role-holding, unprotected users that exist in Cassandra', async () => {
    const sel = await selectCandidates(new PgKeycloakUsers(pool), directory, {
      realm: fx.realm,
      protectedRoles: ['admin'],
      limit: 20000,
    });
    assert.deepEqual(sorted(sel.candidates.map((c) => c.id)), ids(fx.byKind('normal')));
    assert.ok(sel.candidates.every((c) => c.realm === fx.realm));
    const reasons = Object.fromEntries(sel.excluded.map((e) => [e.id, e.reason]));
    for (const u of fx.byKind('not-in-cassandra')) assert.equal(reasons[u.id], 'not-in-cassandra');
    // Held through a parent group or a composite role: stricter than the original, still protected.
    for (const u of [...fx.byKind('admin-via-group'), ...fx.byKind('admin-via-composite')]) {
      assert.equal(reasons[u.id], 'protected-role', u.kind);
    }
    // Direct holders (realm or client role named admin) and role-less users never leave the query.
    const selectedIds = new Set([...sel.candidates.map((c) => c.id), ...sel.excluded.map((e) => e.id)]);
    for (const u of [
      ...fx.byKind('admin-direct'),
      ...fx.byKind('admin-client-role'),
      ...fx.byKind('no-roles'),
    ]) {
      assert.equal(selectedIds.has(u.id), false, u.kind);
    }
  });

  test('candidates: the limit, keyset paging, the id file and another protected role name', async () => {
    const all = ids(fx.byKind('normal'));
    const first = await selectCandidates(new PgKeycloakUsers(pool), directory, {
      realm: fx.realm,
      protectedRoles: ['admin'],
      limit: 3,
    });
    assert.equal(first.selected, 3);
    const rest = await selectCandidates(new PgKeycloakUsers(pool), directory, {
      realm: fx.realm,
      protectedRoles: ['admin'],
      limit: 20000,
      afterId: first.lastSelectedId!,
    });
    const seen = sorted([...first.candidates, ...rest.candidates].map((c) => c.id));
    assert.deepEqual(seen, all);

    const file = [
      all[0]!,
      fx.byKind('admin-direct')[0]!.id,
      fx.byKind('not-in-cassandra')[0]!.id,
      'no-such-user',
    ];
    const fromFile = await selectCandidates(new PgKeycloakUsers(pool), directory, {
      realm: fx.realm,
      protectedRoles: ['admin'],
      limit: 20000,
      ids: file,
    });
    assert.deepEqual(
      fromFile.candidates.map((c) => c.id),
      [all[0]],
    );
    const reasons = Object.fromEntries(fromFile.excluded.map((e) => [e.id, e.reason]));
    assert.equal(reasons[fx.byKind('admin-direct')[0]!.id], 'not-selected');
    assert.equal(reasons[fx.byKind('not-in-cassandra')[0]!.id], 'not-in-cassandra');
    assert.equal(reasons['no-such-user'], 'not-selected');

    // Protecting "public" too leaves no normal user selectable.
    const strict = await selectCandidates(new PgKeycloakUsers(pool), directory, {
      realm: fx.realm,
      protectedRoles: ['admin', 'public'],
      limit: 20000,
    });
    assert.deepEqual(strict.candidates, []);
  });

  test('dry run deletes nothing and needs no Keycloak login', async () => {
    const everyone = fx.users.map((u) => u.id);
    const before = await countUserRows(pool, everyone, await userRefs(pool, everyone));
    const r = await del(
      { realm: fx.realm, ids: everyone, mode: 'admin-api', dryRun: true },
      { adminApi: undefined },
    );
    assert.deepEqual(sorted(r.wouldDelete), ids(fx.byKind('normal')));
    assert.deepEqual(r.deleted, []);
    assert.deepEqual(sorted(r.skippedNotInCassandra), ids(fx.byKind('not-in-cassandra')));
    assert.deepEqual(sorted(r.skippedNoRoleMapping), ids(fx.byKind('no-roles')));
    assert.deepEqual(sorted(r.skippedProtected), ids(fx.users.filter((u) => u.kind.startsWith('admin'))));
    assert.deepEqual(await countUserRows(pool, everyone, await userRefs(pool, everyone)), before);
  });

  test('admin-api mode deletes exactly the eligible users and every row they had', async () => {
    const [a, b] = fx.byKind('normal');
    const protectedUser = fx.byKind('admin-via-group')[0]!;
    const outsider = fx.byKind('not-in-cassandra')[0]!;
    const refs = await userRefs(pool, [a!.id, b!.id]);
    assert.equal((await fx.login(a!)).status, 400, 'required action pending'); // logs in → user is cached
    const r = await del(
      {
        realm: fx.realm,
        ids: [a!.id, b!.id, protectedUser.id, outsider.id, 'ghost-id'],
        mode: 'admin-api',
        dryRun: false,
      },
      {},
    );
    assert.deepEqual(sorted(r.deleted), ids([a!, b!]));
    assert.deepEqual(r.skippedProtected, [protectedUser.id]);
    assert.deepEqual(r.skippedNotInCassandra, [outsider.id]);
    assert.deepEqual(r.notFound, ['ghost-id']);
    assert.deepEqual(r.failed, []);

    const counts = await countUserRows(pool, [a!.id, b!.id], refs);
    assert.deepEqual(counts, allZero(counts));
    assert.equal(await userExists(a!), 404);
    assert.equal(await userExists(protectedUser), 200);
    assert.equal(await userExists(outsider), 200);
    const login = await fx.login(a!);
    assert.equal(login.status, 401, login.body);
    assert.match(login.body, /invalid_grant/);
  });

  test('sql mode deletes exactly the eligible users, clears the cache, and they can no longer log in', async () => {
    const fresh = [await fx.addNormalUser(), await fx.addNormalUser()];
    // Clear the pending required action so the users can log in (and sit in Keycloak's user cache).
    for (const u of fresh) {
      await adminApi.adminRequest('PUT', `/admin/realms/${fx.realm}/users/${u.id}`, { requiredActions: [] });
      assert.equal((await fx.login(u)).status, 200);
    }
    const refs = await userRefs(pool, ids(fresh));
    const intact = fx.byKind('admin-direct')[0]!;
    const r = await del({ realm: fx.realm, ids: [...ids(fresh), intact.id], mode: 'sql', dryRun: false }, {});
    assert.deepEqual(sorted(r.deleted), ids(fresh));
    assert.deepEqual(r.skippedProtected, [intact.id]);
    assert.deepEqual(r.failed, []);
    assert.deepEqual(r.warnings, []);
    const counts = await countUserRows(pool, ids(fresh), refs);
    assert.deepEqual(counts, allZero(counts));
    for (const u of fresh) {
      assert.equal(await userExists(u), 404);
      const login = await fx.login(u);
      assert.equal(login.status, 401, login.body);
    }
    assert.equal(await userExists(intact), 200);
  });

  test('sql mode without an Admin API deletes and warns loudly that Keycloak must be restarted', async (t) => {
    const u = await fx.addNormalUser();
    await adminApi.adminRequest('PUT', `/admin/realms/${fx.realm}/users/${u.id}`, { requiredActions: [] });
    assert.equal((await fx.login(u)).status, 200); // now in Keycloak's user cache
    const r = await del(
      { realm: fx.realm, ids: [u.id], mode: 'sql', dryRun: false },
      { adminApi: undefined },
    );
    assert.deepEqual(r.deleted, [u.id]);
    assert.deepEqual(r.warnings, [RESTART_WARNING]);
    // Why the warning matters: while the user sits in Keycloak's cache, the deleted user can still log in
    // (seen: 200 right after the SQL delete; whether the entry is still cached varies, so not asserted).
    const stale = await fx.login(u);
    t.diagnostic(`login right after the SQL delete, before clearing the cache: HTTP ${stale.status}`);
    // After the realm's user cache is cleared, never.
    await adminApi.clearUserCache(fx.realm);
    assert.equal((await fx.login(u)).status, 401);
  });

  for (const mode of ['admin-api', 'sql'] as const) {
    test(`${mode}: protection is checked again at delete time (role gained, user gone from Cassandra)`, async () => {
      const gainsAdmin = await fx.addNormalUser();
      const joinsStaff = await fx.addNormalUser();
      const leavesCassandra = await fx.addNormalUser();
      const stays = await fx.addNormalUser();
      const sel = await selectCandidates(new PgKeycloakUsers(pool), directory, {
        realm: fx.realm,
        protectedRoles: ['admin'],
        limit: 20000,
        ids: ids([gainsAdmin, joinsStaff, leavesCassandra, stays]),
      });
      assert.equal(sel.candidates.length, 4);

      const adminRole = (await adminApi.adminRequest('GET', `/admin/realms/${fx.realm}/roles/admin`)).json();
      await adminApi.adminRequest(
        'POST',
        `/admin/realms/${fx.realm}/users/${gainsAdmin.id}/role-mappings/realm`,
        [adminRole],
      );
      const groups = (
        await adminApi.adminRequest('GET', `/admin/realms/${fx.realm}/groups?search=admins`)
      ).json<Array<{ subGroups: Array<{ id: string; name: string }> }>>();
      const adminsGroup = groups.flatMap((g) => g.subGroups).find((g) => g.name === 'admins')!;
      await adminApi.adminRequest(
        'PUT',
        `/admin/realms/${fx.realm}/users/${joinsStaff.id}/groups/${adminsGroup.id}`,
      );
      await cassandra.execute(`DELETE FROM ${keyspace}.user WHERE id = ?`, [leavesCassandra.id], {
        prepare: true,
      });

      const r = await del({ realm: fx.realm, ids: sel.candidates.map((c) => c.id), mode, dryRun: false }, {});
      assert.deepEqual(r.deleted, [stays.id]);
      assert.deepEqual(sorted(r.skippedProtected), ids([gainsAdmin, joinsStaff]));
      assert.deepEqual(r.skippedNotInCassandra, [leavesCassandra.id]);
      for (const u of [gainsAdmin, joinsStaff, leavesCassandra]) assert.equal(await userExists(u), 200);
      assert.equal(await userExists(stays), 404);
    });
  }

  test('sql mode: a PostgreSQL error in the middle of a block rolls the whole block back and reports it', async () => {
    const block = [await fx.addNormalUser(), await fx.addNormalUser(), await fx.addNormalUser()];
    const poisoned = block[1]!;
    const fn = `kc_test_refuse_${randomBytes(3).toString('hex')}`;
    // Fires while credential rows are deleted, i.e. after other tables of the block were already emptied.
    await pool.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.user_id = '${poisoned.id}' THEN RAISE EXCEPTION 'refusing to delete credential of %', OLD.user_id; END IF;
        RETURN OLD;
      END $$`);
    await pool.query(
      `CREATE TRIGGER ${fn} BEFORE DELETE ON credential FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
    );
    try {
      const refs = await userRefs(pool, ids(block));
      const before = await countUserRows(pool, ids(block), refs);
      const r = await del({ realm: fx.realm, ids: ids(block), mode: 'sql', dryRun: false }, {});
      assert.deepEqual(r.deleted, []);
      assert.deepEqual(sorted(r.failed.map((f) => f.id)), ids(block));
      assert.match(r.failed[0]!.error, /rolled back.*refusing to delete credential/);
      assert.deepEqual(await countUserRows(pool, ids(block), refs), before);
    } finally {
      await pool.query(`DROP TRIGGER IF EXISTS ${fn} ON credential`);
      await pool.query(`DROP FUNCTION IF EXISTS ${fn}()`);
    }
    // Without the fault the same block goes through.
    const again = await del({ realm: fx.realm, ids: ids(block), mode: 'sql', dryRun: false }, {});
    assert.deepEqual(sorted(again.deleted), ids(block));
  });

  test('a refused admin login stops the run and never shows the password', async () => {
    const password = `wrong-${randomBytes(6).toString('hex')}`;
    const api = createKeycloakAdminApi({ ...apiOptions, password });
    const u = await fx.addNormalUser();
    try {
      await assert.rejects(
        del({ realm: fx.realm, ids: [u.id], mode: 'admin-api', dryRun: false }, { adminApi: api }),
        (err: unknown) =>
          err instanceof DeleteBlockStopped &&
          err.cause instanceof KeycloakRefusedError &&
          /refused the admin login.*HTTP 401/.test(err.message) &&
          !err.message.includes(password),
      );
      assert.equal(await userExists(u), 200);
    } finally {
      await api.close();
    }
  });

  describe('admin-api mode through a proxy that misbehaves', () => {
    let proxy: Server;
    let proxyUrl: string;
    /** Status the proxy answers to the next `remaining` user DELETEs instead of forwarding them. */
    let answer: number | null = null;
    let remaining = Number.POSITIVE_INFINITY;
    let deleteCalls = 0;
    before(async () => {
      // Forwards everything to Keycloak, except DELETE of users, answered with `answer` when set.
      proxy = createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        if (req.method === 'DELETE' && req.url?.includes('/users/')) {
          deleteCalls++;
          if (answer !== null && remaining > 0) {
            remaining--;
            res.writeHead(answer, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: `proxy says ${answer}` }));
            return;
          }
        }
        const headers = { ...req.headers };
        delete headers.host;
        delete headers['content-length'];
        const up = await request(`${baseUrl}${req.url}`, {
          method: req.method as 'GET',
          headers,
          ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
        });
        const body = Buffer.from(await up.body.arrayBuffer());
        res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'text/plain') });
        res.end(body);
      });
      await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
      proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });
    after(async () => {
      await new Promise((ok) => proxy.close(ok));
    });

    test('Keycloak answering 500 is retried, then the ids are recorded as failed and kept', async () => {
      const block = [await fx.addNormalUser(), await fx.addNormalUser()];
      const api = createKeycloakAdminApi({ ...apiOptions, baseUrl: proxyUrl, maxRetries: 2 });
      answer = 500;
      deleteCalls = 0;
      try {
        const r = await del(
          { realm: fx.realm, ids: ids(block), mode: 'admin-api', dryRun: false },
          { adminApi: api },
        );
        assert.deepEqual(r.deleted, []);
        assert.deepEqual(sorted(r.failed.map((f) => f.id)), ids(block));
        assert.match(r.failed[0]!.error, /^HTTP 500 .*proxy says 500/);
        assert.equal(deleteCalls, block.length * 3, 'one call and two retries per id');
        for (const u of block) assert.equal(await userExists(u), 200);
      } finally {
        answer = null;
        await api.close();
      }
    });

    test('403 stops the run with a clear error', async () => {
      const block = [await fx.addNormalUser(), await fx.addNormalUser()];
      const api = createKeycloakAdminApi({ ...apiOptions, baseUrl: proxyUrl, concurrency: 1 });
      answer = 403;
      deleteCalls = 0;
      try {
        await assert.rejects(
          del({ realm: fx.realm, ids: ids(block), mode: 'admin-api', dryRun: false }, { adminApi: api }),
          (err: unknown) =>
            err instanceof DeleteBlockStopped && /403 Forbidden.*lacks the privilege/.test(err.message),
        );
        assert.equal(deleteCalls, 1, 'nothing more is attempted after a 403');
      } finally {
        answer = null;
        await api.close();
      }
    });

    test('401 fetches a new token each time and stops after more than 10 in a row', async () => {
      const block = [await fx.addNormalUser()];
      const api = createKeycloakAdminApi({ ...apiOptions, baseUrl: proxyUrl });
      const fresh = createKeycloakAdminApi({ ...apiOptions, baseUrl: proxyUrl });
      answer = 401;
      deleteCalls = 0;
      try {
        await assert.rejects(
          del({ realm: fx.realm, ids: ids(block), mode: 'admin-api', dryRun: false }, { adminApi: api }),
          /401 Unauthorized 11 times in a row/,
        );
        assert.equal(deleteCalls, 11);
        // A few 401s, then success: the token is renewed and the id deleted.
        remaining = 3;
        deleteCalls = 0;
        const r = await del(
          { realm: fx.realm, ids: ids(block), mode: 'admin-api', dryRun: false },
          { adminApi: fresh },
        );
        assert.deepEqual(r.deleted, ids(block));
        assert.equal(deleteCalls, 4);
      } finally {
        answer = null;
        remaining = Number.POSITIVE_INFINITY;
        await api.close();
        await fresh.close();
      }
    });
  });
});
