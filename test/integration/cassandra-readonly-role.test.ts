/**
 * Running against a Cassandra that authenticates and authorises, as production clusters do: the
 * `cassandra-auth` profile of the services script (PasswordAuthenticator + CassandraAuthorizer, CQL on
 * 127.0.0.1:9142), with a role of this file's own that has only SELECT on its `<keyspace>.user`.
 * - the id source scans the table as that role; a table it may not read is refused with one line (exit 3);
 * - a wrong password is refused with one line (exit 3);
 * - `sunbird-dataops sync` as that role completes with the embedded run ledger (no ops keyspace, no DDL,
 *   no write to Cassandra at all).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { seed } from '#scripts/seed/seed.ts';
import {
  CASSANDRA_AUTH_PORT,
  CASSANDRA_AUTH_SUPERUSER,
  createReadOnlyRole,
} from '#scripts/services/cassandra.ts';
import { ensureServices } from '#scripts/services.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import { type CassandraClient, createCassandraClient, executeIdempotent } from '#shared/clients/cassandra.ts';
import { CredentialsRefusedError, EXIT, exitCodeOf } from '#shared/core/errors.ts';
import { migrate } from '#shared/schema.ts';
import { CassandraIdSource } from '#shared/sync/cassandra-ids.ts';
import { acceptedIds, lastLine, runCli } from '#test/helpers/cli.ts';

const KEY = 'readonly-role-key';
const USERS = 300;
const tag = `ro_${randomBytes(3).toString('hex')}`;
const keyspace = `${tag}_sb`;
const reader = { username: `reader_${tag}`, password: `pw-${randomBytes(6).toString('hex')}` };

let admin: CassandraClient;
let standin: SyncApiStandin;
let tableIds: string[];

const asRole = (role: { username: string; password: string }) =>
  createCassandraClient({
    hosts: ['127.0.0.1'],
    port: CASSANDRA_AUTH_PORT,
    localDataCenter: 'datacenter1',
    consistency: 'LOCAL_ONE',
    username: role.username,
    password: role.password,
  });

before(
  async () => {
    await ensureServices(['cassandra-auth'], { log: (l) => process.stderr.write(`[services] ${l}\n`) });
    admin = asRole(CASSANDRA_AUTH_SUPERUSER);
    await migrate(admin, {
      keyspaces: { sunbird: keyspace, courses: `${tag}_co`, ops: `${tag}_ops` },
      only: ['sunbird'],
    });
    await seed(admin, {
      users: USERS,
      orgs: 5,
      courses: 0,
      courseUsers: 0,
      contentsPerCourse: 0,
      seed: 7,
      keyspace,
      coursesKeyspace: 'unused',
      // A second node on a two-core machine: gently, or writes time out while it warms up.
      concurrency: 8,
    });
    tableIds = (await admin.execute(`SELECT id FROM ${keyspace}.user`, [], { fetchSize: 10_000 })).rows.map(
      (r) => r.id as string,
    );
    await createReadOnlyRole(admin, reader, `${keyspace}.user`);
    standin = await startSyncApiStandin({ port: 0, apiKey: KEY });
  },
  { timeout: 300_000 },
);

after(async () => {
  await standin?.close();
  if (admin) {
    await admin.execute(`DROP ROLE IF EXISTS ${reader.username}`).catch(() => undefined);
    await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    await admin.shutdown();
  }
});

const sorted = (xs: Iterable<string>) => [...xs].sort();

const cli = (args: string[], env: Record<string, string>) =>
  runCli(args, { CASSANDRA_PORT: String(CASSANDRA_AUTH_PORT), SUNBIRD_KEYSPACE: keyspace, ...env });

describe('a Cassandra role with only SELECT on <keyspace>.user', () => {
  test('the id source scans the table as that role; any other table is refused in one line (exit 3)', async () => {
    const client = asRole(reader);
    try {
      const source = new CassandraIdSource(client);
      const ids: string[] = [];
      for (const range of await source.tokenRanges()) {
        let state: string | null = null;
        do {
          const page = await source.page(keyspace, 'user', range, state, 100);
          ids.push(...page.ids);
          state = page.next;
        } while (state);
      }
      assert.deepEqual(sorted(ids), sorted(tableIds));
      const err = await executeIdempotent(client, `SELECT id FROM ${keyspace}.organisation LIMIT 1`).then(
        () => assert.fail('the role may not read organisation'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CredentialsRefusedError, String(err));
      assert.equal(exitCodeOf(err), EXIT.unavailable);
      assert.match(
        err.message,
        new RegExp(`refused the request as "${reader.username}": .*SELECT permission`),
      );
      assert.doesNotMatch(err.message, /\n/);
    } finally {
      await client.shutdown();
    }
  });

  test('a wrong password: exit 3 with one line naming Cassandra and the role, never the password', async () => {
    const wrong = `wrong-${randomBytes(4).toString('hex')}`;
    const r = await cli(['sync', '--table', 'user', '--out', await mkdtemp(join(tmpdir(), 'ro-'))], {
      CASSANDRA_USERNAME: reader.username,
      CASSANDRA_PASSWORD: wrong,
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      lastLine(r),
      new RegExp(
        `^sunbird-dataops: Cassandra at 127\\.0\\.0\\.1:${CASSANDRA_AUTH_PORT} refused the credentials as "${reader.username}"`,
      ),
    );
    assert.ok(!`${r.stdout}${r.stderr}`.includes(wrong));
  });

  test('sunbird-dataops sync as that role completes with the embedded ledger: every user synced', async () => {
    const out = await mkdtemp(join(tmpdir(), 'ro-sync-'));
    const state = await mkdtemp(join(tmpdir(), 'ro-state-'));
    try {
      const r = await cli(
        [
          'sync',
          '--table',
          'user',
          '--sync-api-endpoint',
          `${standin.url}/v1/data/sync`,
          '--dry-run',
          'false',
          '--sleep-time',
          '1',
          '--ledger',
          'embedded',
          '--state-dir',
          state,
          '--out',
          out,
        ],
        { CASSANDRA_USERNAME: reader.username, CASSANDRA_PASSWORD: reader.password, SYNC_API_KEY: KEY },
      );
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.deepEqual(sorted(acceptedIds(standin)), sorted(tableIds));
    } finally {
      await rm(out, { recursive: true, force: true });
      await rm(state, { recursive: true, force: true });
    }
  });
});
