/**
 * `npm run bench -- keycloak [--users 2000] [--rounds 2] [--concurrency 8] [--block 100]`
 *
 * Keycloak users deleted per second, same run, fresh users for each way, rounds interleaved, medians:
 * - serial: one Admin API DELETE at a time, no re-check (the original job's loop);
 * - admin-api: our delete stage (delete-time re-check, then `concurrency` DELETEs in flight) per block;
 * - sql: our delete stage in SQL mode (one transaction per block, re-check under row locks, cache flush).
 * Users are created with the Admin API's partial import (and inserted into Cassandra `user`, which the
 * re-check reads). The CPU that Keycloak's JVM and PostgreSQL spend per deletion (from /proc) bounds what
 * any client can reach on this machine's cores; that ceiling is printed beside the ratio. Needs
 * `npm run services -- up keycloak`.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { median, printResult, processCpuMs } from '#bench/_report.ts';
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
    users: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    block: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '2' },
  },
});
const users = Number(values.users);
const concurrency = Number(values.concurrency);
const blockSize = Number(values.block);
const rounds = Number(values.rounds);
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
const directory = cassandraUserDirectory(cassandra, { keyspace, concurrency });

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
  /** CPU per deleted user, ms: Keycloak's JVM, PostgreSQL (all its processes), this process. */
  cpu: { keycloak: number; postgres: number; client: number };
}

const keycloakCpu = () => processCpuMs((comm, cmd) => comm === 'java' && cmd.includes('kc.config'));
const postgresCpu = () => processCpuMs((comm) => comm === 'postgres');
const clientCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function measure(way: string, fn: (ids: string[]) => Promise<void>): Promise<Row> {
  const t0 = Date.now();
  const ids = await createUsers(users, way);
  process.stderr.write(`${way}: created ${ids.length} users in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  const cpu0 = { keycloak: keycloakCpu(), postgres: postgresCpu(), client: clientCpu() };
  const start = process.hrtime.bigint();
  await fn(ids);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const per = (now: number, before: number) => (now - before) / ids.length;
  const row = {
    way,
    users: ids.length,
    seconds,
    perSecond: ids.length / seconds,
    left: await remaining(ids),
    cpu: {
      keycloak: per(keycloakCpu(), cpu0.keycloak),
      postgres: per(postgresCpu(), cpu0.postgres),
      client: per(clientCpu(), cpu0.client),
    },
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

const serial = async (ids: string[]) => {
  for (const id of ids) {
    const out = await serialApi.deleteUser(realm, id);
    if (out.status === 'failed') throw new Error(out.error);
  }
};

/** Medians of a way's rounds. */
function medianRow(rs: Row[]): Row {
  const m = (f: (r: Row) => number) => median(rs.map(f));
  return {
    way: rs[0]!.way,
    users: rs.reduce((n, r) => n + r.users, 0),
    seconds: m((r) => r.seconds),
    perSecond: m((r) => r.perSecond),
    left: rs.reduce((n, r) => n + r.left, 0),
    cpu: {
      keycloak: m((r) => r.cpu.keycloak),
      postgres: m((r) => r.cpu.postgres),
      client: m((r) => r.cpu.client),
    },
  };
}

function report(rows: Row[]): void {
  const [base, adminApi, sql] = rows as [Row, Row, Row];
  console.log(
    `\nKeycloak deletion, ${users} users per way and round, ${rounds} round(s), blocks of ${blockSize}; medians\n`,
  );
  console.log(
    '| way | users | seconds | users/s | vs serial | CPU per user: Keycloak / PostgreSQL / client | left |',
  );
  console.log('|---|---:|---:|---:|---:|---|---:|');
  for (const r of rows) {
    const cpu = `${r.cpu.keycloak.toFixed(2)} / ${r.cpu.postgres.toFixed(2)} / ${r.cpu.client.toFixed(2)} ms`;
    console.log(
      `| ${r.way} | ${r.users} | ${r.seconds.toFixed(1)} | ${r.perSecond.toFixed(1)} | ${(r.perSecond / base.perSecond).toFixed(1)}× | ${cpu} | ${r.left} |`,
    );
  }
  // Keycloak and PostgreSQL must spend their CPU on every deletion whatever the client does: on this
  // machine's cores, no client can delete faster than cores / (that CPU per user).
  const cores = availableParallelism();
  const serverMs = adminApi.cpu.keycloak + adminApi.cpu.postgres;
  const ceiling = serverMs > 0 ? (cores * 1000) / serverMs / base.perSecond : null;
  if (ceiling !== null) {
    console.log(
      `\nKeycloak + PostgreSQL spend ${serverMs.toFixed(2)} ms of CPU per Admin API deletion: on ${cores} cores at most ${((cores * 1000) / serverMs).toFixed(0)} users/s, ${ceiling.toFixed(1)}× the serial loop, whatever the client does.`,
    );
  }
  const ratio = adminApi.perSecond / base.perSecond;
  printResult({
    bench: 'keycloak',
    rows: [
      {
        measure: `admin-api deletions (concurrency ${concurrency}, re-check included) vs the serial loop`,
        value: `${adminApi.perSecond.toFixed(0)} vs ${base.perSecond.toFixed(0)} users/s`,
        ratio,
        target: '≥ 4×',
        met: ratio >= 4,
      },
      {
        measure: `ceiling: ${cores} cores / Keycloak + PostgreSQL CPU per deletion (${serverMs.toFixed(2)} ms), vs serial`,
        value: ceiling === null ? 'no /proc' : `${((cores * 1000) / serverMs).toFixed(0)} users/s`,
        ratio: ceiling,
        target: '—',
        met: null,
      },
      {
        measure: 'sql deletions vs the serial loop',
        value: `${sql.perSecond.toFixed(0)} users/s`,
        ratio: sql.perSecond / base.perSecond,
        target: '—',
        met: null,
      },
    ],
  });
}

try {
  await migrate(cassandra, { keyspaces: { sunbird: keyspace }, only: ['sunbird'] });
  await ok(api, 'POST', '/admin/realms', { realm, enabled: true });
  await ok(api, 'POST', `/admin/realms/${realm}/roles`, { name: 'public' });
  const ways: Array<[string, (ids: string[]) => Promise<void>]> = [
    ['serial (original)', serial],
    [`admin-api (concurrency ${concurrency})`, ours('admin-api')],
    ['sql', ours('sql')],
  ];
  const byWay: Row[][] = ways.map(() => []);
  for (let round = 0; round < rounds; round++) {
    // Interleaved, the order reversed every other round, so a drift in the machine's load hits all ways.
    const order = round % 2 ? [...ways.keys()].reverse() : [...ways.keys()];
    for (const i of order) byWay[i]!.push(await measure(ways[i]![0], ways[i]![1]));
  }
  report(byWay.map(medianRow));
} finally {
  await api.adminRequest('DELETE', `/admin/realms/${realm}`).catch(() => undefined);
  await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
  await Promise.all([api.close(), serialApi.close(), pool.end(), cassandra.shutdown()]);
}
