/**
 * `node bench/keycloak.ts [--users 5000] [--concurrency 8] [--block 100]`
 *
 * Keycloak users deleted per second, same run, fresh users for each way:
 * - serial: one Admin API DELETE at a time, no re-check (the original job's loop);
 * - admin-api: our delete stage (delete-time re-check, then `concurrency` DELETEs in flight) per block;
 * - sql: our delete stage in SQL mode (one transaction per block, re-check under row locks, cache flush).
 * Users are created with the Admin API's partial import (and inserted into Cassandra `user`, which the
 * re-check reads). Needs `npm run services -- up keycloak`.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  KEYCLOAK_ADMIN_PASSWORD,
  KEYCLOAK_ADMIN_USER,
  KEYCLOAK_DB_URL,
  KEYCLOAK_URL,
} from '#scripts/services/keycloak.ts';
import { createCassandraClient } from '#shared/clients/cassandra.ts';
import { createPgPool } from '#shared/clients/postgres.ts';
import { mapLimit } from '#shared/core/concurrency.ts';
import { createKeycloakAdminApi, type KeycloakAdminApi } from '#shared/keycloak/admin-api.ts';
import { cassandraUserDirectory } from '#shared/keycloak/cassandra-directory.ts';
import { deleteBlock } from '#shared/keycloak/delete-block.ts';
import type { DeleteMode } from '#shared/keycloak/ports.ts';
import { pgDeleteDeps } from '#shared/keycloak/runtime.ts';
import { migrate } from '#shared/schema.ts';
import { blocksOf } from '#shared/sync/run.ts';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '8' },
    block: { type: 'string', default: '100' },
  },
});
const users = Number(values.users);
const concurrency = Number(values.concurrency);
const blockSize = Number(values.block);
const baseUrl = process.env.KEYCLOAK_TEST_URL ?? KEYCLOAK_URL;

const apiOpts = (c: number) => ({
  baseUrl,
  adminRealm: 'master',
  clientId: 'admin-cli',
  username: KEYCLOAK_ADMIN_USER,
  password: KEYCLOAK_ADMIN_PASSWORD,
  concurrency: c,
});
const api = createKeycloakAdminApi(apiOpts(concurrency));
const serialApi = createKeycloakAdminApi(apiOpts(1));
const pool = createPgPool({ url: process.env.KEYCLOAK_TEST_DB_URL ?? KEYCLOAK_DB_URL, max: 8 });
const cassandra = createCassandraClient({
  hosts: ['127.0.0.1'],
  port: 9042,
  localDataCenter: 'datacenter1',
  consistency: 'LOCAL_ONE',
});
const tag = randomBytes(3).toString('hex');
const realm = `bench_kc_${tag}`;
const keyspace = `bench_kc_${tag}`;
const directory = cassandraUserDirectory(cassandra, { keyspace, concurrency: 64 });

async function ok(a: KeycloakAdminApi, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) {
  const res = await a.adminRequest(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${res.text.slice(0, 300)}`);
  return res;
}

/** `n` users with the role `public`, created by partial import, present in Cassandra too. */
async function createUsers(n: number, label: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
      username: `${label}-${i + j}`,
      enabled: true,
      realmRoles: ['public'],
    }));
    const res = await ok(api, 'POST', `/admin/realms/${realm}/partialImport`, {
      ifResourceExists: 'FAIL',
      users: batch,
    });
    const body = res.json<{ results: Array<{ resourceType: string; id: string }> }>();
    ids.push(...body.results.filter((r) => r.resourceType === 'USER').map((r) => r.id));
  }
  await mapLimit(ids, 64, (id) =>
    cassandra.execute(`INSERT INTO ${keyspace}.user (id, status) VALUES (?, 1)`, [id], { prepare: true }),
  );
  return ids;
}

async function remaining(ids: string[]): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM user_entity WHERE id = ANY($1)',
    [ids],
  );
  return rows[0]!.n;
}

interface Row {
  way: string;
  users: number;
  seconds: number;
  perSecond: number;
  left: number;
}

async function measure(way: string, fn: (ids: string[]) => Promise<void>): Promise<Row> {
  const t0 = Date.now();
  const ids = await createUsers(users, way);
  process.stderr.write(`${way}: created ${ids.length} users in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  const start = process.hrtime.bigint();
  await fn(ids);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const row = {
    way,
    users: ids.length,
    seconds,
    perSecond: ids.length / seconds,
    left: await remaining(ids),
  };
  process.stderr.write(`${way}: ${row.perSecond.toFixed(1)} users/s\n`);
  return row;
}

const ours = (mode: DeleteMode) => async (ids: string[]) => {
  for (const block of blocksOf(ids, blockSize)) {
    const r = await deleteBlock(
      { realm, ids: block, dryRun: false },
      pgDeleteDeps({ pool, directory, mode, adminApi: api, protectedRoles: ['admin'] }),
    );
    if (r.failed.length) throw new Error(`${mode}: ${r.failed.length} failed: ${r.failed[0]!.error}`);
  }
};

try {
  await migrate(cassandra, { keyspaces: { sunbird: keyspace }, only: ['sunbird'] });
  await ok(api, 'POST', '/admin/realms', { realm, enabled: true });
  await ok(api, 'POST', `/admin/realms/${realm}/roles`, { name: 'public' });
  const rows: Row[] = [];
  rows.push(
    await measure('serial (original)', async (ids) => {
      for (const id of ids) {
        const out = await serialApi.deleteUser(realm, id);
        if (out.status === 'failed') throw new Error(out.error);
      }
    }),
  );
  rows.push(await measure(`admin-api (concurrency ${concurrency})`, ours('admin-api')));
  rows.push(await measure('sql', ours('sql')));
  const base = rows[0]!.perSecond;
  console.log(`\nKeycloak deletion, ${users} users per way, blocks of ${blockSize}\n`);
  console.log('| way | users | seconds | users/s | vs serial | left in Keycloak |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.way} | ${r.users} | ${r.seconds.toFixed(1)} | ${r.perSecond.toFixed(1)} | ${(r.perSecond / base).toFixed(1)}× | ${r.left} |`,
    );
  }
} finally {
  await api.adminRequest('DELETE', `/admin/realms/${realm}`).catch(() => undefined);
  await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
  await Promise.all([api.close(), serialApi.close(), pool.end(), cassandra.shutdown()]);
}
