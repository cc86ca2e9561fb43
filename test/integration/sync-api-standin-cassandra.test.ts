/**
 * The stand-in's Cassandra-backed verified mode, against the real local Cassandra
 * (`npm run services -- up`; CASSANDRA_HOSTS / CASSANDRA_PORT / CASSANDRA_LOCAL_DC override 127.0.0.1:9042).
 * It works in a keyspace of its own and drops it afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  cassandraExists,
  type SyncApiStandin,
  startSyncApiStandin,
} from '#scripts/sync-api-standin/index.ts';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';

const keyspace = `standin_test_${randomBytes(4).toString('hex')}`;

describe('Sync API stand-in: verified mode backed by Cassandra', () => {
  let cassandra: CassandraClient;
  let standin: SyncApiStandin;
  let client: SyncApiClient;
  const users = Array.from({ length: 250 }, (_, i) => `user-${i}`);

  before(async () => {
    cassandra = createCassandraClient({
      hosts: (process.env.CASSANDRA_HOSTS ?? '127.0.0.1').split(','),
      port: Number(process.env.CASSANDRA_PORT ?? 9042),
      localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1',
      consistency: 'LOCAL_ONE',
    });
    await cassandra.connect();
    await cassandra.execute(
      `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
    );
    await cassandra.execute(`CREATE TABLE ${keyspace}."user" (id text PRIMARY KEY)`);
    await cassandra.execute(`CREATE TABLE ${keyspace}.organisation (id text PRIMARY KEY)`);
    await Promise.all(
      users.map((id) => cassandra.execute(`INSERT INTO ${keyspace}."user" (id) VALUES (?)`, [id])),
    );
    await cassandra.execute(`INSERT INTO ${keyspace}.organisation (id) VALUES (?)`, ['org-1']);

    standin = await startSyncApiStandin({
      exists: cassandraExists({ client: cassandra, keyspace, chunkSize: 100 }),
    });
    client = new SyncApiClient({ endpoint: `${standin.url}/v1/data/sync`, maxRetries: 0 });
  });

  after(async () => {
    await client?.close();
    await standin?.close();
    if (cassandra) {
      await cassandra.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      await cassandra.shutdown();
    }
  });

  test('only ids present in the table are confirmed, across several IN chunks', async () => {
    const asked = [...users.slice(0, 230), 'ghost-1', 'ghost-2'];
    const r = await client.sync('user', asked, { verify: true });
    assert.equal(r.ok, true, r.responseBody);
    assert.equal(r.confirmedIds?.size, 230);
    assert.deepEqual(r.unconfirmedIds, ['ghost-1', 'ghost-2']);
  });

  test('organisations are looked up in their own table', async () => {
    const r = await client.sync('organisation', ['org-1', 'user-1'], { verify: true });
    assert.equal(r.ok, true, r.responseBody);
    assert.deepEqual([...(r.confirmedIds ?? [])], ['org-1']);
    assert.deepEqual(r.unconfirmedIds, ['user-1']);
  });

  test('a keyspace name that is not a plain identifier is refused', () => {
    assert.throws(() => cassandraExists({ client: cassandra, keyspace: 'x; DROP KEYSPACE y' }));
  });
});
