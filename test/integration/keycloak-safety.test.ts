/**
 * Safety of the Keycloak deletion job against the real local Keycloak 26, its PostgreSQL, Cassandra,
 * ElasticMQ and the Sync API stand-in, each in an isolated realm / keyspaces / queues of this file's own:
 * - an admin that can log in but lacks the privilege to delete users (403) stops the run, deletes nothing
 *   and leaves every id of the block recorded as failed ("not attempted"), through the delete stage and
 *   the delete Lambda (whose later records are not attempted at all);
 * - the CLI finds such an admin, or a wrong admin password, in its preflight: exit 3 before anything is
 *   synced or deleted;
 * - the fan-out Lambda started with a `delete-keycloak-users` payload enqueues exactly the candidates,
 *   every block carrying its realm; the blocks go through sync-block (dry run) and the delete Lambda
 *   (dry run: nothing deleted, every candidate `would-delete`);
 * - `sunbird-dataops report` shows the deletion stage of such a run.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
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
import { createKeycloakAdminApi, type KeycloakAdminApi } from '#shared/keycloak/admin-api.ts';
import { cassandraUserDirectory } from '#shared/keycloak/cassandra-directory.ts';
import { CassandraDeletionRecords } from '#shared/keycloak/cassandra-records.ts';
import { processDeleteBlock } from '#shared/keycloak/delete-stage.ts';
import { DeleteStageStopped } from '#shared/keycloak/errors.ts';
import { runDeletionRows } from '#shared/keycloak/lists.ts';
import type { DeletionRow } from '#shared/keycloak/ports.ts';
import { pgDeleteDeps } from '#shared/keycloak/runtime.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import { type Block, blockSchema } from '#shared/sync/messages.ts';
import { summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import {
  createKeycloakRealmFixture,
  type FixtureUser,
  type KeycloakRealmFixture,
} from '#test/helpers/keycloak-fixture.ts';
import { drain, isolatedQueue, SQS_ENDPOINT, testSqs } from '#test/helpers/sqs.ts';

const run = promisify(execFile);
const baseUrl = process.env.KEYCLOAK_TEST_URL ?? KEYCLOAK_URL;
const dbUrl = process.env.KEYCLOAK_TEST_DB_URL ?? KEYCLOAK_DB_URL;
const API_KEY = 'safety-test-key';
const FORBIDDEN = /403 Forbidden.*lacks the privilege/;
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();
const idsOf = (users: readonly FixtureUser[]): string[] => sorted(users.map((u) => u.id));
const context = { getRemainingTimeInMillis: () => 120_000, functionName: 'test' } as unknown as Context;

function sqsRecord(messageId: string, body: string, queue: string): SQSRecord {
  return {
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
    eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${queue}`,
    awsRegion: 'us-east-1',
  };
}

const sqsEvent = (bodies: readonly string[], queue: string): SQSEvent => ({
  Records: bodies.map((b, i) => sqsRecord(`${queue}-${i}`, b, queue)),
});

describe('Keycloak deletion safety: 403, the fan-out Lambda, report', { timeout: 120_000 }, () => {
  let pool: PgPool;
  let cassandra: CassandraClient;
  let ks: { sunbird: string; ops: string };
  let dropKeyspaces: () => Promise<void>;
  let fx: KeycloakRealmFixture;
  let standin: SyncApiStandin;
  let sqs: SQSClient;
  let syncQ: Awaited<ReturnType<typeof isolatedQueue>>;
  let deleteQ: Awaited<ReturnType<typeof isolatedQueue>>;
  let out: string;
  /** A master-realm admin that logs in through admin-cli but holds only view-users on the test realm. */
  const weak = { username: '', password: `pw-${randomBytes(8).toString('hex')}`, id: '' };
  let weakApi: KeycloakAdminApi;
  let ledger: CassandraRunLedger;
  /** The run started by the fan-out Lambda test, reported on by the report test. */
  let fanoutRunId = '';

  const countInDb = async (ids: readonly string[]): Promise<number> =>
    (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM user_entity WHERE id = ANY($1)', [ids]))
      .rows[0]!.n;
  /** Every id still there, asked of Keycloak with the real admin (not its database). */
  const assertAllPresent = async (ids: readonly string[]): Promise<void> => {
    for (const id of ids) {
      const res = await fx.api.adminRequest('GET', `/admin/realms/${fx.realm}/users/${id}`);
      assert.equal(res.status, 200, `user ${id} is still in Keycloak`);
    }
    assert.equal(await countInDb(ids), ids.length, 'every user row is still in user_entity');
  };
  const ledgerRows = async (runId: string): Promise<DeletionRow[]> => {
    const rows: DeletionRow[] = [];
    for await (const r of runDeletionRows(ledger, new CassandraDeletionRecords(cassandra, ks.ops), runId))
      rows.push(r);
    return rows;
  };
  const block = (runId: string, seq: number, ids: string[], dryRun = false): Block => ({
    type: 'block',
    run: {
      runId,
      job: 'delete-keycloak-users',
      objectType: 'user',
      dryRun,
      verify: false,
      blockSize: 100,
      sleepMs: 0,
      next: 'delete',
    },
    rangeNo: 0,
    seq,
    ids,
    context: { realm: fx.realm },
  });
  const createIdRun = async (runId: string, blocks: Block[]): Promise<void> => {
    await ledger.createRun(blocks[0]!.run, { source: 'test', ranges: 1 });
    await ledger.setRanges(runId, [
      {
        rangeNo: 0,
        start: 'ids',
        end: 'ids',
        ids: blocks.reduce((n, b) => n + b.ids.length, 0),
        blocks: blocks.length,
        done: true,
        hops: 0,
      },
    ]);
  };
  /** The child's environment: this file's keyspaces; no queue (the CLI runs the chain in-process). */
  const cliEnv = (): NodeJS.ProcessEnv => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_QUEUE_URL$|^SQS_ENDPOINT$/.test(k))),
    DATAOPS_KEYSPACE: ks.ops,
    // These runs are inspected in the ops keyspace: the CLI's Cassandra ledger (not its embedded default).
    LEDGER: 'cassandra',
    SUNBIRD_KEYSPACE: ks.sunbird,
    CASSANDRA_CONSISTENCY: 'LOCAL_ONE',
    LOG_LEVEL: 'WARN',
  });
  const cli = async (
    args: string[],
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(process.execPath, ['bin/sunbird-dataops.js', ...args], {
        cwd: process.cwd(),
        env: { ...cliEnv(), ...env },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  before(async () => {
    if (!process.env.KEYCLOAK_TEST_URL) await ensureServices(['keycloak', 'cassandra', 'elasticmq']);
    pool = createPgPool({ url: dbUrl, max: 4 });
    const iso = await isolatedKeyspaces('kcsafe', ['sunbird', 'ops']);
    cassandra = iso.client;
    ks = { sunbird: iso.ks.sunbird, ops: iso.ks.ops };
    dropKeyspaces = iso.drop;
    ledger = new CassandraRunLedger(cassandra, ks.ops);
    standin = await startSyncApiStandin({ port: 0, apiKey: API_KEY });
    sqs = testSqs();
    syncQ = await isolatedQueue(sqs, 'kcsafe-sync');
    deleteQ = await isolatedQueue(sqs, 'kcsafe-delete');
    out = await mkdtemp(join(tmpdir(), 'kcsafe-'));
    fx = await createKeycloakRealmFixture({
      endpoint: { baseUrl, adminUser: KEYCLOAK_ADMIN_USER, adminPassword: KEYCLOAK_ADMIN_PASSWORD },
      pool,
      cassandra,
      keyspace: ks.sunbird,
      normalUsers: 6,
    });

    // The weak admin: a master user with only `view-users` of the test realm's management client.
    weak.username = `weak-admin-${fx.realm}`;
    const created = await fx.api.adminRequest('POST', '/admin/realms/master/users', {
      username: weak.username,
      enabled: true,
      email: `${weak.username}@example.test`,
      emailVerified: true,
      firstName: 'Weak',
      lastName: 'Admin',
      credentials: [{ type: 'password', value: weak.password, temporary: false }],
    });
    assert.equal(created.status, 201, created.text);
    const location = String(created.headers.location ?? '');
    weak.id = location.slice(location.lastIndexOf('/') + 1);
    const mgmt = (
      await fx.api.adminRequest('GET', `/admin/realms/master/clients?clientId=${fx.realm}-realm`)
    ).json<Array<{ id: string }>>()[0];
    assert.ok(mgmt, `management client ${fx.realm}-realm in master`);
    const viewUsers = await fx.api.adminRequest(
      'GET',
      `/admin/realms/master/clients/${mgmt.id}/roles/view-users`,
    );
    assert.equal(viewUsers.status, 200, viewUsers.text);
    const granted = await fx.api.adminRequest(
      'POST',
      `/admin/realms/master/users/${weak.id}/role-mappings/clients/${mgmt.id}`,
      [viewUsers.json()],
    );
    assert.equal(granted.status, 204, granted.text);
    weakApi = createKeycloakAdminApi({
      baseUrl,
      adminRealm: 'master',
      clientId: 'admin-cli',
      username: weak.username,
      password: weak.password,
      concurrency: 4,
      retryBaseMs: 10,
    });
    // It can log in and read the realm's users: only the privilege to delete is missing.
    const list = await weakApi.adminRequest('GET', `/admin/realms/${fx.realm}/users?max=1`);
    assert.equal(list.status, 200, `the weak admin can view users: ${list.text}`);

    // The Lambda handlers read their configuration once per process (runtimeConfig), so all of it is set
    // here, before any handler runs. The Admin API credentials are the weak admin's.
    Object.assign(process.env, {
      SQS_ENDPOINT,
      SYNC_QUEUE_URL: syncQ.url,
      SCAN_QUEUE_URL: syncQ.url,
      DELETE_QUEUE_URL: deleteQ.url,
      SUNBIRD_KEYSPACE: ks.sunbird,
      DATAOPS_KEYSPACE: ks.ops,
      CASSANDRA_CONSISTENCY: 'LOCAL_ONE',
      SYNC_API_ENDPOINT: `${standin.url}/v1/data/sync`,
      SYNC_API_KEY: API_KEY,
      SYNC_API_MAX_RETRIES: '0',
      KEYCLOAK_DB_URL: dbUrl,
      // Another realm than the payload's: the payload's realm must win.
      KEYCLOAK_REALM: 'master',
      KEYCLOAK_BASE_URL: baseUrl,
      KEYCLOAK_ADMIN_USER: weak.username,
      KEYCLOAK_ADMIN_PASSWORD: weak.password,
      KEYCLOAK_DELETE_MODE: 'admin-api',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      LOG_LEVEL: 'SILENT',
    });
  });

  after(async () => {
    await (await import('#functions/delete-keycloak-users.ts')).close();
    await (await import('#functions/sync-block.ts')).close();
    await (await import('#functions/fanout.ts')).close();
    await weakApi?.close();
    if (weak.id)
      await fx?.api.adminRequest('DELETE', `/admin/realms/master/users/${weak.id}`).catch(() => {});
    await fx?.dispose();
    await standin?.close();
    await syncQ?.drop();
    await deleteQ?.drop();
    sqs?.destroy();
    await dropKeyspaces?.();
    await pool?.end();
    if (out) await rm(out, { recursive: true, force: true });
  });

  test('403: the delete stage stops, deletes nothing and records every id of the block as not attempted', async () => {
    const candidates = idsOf(fx.byKind('normal'));
    const runId = `kcdel-safety-stage-${randomBytes(3).toString('hex')}`;
    const b = block(runId, 0, candidates);
    await createIdRun(runId, [b]);
    const err = await processDeleteBlock(b, {
      ...pgDeleteDeps({
        pool,
        directory: cassandraUserDirectory(cassandra, { keyspace: ks.sunbird, concurrency: 8 }),
        mode: 'admin-api',
        adminApi: weakApi,
        protectedRoles: ['admin'],
      }),
      ledger,
      records: new CassandraDeletionRecords(cassandra, ks.ops),
    }).then(
      () => assert.fail('a 403 must stop the stage'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeleteStageStopped, String(err));
    assert.match(err.message, FORBIDDEN);
    assert.match(err.message, /manage-users/, 'the message names the missing privilege');
    assert.match(err.message, new RegExp(`DELETE /admin/realms/${fx.realm}/users/`));

    await assertAllPresent(candidates);
    for (const rows of [err.rows, await ledgerRows(runId)]) {
      assert.deepEqual(sorted(rows.map((r) => r.id)), candidates);
      for (const r of rows) {
        assert.equal(r.outcome, 'failed', r.id);
        assert.match(r.error ?? '', /^not attempted: run stopped: .*403 Forbidden/, r.id);
      }
    }
    const summary = await summarise(ledger, runId, 'delete');
    assert.equal(summary?.blocks.failed, 1);
    assert.equal(summary?.idsFailed, candidates.length);
  });

  /** A real (not dry) CLI deletion of the normal users into `dir`, with the admin's credentials. */
  const realDeletion = (dir: string, user: string, password: string) =>
    cli(
      [
        'delete-keycloak-users',
        '--keycloak-db-url',
        dbUrl,
        '--keycloak-realm',
        fx.realm,
        '--keycloak-url',
        baseUrl,
        '--keyspace',
        ks.sunbird,
        '--ops-keyspace',
        ks.ops,
        '--ledger',
        'cassandra',
        '--sync-api-endpoint',
        `${standin.url}/v1/data/sync`,
        '--block-size',
        '2',
        '--sleep-time',
        '1',
        '--context_param',
        'dry_run=false',
        '--out',
        dir,
      ],
      // Credentials through the environment, as operators pass secrets.
      { KEYCLOAK_ADMIN_USER: user, KEYCLOAK_ADMIN_PASSWORD: password },
    );

  test('an admin without manage-users is refused by the preflight: exit 3, one line naming the privilege, no Sync API call, nothing deleted', async () => {
    standin.reset();
    const candidates = idsOf(fx.byKind('normal'));
    const dir = await mkdtemp(join(out, 'cli-'));
    const r = await realDeletion(dir, weak.username, weak.password);
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
    assert.match(
      last,
      /^sunbird-dataops: the Keycloak admin may not delete users of realm "kc_\w+": .*manage-users/,
    );
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(weak.password), 'the password is never printed');
    assert.equal(standin.requests().length, 0, 'not even the Sync API preflight: Keycloak is checked first');
    assert.doesNotMatch(r.stdout, /run kcdel-/, 'no run was started');
    await assertAllPresent(candidates);
  });

  test('a wrong admin password is refused by the preflight: exit 3, one line, no Sync API call, nothing deleted', async () => {
    standin.reset();
    const candidates = idsOf(fx.byKind('normal'));
    const dir = await mkdtemp(join(out, 'cli-'));
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const r = await realDeletion(dir, KEYCLOAK_ADMIN_USER, wrong);
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
    assert.match(last, /^sunbird-dataops: Keycloak refused the admin login \(password grant .*\): HTTP 401/);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(wrong), 'the password is never printed');
    assert.equal(standin.requests().length, 0, 'no Sync API call');
    await assertAllPresent(candidates);
  });

  test('403 through the delete Lambda: both records of the batch fail, the second without an attempt', async () => {
    const candidates = idsOf(fx.byKind('normal'));
    const runId = `kcdel-safety-lambda-${randomBytes(3).toString('hex')}`;
    const blocks = [block(runId, 0, candidates.slice(0, 3)), block(runId, 1, candidates.slice(3))];
    await createIdRun(runId, blocks);
    const { handler } = await import('#functions/delete-keycloak-users.ts');
    const res = await handler(
      sqsEvent(
        blocks.map((b) => JSON.stringify(b)),
        'delete',
      ),
      context,
    );
    assert.deepEqual(res.batchItemFailures, [{ itemIdentifier: 'delete-0' }, { itemIdentifier: 'delete-1' }]);
    await assertAllPresent(candidates);
    const rows = await ledgerRows(runId);
    // The first block was tried and stopped: each of its ids is recorded as not attempted.
    assert.deepEqual(sorted(rows.map((r) => r.id)), candidates.slice(0, 3));
    for (const r of rows) {
      assert.equal(r.seq, 0);
      assert.equal(r.outcome, 'failed');
      assert.match(r.error ?? '', /^not attempted: run stopped: .*403 Forbidden/);
    }
    // The second was never started: no deletion row, no delete-stage block row; SQS delivers it again.
    const deleteBlocks = [];
    for await (const b of ledger.blocks(runId, 'delete')) deleteBlocks.push(b);
    assert.deepEqual(
      deleteBlocks.map((b) => [b.seq, b.status]),
      [[0, 'failed']],
    );
  });

  test('fan-out Lambda starts a deletion run: exactly the candidates, in blocks that carry the realm; dry run through sync-block and the delete Lambda', async () => {
    standin.reset();
    const candidates = idsOf(fx.byKind('normal'));
    const fanout = await import('#functions/fanout.ts');
    const started = (await fanout.handler(
      {
        job: 'delete-keycloak-users',
        objectType: 'user',
        realm: fx.realm,
        dryRun: true,
        blockSize: 2,
      },
      context,
    )) as { runId: string; ids: number; blocks: number; tasks: number };
    assert.match(started.runId, /^kcdel-user-/);
    assert.equal(started.ids, candidates.length);
    assert.equal(started.blocks, 3);
    assert.equal(started.tasks, 0);
    fanoutRunId = started.runId;

    const syncBodies = await drain(sqs, syncQ.url);
    const blocks = syncBodies.map((b) => blockSchema.parse(JSON.parse(b)));
    assert.equal(blocks.length, 3);
    // Admins (direct, via group, composite, client role), no-role users and users missing from Cassandra
    // are left out; every block is for this run, a dry run, and names the realm.
    assert.deepEqual(sorted(blocks.flatMap((b) => b.ids)), candidates);
    for (const b of blocks) {
      assert.equal(b.context?.realm, fx.realm);
      assert.equal(b.run.next, 'delete');
      assert.equal(b.run.runId, started.runId);
      assert.equal(b.run.job, 'delete-keycloak-users');
      assert.equal(b.run.dryRun, true);
      assert.ok(b.ids.length <= 2);
    }
    const run = await ledger.getRun(started.runId);
    assert.equal(run?.params.realm, fx.realm);
    assert.equal(run?.params.excluded, 4, 'two protected through group/composite, two not in Cassandra');

    // Sync stage (dry run: no Sync API call), which forwards each block to the delete queue.
    const syncBlock = await import('#functions/sync-block.ts');
    const synced = await syncBlock.handler(sqsEvent(syncBodies, 'sync'), context);
    assert.deepEqual(synced.batchItemFailures, []);
    assert.equal(standin.requests().length, 0, 'a dry run makes no Sync API call');
    const deleteBodies = await drain(sqs, deleteQ.url);
    assert.deepEqual(sorted(deleteBodies), sorted(syncBodies), 'the same blocks, realm included');

    // Delete stage (dry run: no Keycloak login, nothing deleted).
    const del = await import('#functions/delete-keycloak-users.ts');
    const deleted = await del.handler(sqsEvent(deleteBodies, 'delete'), context);
    assert.deepEqual(deleted.batchItemFailures, []);
    await assertAllPresent(fx.users.map((u) => u.id));
    const rows = await ledgerRows(started.runId);
    assert.deepEqual(sorted(rows.map((r) => r.id)), candidates);
    for (const r of rows) {
      assert.equal(r.outcome, 'would-delete', r.id);
      assert.equal(r.realm, fx.realm);
    }
    const summary = await summarise(ledger, started.runId, 'delete');
    assert.equal(summary?.blocks['dry-run'], 3);
  });

  test('report shows the deletion stage of the fan-out run', async () => {
    assert.ok(fanoutRunId, 'the fan-out test ran first');
    const r = await cli(['report', fanoutRunId]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`run ${fanoutRunId} — delete-keycloak-users user \\(dry run\\)`));
    const line = r.stdout.split('\n').find((l) => l.includes('deletion stage:'));
    assert.equal(line?.trim(), `deletion stage: would-delete ${fx.byKind('normal').length}`);
  });
});
