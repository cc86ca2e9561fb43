/**
 * The Keycloak deletion job end to end: candidates → blocks → Sync API (the stand-in) → delete stage,
 * against the real local Keycloak 26, its PostgreSQL and Cassandra, through the CLI and the Lambda handler.
 * Each run works in a realm, keyspaces and a stand-in of its own.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Context, SQSEvent } from 'aws-lambda';
import {
  KEYCLOAK_ADMIN_PASSWORD,
  KEYCLOAK_ADMIN_USER,
  KEYCLOAK_DB_URL,
  KEYCLOAK_URL,
} from '#scripts/services/keycloak.ts';
import { ensureServices } from '#scripts/services.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { createPgPool, type PgPool } from '#shared/clients/postgres.ts';
import { CassandraDeletionRecords } from '#shared/keycloak/cassandra-records.ts';
import { LIST_FILES, runDeletionRows } from '#shared/keycloak/lists.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import type { Block } from '#shared/sync/messages.ts';
import { summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import {
  createKeycloakRealmFixture,
  type FixtureUser,
  type KeycloakRealmFixture,
} from '#test/helpers/keycloak-fixture.ts';

const run = promisify(execFile);
const baseUrl = process.env.KEYCLOAK_TEST_URL ?? KEYCLOAK_URL;
const dbUrl = process.env.KEYCLOAK_TEST_DB_URL ?? KEYCLOAK_DB_URL;
const API_KEY = 'chain-test-key';
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();
const ids = (users: readonly FixtureUser[]): string[] => sorted(users.map((u) => u.id));

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  runId: string;
  lists: Record<keyof typeof LIST_FILES, string[]>;
}

describe('Keycloak deletion chain: sync first, then delete', { timeout: 300_000 }, () => {
  let pool: PgPool;
  let cassandra: CassandraClient;
  let ks: { sunbird: string; ops: string };
  let dropKeyspaces: () => Promise<void>;
  let fx: KeycloakRealmFixture;
  let standin: SyncApiStandin;
  let out: string;

  const exists = async (id: string): Promise<boolean> =>
    (await pool.query('SELECT 1 FROM user_entity WHERE id = $1', [id])).rowCount === 1;

  const cli = async (args: string[], env: Record<string, string> = {}): Promise<CliResult> => {
    const dir = await mkdtemp(join(out, 'run-'));
    const base = [
      'bin/sunbird-dataops.js',
      'delete-keycloak-users',
      '--keycloak-db-url',
      dbUrl,
      '--keycloak-realm',
      fx.realm,
      '--keyspace',
      ks.sunbird,
      '--ops-keyspace',
      ks.ops,
      '--ledger',
      'cassandra',
      '--cassandra-consistency',
      'LOCAL_ONE',
      '--sync-api-endpoint',
      `${standin.url}/v1/data/sync`,
      '--block-size',
      '2',
      '--sleep-time',
      '1',
      '--max-retries',
      '0',
      '--out',
      dir,
    ];
    let code = 0;
    let stdout: string;
    let stderr: string;
    try {
      ({ stdout, stderr } = await run(process.execPath, [...base, ...args], {
        cwd: process.cwd(),
        env: { ...process.env, SYNC_API_KEY: API_KEY, LOG_LEVEL: 'WARN', ...env },
      }));
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      ({ code, stdout, stderr } = e);
    }
    const runId = /run (kcdel-\S+)/.exec(stdout)?.[1] ?? '';
    const lists = {} as CliResult['lists'];
    const runDir = join(dir, runId);
    const present = runId ? await readdir(runDir).catch(() => []) : [];
    for (const [key, name] of Object.entries(LIST_FILES) as Array<[keyof typeof LIST_FILES, string]>) {
      lists[key] = present.includes(name)
        ? (await readFile(join(runDir, name), 'utf8')).split('\n').filter(Boolean)
        : [];
    }
    return { code, stdout, stderr, runId, lists };
  };

  const adminEnv = {
    KEYCLOAK_BASE_URL: baseUrl,
    KEYCLOAK_ADMIN_USER: KEYCLOAK_ADMIN_USER,
    KEYCLOAK_ADMIN_PASSWORD: KEYCLOAK_ADMIN_PASSWORD,
  };

  before(async () => {
    if (!process.env.KEYCLOAK_TEST_URL) await ensureServices(['keycloak', 'cassandra']);
    pool = createPgPool({ url: dbUrl, max: 4 });
    const iso = await isolatedKeyspaces('kcchain', ['sunbird', 'ops']);
    cassandra = iso.client;
    ks = { sunbird: iso.ks.sunbird, ops: iso.ks.ops };
    dropKeyspaces = iso.drop;
    standin = await startSyncApiStandin({ port: 0, apiKey: API_KEY });
    out = await mkdtemp(join(tmpdir(), 'kcchain-'));
    fx = await createKeycloakRealmFixture({
      endpoint: { baseUrl, adminUser: KEYCLOAK_ADMIN_USER, adminPassword: KEYCLOAK_ADMIN_PASSWORD },
      pool,
      cassandra,
      keyspace: ks.sunbird,
      normalUsers: 6,
    });
  });

  after(async () => {
    await (await import('#functions/delete-keycloak-users.ts')).close();
    await fx?.dispose();
    await standin?.close();
    await dropKeyspaces?.();
    await pool?.end();
    if (out) await rm(out, { recursive: true, force: true });
  });

  test('a dry run deletes nothing, needs no Keycloak login and writes the would-delete list', async () => {
    const r = await cli([]); // no Admin API configured at all, dry_run defaults to true
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sorted(r.lists.wouldDelete), ids(fx.byKind('normal')));
    assert.deepEqual(r.lists.deleted, []);
    assert.deepEqual(r.lists.failed, []);
    // Held through a group or a composite role: left out at selection and listed as protected.
    assert.deepEqual(
      sorted(r.lists.skippedProtected),
      ids([...fx.byKind('admin-via-group'), ...fx.byKind('admin-via-composite')]),
    );
    for (const u of fx.users) assert.equal(await exists(u.id), true, u.kind);
    assert.equal(standin.requests().length, 0, 'a dry run makes no Sync API call');
  });

  test('admin-api: a block whose sync failed is not deleted, the others are; the lists are right', async () => {
    standin.reset();
    // The preflight passes, then the first block's only attempt fails (max retries 0).
    standin.setFaults({ script: [{ passThrough: true }, 500] });
    const normal = ids(fx.byKind('normal'));
    const idFile = join(out, 'ids.txt');
    const protectedUser = fx.byKind('admin-direct')[0]!;
    await writeFile(idFile, [...normal, protectedUser.id, 'no-such-user'].join('\n'));
    const r = await cli(
      ['--context_param', 'dry_run=false', '--context_param', `sunbird_sync_id_file=${idFile}`],
      adminEnv,
    );
    assert.equal(r.code, 1, 'some ids failed');
    const failedBlock = normal.slice(0, 2); // candidates are cut into blocks in id order
    const failed = r.lists.failed.map((l) => l.split(',')[0]!);
    assert.deepEqual(sorted(failed), failedBlock);
    assert.ok(
      r.lists.failed.every((l) => /sync failed: HTTP 500/.test(l)),
      r.lists.failed.join('\n'),
    );
    assert.deepEqual(sorted(r.lists.deleted), normal.slice(2));
    assert.deepEqual(r.lists.notFound, ['no-such-user']);
    assert.deepEqual(r.lists.skippedProtected, [protectedUser.id]);
    for (const id of failedBlock) assert.equal(await exists(id), true, 'not synced → not deleted');
    for (const id of normal.slice(2)) assert.equal(await exists(id), false);
    assert.equal(await exists(protectedUser.id), true);

    // The ledger has every per-id outcome and a summary of the delete stage.
    const ledger = new CassandraRunLedger(cassandra, ks.ops);
    const rows = [];
    for await (const row of runDeletionRows(ledger, new CassandraDeletionRecords(cassandra, ks.ops), r.runId))
      rows.push(row);
    assert.deepEqual(sorted(rows.filter((x) => x.outcome === 'deleted').map((x) => x.id)), normal.slice(2));
    const syncSummary = await summarise(ledger, r.runId, 'sync');
    assert.equal(syncSummary?.blocks.failed, 1);
    const deleteSummary = await summarise(ledger, r.runId, 'delete');
    assert.equal(deleteSummary?.blocksRecorded, 2);
    assert.equal(deleteSummary?.idsFailed, 0);
  });

  test('sql mode without an Admin API deletes, writes the lists and warns that Keycloak must restart', async () => {
    standin.reset();
    for (let i = 0; i < 3; i++) await fx.addNormalUser();
    const remaining: string[] = [];
    for (const u of fx.byKind('normal')) if (await exists(u.id)) remaining.push(u.id);
    assert.equal(remaining.length, 5, 'the three new users and the block whose sync failed before');
    const r = await cli(['--context_param', 'dry_run=false', '--keycloak-delete-mode', 'sql']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sorted(r.lists.deleted), sorted(remaining));
    for (const id of remaining) assert.equal(await exists(id), false);
    assert.deepEqual(r.lists.failed, []);
    assert.deepEqual(r.lists.notFound, []);
    assert.deepEqual(
      sorted(r.lists.skippedProtected),
      ids([...fx.byKind('admin-via-group'), ...fx.byKind('admin-via-composite')]),
    );
    assert.match(r.stderr, /KEYCLOAK MUST BE RESTARTED/);
  });

  test('the Lambda handler reports only the malformed record of a batch as failed', async () => {
    const user = await fx.addNormalUser();
    Object.assign(process.env, {
      ...adminEnv,
      KEYCLOAK_DB_URL: dbUrl,
      SUNBIRD_KEYSPACE: ks.sunbird,
      DATAOPS_KEYSPACE: ks.ops,
      CASSANDRA_CONSISTENCY: 'LOCAL_ONE',
      KEYCLOAK_DELETE_MODE: 'admin-api',
      LOG_LEVEL: 'SILENT',
    });
    const { handler } = await import('#functions/delete-keycloak-users.ts');
    const ledger = new CassandraRunLedger(cassandra, ks.ops);
    const block: Block = {
      type: 'block',
      run: {
        runId: `kcdel-lambda-${Date.now()}`,
        job: 'delete-keycloak-users',
        objectType: 'user',
        dryRun: false,
        verify: false,
        blockSize: 100,
        sleepMs: 0,
        next: 'delete',
      },
      rangeNo: 0,
      seq: 0,
      ids: [user.id],
      context: { realm: fx.realm },
    };
    await ledger.createRun(block.run, { source: 'test', ranges: 1 });
    await ledger.setRanges(block.run.runId, [
      {
        rangeNo: 0,
        start: 'ids',
        end: 'ids',
        ids: 1,
        blocks: 1,
        done: true,
        hops: 0,
      },
    ]);
    const record = (messageId: string, body: string) => ({
      messageId,
      receiptHandle: `rh-${messageId}`,
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: 'test',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:delete',
      awsRegion: 'us-east-1',
    });
    const event: SQSEvent = {
      Records: [record('bad-1', '{"type":"block","ids":'), record('good-1', JSON.stringify(block))],
    };
    const context = { getRemainingTimeInMillis: () => 60_000 } as unknown as Context;
    const res = await handler(event, context);
    assert.deepEqual(res.batchItemFailures, [{ itemIdentifier: 'bad-1' }]);
    assert.equal(await exists(user.id), false);
    const rows = [];
    for await (const row of runDeletionRows(
      ledger,
      new CassandraDeletionRecords(cassandra, ks.ops),
      block.run.runId,
    ))
      rows.push(row);
    assert.deepEqual(
      rows.map((r) => [r.id, r.outcome]),
      [[user.id, 'deleted']],
    );
  });
});
