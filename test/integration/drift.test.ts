/**
 * Drift repair against the real local Cassandra and OpenSearch (`npm run services -- up opensearch`;
 * started here when needed), with the Sync API stand-in indexing for real: `sunbird-dataops diff` and
 * `sync --only-missing` as operators run them (child processes), the fan-out function's payload, and the
 * connection's edges — a wrong index, credentials and a private CA through a TLS proxy, and the engine
 * going away mid-diff. Keyspaces and indices are this file's own and are removed afterwards.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Context } from 'aws-lambda';
import { toSqsEvent } from '#scripts/offline/sqs-bridge.ts';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { OPENSEARCH_URL } from '#scripts/services/opensearch.ts';
import { ensureServices } from '#scripts/services.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import { loadFlatConfig } from '#shared/config.ts';
import { createFanout } from '#shared/fanout/runtime.ts';
import { createLogger } from '#shared/logger.ts';
import { blockSchema } from '#shared/sync/messages.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { blockCalls, runCli } from '#test/helpers/cli.ts';
import { startHttpProxy } from '#test/helpers/http-proxy.ts';
import { opensearch } from '#test/helpers/opensearch.ts';
import { drain, isolatedQueue, SQS_ENDPOINT, testSqs } from '#test/helpers/sqs.ts';

const exec = promisify(execFile);
const KEY = 'drift-test-key-abcdef';
const USERS = 400;
const ORGS = 12;
const SEED = 23;
const prefix = `drift-test-${randomBytes(4).toString('hex')}`;
const names = { user: `${prefix}-user`, organisation: `${prefix}-org` };

// Ids as Sunbird never makes them but a table may hold: unicode, and 180 characters long.
const UNICODE = ['ünïcødé-用户-1', 'ελληνικά-χρήστης-2', 'emoji-🙂-3'];
const LONG = ['a', 'b'].map((c) => `${c.repeat(170)}-180-chars`);
const ORPHANS = ['ghost-1', 'ghost-ünï-2', `g${'h'.repeat(179)}`];

let cassandra: CassandraClient;
let ks: { sunbird: string; ops: string };
let drop: () => Promise<void>;
let standin: SyncApiStandin;
let allUsers: string[];
const removed: string[] = [];
/** Documents deleted by the --queue-url test's dry run, still missing afterwards. */
const gone: string[] = [];
const tmpDirs: string[] = [];

const os = opensearch;
const doc = (index: string, id: string) => `/${index}/_doc/${encodeURIComponent(id)}?refresh=true`;

/** The CLI on this file's keyspaces, Sync API key and search engine (the caller's env on top). */
const cli = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, {
    SUNBIRD_KEYSPACE: ks.sunbird,
    DATAOPS_KEYSPACE: ks.ops,
    SYNC_API_KEY: KEY,
    ES_URL: OPENSEARCH_URL,
    ...env,
  });

async function outDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'drift-out-'));
  tmpDirs.push(dir);
  return dir;
}

async function idFile(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

/** `diff` of the user table against this file's index, with its JSON line parsed. */
async function diffUsers(extra: string[] = []) {
  const out = await outDir();
  const r = await cli([
    'diff',
    '--table',
    'user',
    '--es-index',
    names.user,
    '--out',
    out,
    '--json',
    ...extra,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  return { r, out, json, file: (kind: string) => idFile(join(out, `${kind}.txt`)) };
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

before(async () => {
  await ensureServices(['cassandra', 'opensearch'], { log: () => undefined });
  const iso = await isolatedKeyspaces('drift', ['sunbird', 'ops']);
  ({ client: cassandra, drop } = iso);
  ks = iso.ks;
  await seed(cassandra, {
    users: USERS,
    orgs: ORGS,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: SEED,
    keyspace: ks.sunbird,
    coursesKeyspace: 'unused',
  });
  for (const id of [...UNICODE, ...LONG]) {
    await cassandra.execute(
      `INSERT INTO ${ks.sunbird}."user" (id, firstname, updateddate) VALUES (?, ?, ?)`,
      [id, 'Special', '2024-01-01 10:00:00:000+0000'],
    );
  }
  allUsers = [...seededUserIds(SEED, USERS), ...UNICODE, ...LONG];
  standin = await startSyncApiStandin({
    port: 0,
    apiKey: KEY,
    index: { cassandra, keyspace: ks.sunbird, opensearch: { url: OPENSEARCH_URL }, indexNames: names },
  });
  // Index every user as a real resync would (verified mode: indexed before the answer).
  const client = new SyncApiClient({ endpoint: `${standin.url}/v1/data/sync`, apiKey: KEY, maxRetries: 0 });
  for (let i = 0; i < allUsers.length; i += 100) {
    const r = await client.sync('user', allUsers.slice(i, i + 100), { verify: true });
    assert.deepEqual(r.unconfirmedIds, [], r.responseBody);
  }
  await client.close();
  // Drift: some documents lost (unicode and long ids among them), some left behind.
  removed.push(...allUsers.filter((_, i) => i % 37 === 5), UNICODE[1]!, LONG[0]!);
  for (const id of removed) assert.equal((await os('DELETE', doc(names.user, id))).status, 200, id);
  for (const id of ORPHANS) {
    const put = await os('PUT', doc(names.user, id), { id, updateddate: '2023-01-01 00:00:00:000+0000' });
    assert.equal(put.status, 201, JSON.stringify(put.json));
  }
});

after(async () => {
  await standin?.close();
  await os('DELETE', `/${prefix}-*`).catch(() => undefined);
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
  await drop?.();
});

describe('sunbird-dataops diff', () => {
  test('missing.txt and orphans.txt are exactly the ids removed from and added to the index', async () => {
    const { json, out, file } = await diffUsers();
    assert.deepEqual(sorted(await file('missing')), sorted(removed));
    assert.deepEqual(sorted(await file('orphans')), sorted(ORPHANS));
    assert.deepEqual(sorted(await readdir(out)), ['missing.txt', 'orphans.txt']);
    assert.deepEqual(
      [json.cassandraIds, json.indexDocs, json.missing, json.orphans],
      [allUsers.length, allUsers.length - removed.length + ORPHANS.length, removed.length, ORPHANS.length],
    );
    assert.deepEqual(json.files, { missing: join(out, 'missing.txt'), orphans: join(out, 'orphans.txt') });
  });

  test('listing the index by point in time (--es-paging pit, sorted on _id) gives the same diff as the scroll', async () => {
    const { json, file } = await diffUsers(['--es-paging', 'pit']);
    assert.deepEqual(sorted(await file('missing')), sorted(removed));
    assert.deepEqual(sorted(await file('orphans')), sorted(ORPHANS));
    assert.equal(json.indexDocs, allUsers.length - removed.length + ORPHANS.length);
  });

  test('--stale lists the rows updated in Cassandra after they were indexed', async () => {
    const updated = allUsers.filter((id, i) => i % 41 === 3 && !removed.includes(id));
    for (const id of updated) {
      await cassandra.execute(`UPDATE ${ks.sunbird}."user" SET updateddate = ? WHERE id = ?`, [
        '2031-06-01 12:00:00:000+0000',
        id,
      ]);
    }
    const { json, file } = await diffUsers(['--stale']);
    assert.deepEqual(sorted(await file('stale')), sorted(updated));
    assert.deepEqual(sorted(await file('missing')), sorted(removed));
    assert.equal(json.stale, updated.length);
  });

  test('an index with no documents: every organisation is missing, no orphans', async () => {
    assert.equal((await os('PUT', `/${names.organisation}`)).status, 200);
    const out = await outDir();
    const r = await cli(['diff', '--table', 'organisation', '--es-index', names.organisation, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const orgs = (await cassandra.execute(`SELECT id FROM ${ks.sunbird}.organisation`)).rows.map(
      (row) => row.id as string,
    );
    assert.deepEqual(sorted(await idFile(join(out, 'missing.txt'))), sorted(orgs));
    assert.deepEqual(await idFile(join(out, 'orphans.txt')), []);
    assert.match(r.stdout, /index documents: 0\n/);
  });

  test('a wrong index name is exit 2, naming it and listing the indices there are', async () => {
    const out = await outDir();
    const r = await cli(['diff', '--table', 'user', '--es-index', `${prefix}-usr`, '--out', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `index "${prefix}-usr" not found at ${OPENSEARCH_URL}; the indices there are: .*${names.user}`,
      ),
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    const s = await cli(['sync', '--table', 'user', '--only-missing', '--es-index', `${prefix}-usr`]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /not found/);
  });

  test('the engine going away mid-diff is exit 3, and nothing is left that looks complete', async () => {
    const proxy = await startHttpProxy({ target: { host: '127.0.0.1', port: 9200 }, killAtRequest: 8 });
    const out = await outDir();
    await writeFile(join(out, 'missing.txt'), 'from an earlier diff\n');
    const r = await cli(
      ['diff', '--table', 'user', '--es-index', names.user, '--out', out, '--page-size', '10'],
      { ES_URL: proxy.url, ES_MAX_RETRIES: '1' },
    );
    await proxy.kill();
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`search engine at ${proxy.url} is unreachable`));
    assert.deepEqual(await readdir(out), []);
  });
});

describe('sync --only-missing', () => {
  test('syncs exactly the missing (and stale) ids; a second diff finds none', async () => {
    const before = await diffUsers(['--stale']);
    const missing = await before.file('missing');
    const stale = await before.file('stale');
    assert.ok(missing.length > 0 && stale.length > 0);
    standin.reset();
    const out = await outDir();
    const r = await cli([
      'sync',
      '--table',
      'user',
      '--only-missing',
      '--stale',
      '--es-index',
      names.user,
      '--context_param',
      `sunbird_sync_api_endpoint=${standin.url}/v1/data/sync`,
      '--context_param',
      'dry_run=false',
      '--sleep-time',
      '1',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const sent = blockCalls(standin).flatMap(
      (q) => (q.body as { request: { objectIds: string[] } }).request.objectIds,
    );
    assert.deepEqual(sorted(sent), sorted([...missing, ...stale]));
    assert.match(
      r.stdout,
      new RegExp(
        `ids checked against the search index: ${allUsers.length}; missing or stale, sent on: ${sent.length}`,
      ),
    );
    await standin.idle();
    const afterwards = await diffUsers(['--stale']);
    assert.deepEqual([afterwards.json.missing, afterwards.json.stale], [0, 0]);
    assert.deepEqual(sorted(await afterwards.file('orphans')), sorted(ORPHANS), 'orphans are only reported');
    const report = await cli(['report', /run (\S+)/.exec(r.stdout)![1]!]);
    assert.match(
      report.stdout,
      new RegExp(
        `ids checked \\(filter missing-or-stale-in-index\\): ${allUsers.length}, sent on: ${sent.length}`,
      ),
    );
  });

  test('through an SQS queue (--queue-url) the same filter applies', async () => {
    gone.push(...allUsers.filter((_, i) => i % 53 === 11));
    for (const id of gone) await os('DELETE', doc(names.user, id));
    const sqs = testSqs();
    const q = await isolatedQueue(sqs, 'drift-sync');
    try {
      const out = await outDir();
      const r = await cli(
        [
          'sync',
          '--table',
          'user',
          '--only-missing',
          '--es-index',
          names.user,
          '--queue-url',
          q.url,
          '--out',
          out,
        ],
        { SQS_ENDPOINT },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        sorted(await idFile(join(out, 'syncIds.csv'))),
        sorted(gone),
        'the dry run lists them',
      );
    } finally {
      await q.drop();
      sqs.destroy();
    }
  });

  test('the fan-out payload {"objectType":"user","onlyMissing":true} scans with the filter on Lambda', async () => {
    const sqs = testSqs();
    const scanQ = await isolatedQueue(sqs, 'drift-scan', { visibilityTimeout: 60 });
    const syncQ = await isolatedQueue(sqs, 'drift-sync');
    const cfg = loadFlatConfig({
      env: {
        SCAN_QUEUE_URL: scanQ.url,
        SYNC_QUEUE_URL: syncQ.url,
        SQS_ENDPOINT,
        SUNBIRD_KEYSPACE: ks.sunbird,
        DATAOPS_KEYSPACE: ks.ops,
        ES_URL: OPENSEARCH_URL,
        ES_INDEX: names.user,
        SCAN_MIN_TASKS: '4',
      },
    });
    const fanout = createFanout(cfg, createLogger({ serviceName: 'fanout', level: 'ERROR' }));
    const context = { getRemainingTimeInMillis: () => 600_000, functionName: 'fanout' } as unknown as Context;
    try {
      const lost = allUsers.filter((_, i) => i % 61 === 2);
      for (const id of lost) await os('DELETE', doc(names.user, id));
      const started = (await fanout.handler({ objectType: 'user', onlyMissing: true }, context)) as {
        tasks: number;
      };
      assert.ok(started.tasks >= 1);
      for (const body of await drain(sqs, scanQ.url)) {
        const event = toSqsEvent(
          [{ MessageId: 'm', ReceiptHandle: 'r', Body: body }],
          'arn:aws:sqs:us-east-1:000000000000:scan',
          'us-east-1',
        );
        const res = (await fanout.handler(event, context)) as { batchItemFailures: unknown[] };
        assert.deepEqual(res.batchItemFailures, []);
      }
      const ids = (await drain(sqs, syncQ.url)).flatMap((b) => blockSchema.parse(JSON.parse(b)).ids);
      assert.deepEqual(sorted(ids), sorted(new Set([...gone, ...lost])));
    } finally {
      await fanout.close();
      await scanQ.drop();
      await syncQ.drop();
      sqs.destroy();
    }
  });
});

/** A CA and a certificate for 127.0.0.1 signed by it, made with openssl in `dir`. */
async function privateCa(dir: string): Promise<{ caFile: string; key: Buffer; cert: Buffer }> {
  const f = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => exec('openssl', args, { timeout: 60_000 });
  await ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=drift-test-ca',
    '-days',
    '2',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  await ssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    f('srv.key'),
    '-out',
    f('srv.csr'),
  );
  await writeFile(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await ssl(
    'x509',
    '-req',
    '-in',
    f('srv.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('srv.pem'),
    '-days',
    '2',
    '-extfile',
    f('san.ext'),
  );
  return { caFile: f('ca.pem'), key: await readFile(f('srv.key')), cert: await readFile(f('srv.pem')) };
}

describe('connections: credentials and a private CA (through a TLS proxy in front of OpenSearch)', () => {
  test('an API key or basic credentials go in the Authorization header only; the CA file makes TLS work', async () => {
    const dir = await outDir();
    const ca = await privateCa(dir);
    const proxy = await startHttpProxy({ target: { host: '127.0.0.1', port: 9200 }, tls: ca });
    try {
      const apiKey = `drift-${randomBytes(12).toString('base64')}`;
      const a = await cli(
        ['diff', '--table', 'user', '--es-index', names.user, '--out', await outDir(), '--json'],
        { ES_URL: proxy.url, ES_CA_FILE: ca.caFile, ES_API_KEY: apiKey },
      );
      assert.equal(a.code, 0, a.stderr);
      assert.ok(proxy.heads.length > 2);
      assert.ok(
        proxy.heads.every((h) => h.includes(`\r\nauthorization: ApiKey ${apiKey}`)),
        proxy.heads[0],
      );

      proxy.heads.length = 0;
      const password = `pw-${randomBytes(8).toString('hex')}`;
      const b = await cli(['diff', '--table', 'user', '--es-index', names.user, '--out', await outDir()], {
        ES_URL: proxy.url,
        ES_CA_FILE: ca.caFile,
        ES_USERNAME: 'drift-reader',
        ES_PASSWORD: password,
      });
      assert.equal(b.code, 0, b.stderr);
      const basic = Buffer.from(`drift-reader:${password}`).toString('base64');
      assert.ok(proxy.heads.every((h) => h.includes(`\r\nauthorization: Basic ${basic}`)));
      for (const text of [a.stdout, a.stderr, b.stdout, b.stderr]) {
        assert.ok(!text.includes(apiKey) && !text.includes(password) && !text.includes(basic));
      }
    } finally {
      await proxy.kill();
    }
  });

  test('without the CA the certificate is not trusted: exit 2, saying to give --es-ca-file', async () => {
    const ca = await privateCa(await outDir());
    const proxy = await startHttpProxy({ target: { host: '127.0.0.1', port: 9200 }, tls: ca });
    try {
      const r = await cli(['diff', '--table', 'user', '--es-index', names.user, '--out', await outDir()], {
        ES_URL: proxy.url,
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /certificate that is not trusted \(\w+\): give its CA with --es-ca-file/);
    } finally {
      await proxy.kill();
    }
  });

  test('credentials in the URL and both kinds at once are refused (exit 2)', async () => {
    const inUrl = await cli(['diff', '--table', 'user', '--out', await outDir()], {
      ES_URL: 'http://reader:secret@127.0.0.1:9200',
    });
    assert.equal(inUrl.code, 2);
    assert.match(inUrl.stderr, /not in the URL/);
    assert.ok(!inUrl.stderr.includes('secret'));
    const both = await cli(['diff', '--table', 'user', '--out', await outDir()], {
      ES_API_KEY: 'k-123456',
      ES_USERNAME: 'u',
      ES_PASSWORD: 'p-123456',
    });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /either ES_USERNAME\/ES_PASSWORD or ES_API_KEY/);
  });
});
