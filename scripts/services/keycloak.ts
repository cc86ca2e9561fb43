/**
 * Keycloak (Quarkus distribution) for the deletion job's tests: http 127.0.0.1:8180, management (health)
 * 127.0.0.1:9180 — 8080/9000 are left free (9000 is the Sync API stand-in's). `start-dev` on its own
 * PostgreSQL database `keycloak_test`, whose schema Keycloak creates itself on first start.
 *
 * On demand only: plain `up` does not start it (see `onDemand`); `up keycloak` does.
 * The dist zip comes from Maven Central (org.keycloak:keycloak-quarkus-dist:<v>:zip) into the cache and
 * is unpacked into `.services/data/keycloak/` (start-dev writes its build and data next to the binaries).
 * First start ≈ 50 s here (≈ 18 s Quarkus augmentation + ≈ 30 s schema creation); later starts ≈ 15–25 s.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { request } from 'undici';
import {
  execTool,
  HOST,
  httpGet,
  inMavenQueue,
  launchDetached,
  mavenDependencyGoal,
  requireJava,
  requirePortOpen,
} from './common.ts';
import type { ServiceContext, ServiceDefinition } from './types.ts';
import { VERSIONS } from './versions.ts';

export const KEYCLOAK_HTTP_PORT = 8180;
export const KEYCLOAK_MANAGEMENT_PORT = 9180;
export const KEYCLOAK_URL = `http://${HOST}:${KEYCLOAK_HTTP_PORT}`;
export const KEYCLOAK_DB = 'keycloak_test';
/** The bootstrap admin of the local test instance (master realm). Local only, never a real secret. */
export const KEYCLOAK_ADMIN_USER = 'admin';
export const KEYCLOAK_ADMIN_PASSWORD = 'admin-secret-pw';
export const KEYCLOAK_DB_URL = `postgres://postgres@${HOST}:5432/${KEYCLOAK_DB}`;

const version = VERSIONS.keycloak;

function zipPath(ctx: ServiceContext): string {
  return join(ctx.cacheRoot, `keycloak-${version}`, `keycloak-quarkus-dist-${version}.zip`);
}

function distDir(ctx: ServiceContext): string {
  return join(ctx.dataDir, `keycloak-${version}`);
}

async function fetchZip(ctx: ServiceContext): Promise<string> {
  const zip = zipPath(ctx);
  if (existsSync(zip)) return zip;
  ctx.log(`fetching keycloak ${version} from Maven Central (~160 MB)…`);
  const dir = join(ctx.cacheRoot, `keycloak-${version}`);
  await mkdir(dir, { recursive: true });
  const partial = join(dir, 'download.partial');
  await rm(partial, { recursive: true, force: true });
  await inMavenQueue(() =>
    execTool(
      'mvn',
      mavenDependencyGoal(
        'copy',
        `-Dartifact=org.keycloak:keycloak-quarkus-dist:${version}:zip`,
        `-DoutputDirectory=${partial}`,
      ),
      `fetching keycloak ${version}`,
    ),
  );
  await rename(join(partial, `keycloak-quarkus-dist-${version}.zip`), zip);
  await rm(partial, { recursive: true, force: true });
  return zip;
}

async function unpack(ctx: ServiceContext): Promise<string> {
  const dist = distDir(ctx);
  if (existsSync(join(dist, 'bin', 'kc.sh'))) return dist;
  const zip = await fetchZip(ctx);
  await mkdir(ctx.dataDir, { recursive: true });
  const tmp = join(ctx.dataDir, 'unpack.partial');
  await rm(tmp, { recursive: true, force: true });
  await execTool('unzip', ['-q', '-o', zip, '-d', tmp], `unpacking ${zip} (is unzip installed?)`);
  await rename(join(tmp, `keycloak-${version}`), dist);
  await rm(tmp, { recursive: true, force: true });
  return dist;
}

async function ensureDatabase(): Promise<void> {
  const client = new pg.Client({ host: HOST, port: 5432, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [KEYCLOAK_DB]);
    if (!rowCount) await client.query(`CREATE DATABASE ${KEYCLOAK_DB}`);
  } finally {
    await client.end();
  }
}

/** An admin token from the master realm (proves login and the database behind it work). */
export async function keycloakAdminToken(baseUrl = KEYCLOAK_URL): Promise<string> {
  const res = await request(`${baseUrl}/realms/master/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: 'admin-cli',
      username: KEYCLOAK_ADMIN_USER,
      password: KEYCLOAK_ADMIN_PASSWORD,
    }).toString(),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`admin login → HTTP ${res.statusCode}`);
  return (JSON.parse(text) as { access_token: string }).access_token;
}

export const keycloakService: ServiceDefinition = {
  name: 'keycloak',
  version,
  ports: [
    { port: KEYCLOAK_HTTP_PORT, role: 'http' },
    { port: KEYCLOAK_MANAGEMENT_PORT, role: 'management' },
  ],
  kind: 'managed',
  onDemand: true,
  // Its database lives in the machine's PostgreSQL: the manager makes sure that answers first.
  dependsOn: ['postgres'],
  startTimeoutMs: 240_000,
  stopTimeoutMs: 30_000,

  async fetch(ctx) {
    await fetchZip(ctx);
  },

  async start(ctx) {
    await requireJava();
    await ensureDatabase();
    const dist = await unpack(ctx);
    return launchDetached(
      ctx,
      join(dist, 'bin', 'kc.sh'),
      [
        'start-dev',
        '--db=postgres',
        `--db-url=jdbc:postgresql://${HOST}:5432/${KEYCLOAK_DB}`,
        '--db-username=postgres',
        `--http-host=${HOST}`,
        `--http-port=${KEYCLOAK_HTTP_PORT}`,
        `--http-management-port=${KEYCLOAK_MANAGEMENT_PORT}`,
        '--health-enabled=true',
        '--cache=local',
      ],
      {
        ...process.env,
        // Only used when the database is empty (first start); afterwards the admin already exists.
        KC_BOOTSTRAP_ADMIN_USERNAME: KEYCLOAK_ADMIN_USER,
        KC_BOOTSTRAP_ADMIN_PASSWORD: KEYCLOAK_ADMIN_PASSWORD,
        // Keycloak otherwise sizes its heap as a share of the machine's memory.
        JAVA_OPTS_KC_HEAP: '-Xms128m -Xmx768m',
      },
    );
  },

  async health() {
    const { status, text } = await httpGet(KEYCLOAK_MANAGEMENT_PORT, '/health/ready');
    if (status !== 200 || !text.includes('"UP"')) throw new Error(`/health/ready → ${status}`);
    await requirePortOpen(KEYCLOAK_HTTP_PORT);
  },

  async verify() {
    await keycloakAdminToken();
  },
};
