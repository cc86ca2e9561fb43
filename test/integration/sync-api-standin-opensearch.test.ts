/**
 * The stand-in indexing for real, as userorg-service does on a sync request, against the real local
 * Cassandra and OpenSearch (`npm run services -- up opensearch`; this file starts it when needed). It
 * works in a keyspace and indexes of its own and removes them afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { OPENSEARCH_URL } from '#scripts/services/opensearch.ts';
import { ensureServices } from '#scripts/services.ts';
import {
  DEFAULT_INDEX_NAMES,
  type IndexNames,
  type SyncApiStandin,
  startSyncApiStandin,
} from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import type { Keyspaces } from '#shared/schema.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { opensearch } from '#test/helpers/opensearch.ts';

const USERS = 250;
const ORGS = 30;
const SEED = 7;
const prefix = `standin-test-${randomBytes(4).toString('hex')}`;
const names: IndexNames = { user: `${prefix}-user`, organisation: `${prefix}-org` };

const os = opensearch;

/** Every document of an index (after a refresh), by _id. */
async function documents(index: string): Promise<Map<string, Record<string, unknown>>> {
  await os('POST', `/${index}/_refresh`);
  const r = await os('POST', `/${index}/_search`, { size: 10_000, query: { match_all: {} } });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  // biome-ignore lint/suspicious/noExplicitAny: search hits
  return new Map(r.json.hits.hits.map((h: any) => [h._id, h._source]));
}

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function blocks<T>(xs: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));
}

interface Fixture {
  cassandra: CassandraClient;
  ks: Keyspaces;
  drop: () => Promise<void>;
  standin: SyncApiStandin;
  client: SyncApiClient;
}

/** A keyspace with seeded users and organisations, and a stand-in indexing into this file's indexes. */
async function setUp(problems: string[]): Promise<Fixture> {
  await ensureServices(['cassandra', 'opensearch'], { log: () => undefined });
  const { client: cassandra, ks, drop } = await isolatedKeyspaces('standin_os', ['sunbird']);
  await seed(cassandra, {
    users: USERS,
    orgs: ORGS,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: SEED,
    keyspace: ks.sunbird,
    coursesKeyspace: ks.courses,
  });
  const standin = await startSyncApiStandin({
    index: { cassandra, keyspace: ks.sunbird, opensearch: { url: OPENSEARCH_URL }, indexNames: names },
    onIndexProblem: (m) => problems.push(m),
  });
  const client = new SyncApiClient({ endpoint: `${standin.url}/v1/data/sync`, maxRetries: 0 });
  return { cassandra, ks, drop, standin, client };
}

describe('Sync API stand-in: indexing into OpenSearch from Cassandra', () => {
  let fx: Fixture;
  const problems: string[] = [];
  const userIds = seededUserIds(SEED, USERS);

  before(async () => {
    fx = await setUp(problems);
  });

  after(async () => {
    await fx?.client.close();
    await fx?.standin.close();
    await os('DELETE', `/${prefix}-*`).catch(() => undefined);
    await fx?.drop();
  });

  test("userorg-service's index names are the defaults", () => {
    assert.deepEqual(DEFAULT_INDEX_NAMES, { user: 'user_alias', organisation: 'org_alias' });
  });

  test('syncing N users in the default mode leaves exactly those N documents, with their columns', async () => {
    for (const block of blocks(userIds, 100)) {
      const r = await fx.client.sync('user', block);
      assert.equal(r.status, 200, r.responseBody);
      assert.deepEqual(JSON.parse(r.responseBody).result, { response: 'SUCCESS' });
    }
    await fx.standin.idle();
    assert.deepEqual(problems, []);

    const docs = await documents(names.user);
    assert.equal(docs.size, USERS);
    assert.deepEqual([...docs.keys()].sort(), [...userIds].sort());
    const rows = await fx.cassandra.execute(`SELECT * FROM ${fx.ks.sunbird}."user" WHERE id IN ?`, [
      userIds.slice(0, 50),
    ]);
    for (const row of rows.rows) {
      const doc = docs.get(row.get('id'))!;
      assert.equal(doc.id, row.get('id'));
      assert.equal(doc.identifier, row.get('id'));
      for (const column of [
        'firstname',
        'email',
        'channel',
        'rootorgid',
        'status',
        'isdeleted',
        'createddate',
      ]) {
        assert.deepEqual(doc[column], row.get(column), column);
      }
      assert.equal(doc.updateddate, row.get('updateddate'));
      assert.match(String(doc.updateddate), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}\+0000$/);
      assert.deepEqual(doc.roles, row.get('roles'));
      assert.equal(doc.lastlogintime, row.get('lastlogintime').toNumber());
      // Every column is in the document, the empty ones as null.
      assert.ok('tncacceptedon' in doc && doc.tncacceptedon === null);
    }
  });

  test('a timestamp column is indexed as an ISO string; a re-sync replaces the document', async () => {
    const id = userIds[0]!;
    const accepted = new Date('2024-03-01T10:20:30.456Z');
    await fx.cassandra.execute(
      `UPDATE ${fx.ks.sunbird}."user" SET tncacceptedon = ?, firstname = ?, updateddate = ? WHERE id = ?`,
      [accepted, 'Renamed', '2024-03-01 10:20:30:456+0000', id],
    );
    const r = await fx.client.sync('user', [id], { verify: true });
    assert.equal(r.status, 200, r.responseBody);
    const got = await os('GET', `/${names.user}/_doc/${id}`);
    assert.equal(got.json._source.tncacceptedon, '2024-03-01T10:20:30.456Z');
    assert.equal(got.json._source.firstname, 'Renamed');
    assert.equal(got.json._source.updateddate, '2024-03-01 10:20:30:456+0000');
  });

  test('verified mode indexes first and reports esSyncResponse from what the index holds', async () => {
    // A mapping the one extra organisation's document cannot satisfy: OpenSearch refuses it, so the
    // index does not hold it although Cassandra does — and the answer must say so.
    const created = await os('PUT', `/${names.organisation}`, {
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: { properties: { hashtagid: { type: 'long' } } },
    });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    const refusedId = `org-refused-${prefix}`;
    await fx.cassandra.execute(
      `INSERT INTO ${fx.ks.sunbird}.organisation (id, orgname, hashtagid) VALUES (?, ?, ?)`,
      [refusedId, 'Refused', 'not-a-number'],
    );
    const orgRows = await fx.cassandra.execute(`SELECT id FROM ${fx.ks.sunbird}.organisation`);
    const seededOrgs = orgRows.rows.map((r) => String(r.get('id'))).filter((id) => id !== refusedId);
    assert.equal(seededOrgs.length, ORGS);

    const asked = [...seededOrgs, refusedId, 'org-ghost'];
    const r = await fx.client.sync('organisation', asked, { verify: true });
    assert.equal(r.status, 200, r.responseBody);
    assert.deepEqual([...(r.confirmedIds ?? [])].sort(), [...seededOrgs].sort());
    assert.deepEqual(r.unconfirmedIds?.sort(), [refusedId, 'org-ghost'].sort());
    assert.equal((await documents(names.organisation)).size, ORGS);
    assert.equal(problems.length, 1);
    assert.match(
      problems[0]!,
      /OpenSearch refused 1 of 32 organisation documents \(first: org-refused-.*mapper_parsing_exception/,
    );
    problems.length = 0;
  });
});

describe('Sync API stand-in: OpenSearch unreachable', () => {
  let standin: SyncApiStandin;
  let client: SyncApiClient;
  let cassandra: CassandraClient;
  let drop: () => Promise<void>;
  let ks: Keyspaces;
  const problems: string[] = [];
  let downUrl = '';

  before(async () => {
    downUrl = `http://127.0.0.1:${await closedPort()}`;
    ({ client: cassandra, ks, drop } = await isolatedKeyspaces('standin_os_down', ['sunbird']));
    await cassandra.execute(`INSERT INTO ${ks.sunbird}."user" (id, firstname) VALUES ('u-1', 'One')`);
    standin = await startSyncApiStandin({
      index: { cassandra, keyspace: ks.sunbird, opensearch: { url: downUrl, connectTimeoutMs: 2000 } },
      onIndexProblem: (m) => problems.push(m),
    });
    client = new SyncApiClient({ endpoint: `${standin.url}/v1/data/sync`, maxRetries: 0 });
  });

  after(async () => {
    await client?.close();
    await standin?.close();
    await drop?.();
  });

  test("verified mode answers 500 with the service's server-error envelope, naming the cause once", async () => {
    const r = await client.sync('user', ['u-1'], { verify: true });
    assert.equal(r.status, 500);
    const e = JSON.parse(r.responseBody);
    assert.equal(e.responseCode, 'SERVER_ERROR');
    assert.equal(e.params.status, 'FAILED');
    assert.equal(e.params.err, 'INTERNAL_ERROR');
    assert.deepEqual(e.result, {});
    assert.equal(problems.length, 1);
    assert.deepEqual(problems, [
      `verified user block: OpenSearch at ${downUrl} is unreachable (ECONNREFUSED)`,
    ]);
  });

  test('the default mode has answered 200 already (as the service does) and reports the failure', async () => {
    problems.length = 0;
    const r = await client.sync('user', ['u-1']);
    assert.equal(r.status, 200);
    await standin.idle();
    assert.deepEqual(problems, [
      `indexing 1 user ids failed after the 200: OpenSearch at ${downUrl} is unreachable (ECONNREFUSED)`,
    ]);
  });
});
