/**
 * Cassandra outages during a run, against the real local Cassandra seen through a TCP proxy this file
 * cuts (test/helpers/tcp-proxy.ts), so the shared node itself is never disturbed:
 * - the adapters: a scan reads every id exactly once across a connection reset or a stall between pages
 *   (the page is re-read from its paging state on a new connection); a client that never connected fails
 *   at once; an outage longer than the retry window ends in one ServiceUnavailableError naming Cassandra;
 * - the CLI: a 5 s cut in the middle of a scan is invisible in the result (exit 0, every id synced once);
 *   a cut that outlasts the window (set short here) stops the run with exit 3 and one line naming
 *   Cassandra and its address.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { seed } from '#scripts/seed/seed.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import { type CassandraClient, createCassandraClient, executeIdempotent } from '#shared/clients/cassandra.ts';
import { ServiceUnavailableError } from '#shared/core/errors.ts';
import { CassandraIdSource } from '#shared/sync/cassandra-ids.ts';
import type { TokenRange } from '#shared/sync/ports.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { acceptedIds, lastLine, runCli } from '#test/helpers/cli.ts';
import { startTcpProxy, type TcpProxy } from '#test/helpers/tcp-proxy.ts';

const KEY = 'blip-test-key';
const USERS = 1500;

let client: CassandraClient;
let ks: { sunbird: string; ops: string };
let drop: () => Promise<void>;
let tableIds: string[];
let standin: SyncApiStandin;
let out: string;
const notices: string[] = [];

before(async () => {
  const iso = await isolatedKeyspaces('blip', ['sunbird', 'ops']);
  ({ client, drop } = iso);
  ks = iso.ks;
  await seed(client, {
    users: USERS,
    orgs: 5,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: 29,
    keyspace: ks.sunbird,
    coursesKeyspace: 'unused',
  });
  tableIds = (await client.execute(`SELECT id FROM ${ks.sunbird}.user`, [], { fetchSize: 10_000 })).rows.map(
    (r) => r.id as string,
  );
  assert.equal(tableIds.length, USERS);
  standin = await startSyncApiStandin({ port: 0, apiKey: KEY });
  out = await mkdtemp(join(tmpdir(), 'blips-'));
});

after(async () => {
  await standin?.close();
  await drop?.();
  if (out) await rm(out, { recursive: true, force: true });
});

/** A client that reaches Cassandra only through `proxy`. */
function proxiedClient(proxy: TcpProxy, opts: { readTimeoutMs?: number; retryWindowMs?: number } = {}) {
  return createCassandraClient({
    hosts: ['127.0.0.1'],
    port: proxy.port,
    localDataCenter: 'datacenter1',
    consistency: 'LOCAL_ONE',
    log: (line) => notices.push(line),
    ...opts,
  });
}

/** Every id of the table, page by page over the whole ring; `between(n)` runs after the n-th page. */
async function scanAll(
  source: CassandraIdSource,
  fetchSize: number,
  between: (pages: number) => Promise<void>,
): Promise<string[]> {
  const ids: string[] = [];
  let pages = 0;
  const ranges: TokenRange[] = await source.tokenRanges();
  for (const range of ranges) {
    let state: string | null = null;
    do {
      const page = await source.page(ks.sunbird, 'user', range, state, fetchSize);
      ids.push(...page.ids);
      state = page.next;
      await between(++pages);
    } while (state);
  }
  return ids;
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

describe('Cassandra adapters across an outage', () => {
  test('a scan reads every id exactly once across a 5 s connection reset between pages', async () => {
    const proxy = await startTcpProxy({ port: 9042 });
    const c = proxiedClient(proxy);
    notices.length = 0;
    try {
      const ids = await scanAll(new CassandraIdSource(c), 50, async (pages) => {
        // Cut while the scan is half-way; the next page is asked for during the outage.
        if (pages === 10) void proxy.cutFor(5000, 'reset');
      });
      assert.equal(ids.length, USERS, 'no id lost or repeated');
      assert.deepEqual(sorted(ids), sorted(tableIds));
      assert.ok(
        notices.some((n) => /not answering/.test(n)),
        `the outage was met and ridden out: ${notices.join(' | ')}`,
      );
      assert.ok(notices.some((n) => /answering again/.test(n)));
    } finally {
      await c.shutdown();
      await proxy.close();
    }
  });

  test('a stalled connection is replaced after the read timeout and the scan goes on where it was', async () => {
    const proxy = await startTcpProxy({ port: 9042 });
    const c = proxiedClient(proxy, { readTimeoutMs: 1000 });
    notices.length = 0;
    try {
      const ids = await scanAll(new CassandraIdSource(c), 50, async (pages) => {
        // Nothing answers, nothing is refused: only the client's own timeout can notice.
        if (pages === 7) void proxy.cutFor(3000, 'blackhole');
      });
      assert.equal(ids.length, USERS);
      assert.deepEqual(sorted(ids), sorted(tableIds));
      assert.ok(
        notices.some((n) => /did not reply before timeout/.test(n)),
        notices.join(' | '),
      );
    } finally {
      await c.shutdown();
      await proxy.close();
    }
  });

  test('an outage longer than the retry window is one ServiceUnavailableError naming Cassandra and its address', async () => {
    const proxy = await startTcpProxy({ port: 9042 });
    const c = proxiedClient(proxy, { retryWindowMs: 1500 });
    try {
      await executeIdempotent(c, 'SELECT release_version FROM system.local');
      proxy.cut('reset');
      const err = await executeIdempotent(c, 'SELECT release_version FROM system.local').then(
        () => assert.fail('the read must fail while the proxy is cut'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ServiceUnavailableError, String(err));
      assert.equal(err.service, 'Cassandra');
      assert.equal(err.address, `127.0.0.1:${proxy.port}`);
      assert.match(err.message, new RegExp(`^Cassandra is not reachable at 127\\.0\\.0\\.1:${proxy.port}: `));
      assert.doesNotMatch(err.message, /\n/);
    } finally {
      proxy.restore();
      await c.shutdown();
      await proxy.close();
    }
  });

  test('a client that never connected is not retried: a wrong port fails at once as unavailable', async () => {
    const proxy = await startTcpProxy({ port: 9042 });
    proxy.cut('reset');
    const c = proxiedClient(proxy, { retryWindowMs: 600_000 });
    try {
      // With a ten-minute window, only "no retry before the first connection" lets this end.
      const err = await executeIdempotent(c, 'SELECT release_version FROM system.local').then(
        () => assert.fail('nothing answers'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ServiceUnavailableError, String(err));
      assert.equal(proxy.accepted > 0, true, 'the proxy saw the connection attempt');
    } finally {
      await c.shutdown();
      await proxy.close();
    }
  });
});

const cli = (args: string[], env: Record<string, string>) =>
  runCli(args, {
    SUNBIRD_KEYSPACE: ks.sunbird,
    DATAOPS_KEYSPACE: ks.ops,
    CASSANDRA_CONSISTENCY: 'LOCAL_ONE',
    SYNC_API_KEY: KEY,
    ...env,
  });

/** Cuts the proxy once the stand-in has received `after` calls; resolves with the count at that moment. */
function cutWhenCalled(proxy: TcpProxy, after: number, forMs: number | null): Promise<number> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const n = standin.requests().length;
      if (n < after) return;
      clearInterval(timer);
      if (forMs === null) proxy.cut('reset');
      else void proxy.cutFor(forMs, 'reset');
      resolve(n);
    }, 20);
  });
}

/** One call per id, fast, four in flight, small scan pages: the scan stays ahead of the calls by at most
 * 256 queued blocks plus 40 taken by the workers, so it is still running while the calls are few. */
const fastRun = (dir: string) => [
  'sync',
  '--table',
  'user',
  '--sync-api-endpoint',
  `${standin.url}/v1/data/sync`,
  '--dry-run',
  'false',
  '--block-size',
  '1',
  '--sleep-time',
  '1',
  '--concurrency',
  '4',
  '--fetch-size',
  '10',
  '--out',
  dir,
];

describe('sunbird-dataops sync across a Cassandra outage', () => {
  test('a 5 s cut in the middle of a scan is invisible in the result: exit 0, every id synced exactly once', async () => {
    standin.reset();
    const proxy = await startTcpProxy({ port: 9042 });
    const dir = await mkdtemp(join(out, 'cut5-'));
    try {
      const cut = cutWhenCalled(proxy, 100, 5000);
      const r = await cli(fastRun(dir), { CASSANDRA_PORT: String(proxy.port) });
      const callsAtCut = await cut;
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.ok(
        callsAtCut + 256 + 40 < USERS,
        `the scan was still running when the proxy was cut (${callsAtCut} calls made)`,
      );
      assert.match(r.stderr, /cassandra: 127\.0\.0\.1:\d+ not answering/, 'the outage was met');
      assert.match(r.stderr, /cassandra: 127\.0\.0\.1:\d+ answering again/);
      const sent = acceptedIds(standin);
      assert.equal(sent.length, USERS, 'each id sent once');
      assert.deepEqual(sorted(sent), sorted(tableIds));
      const log = (await readdir(dir)).find((f) => f.startsWith('SyncSuccess_'));
      assert.ok(log, 'a success log');
      const logged = (await readFile(join(dir, log), 'utf8'))
        .split('\n')
        .filter((l) => l.startsWith('Request : '))
        .flatMap(
          (l) =>
            (JSON.parse(l.slice('Request : '.length)) as { request: { objectIds: string[] } }).request
              .objectIds,
        );
      assert.deepEqual(sorted(logged), sorted(tableIds), 'the success log holds every id');
    } finally {
      proxy.restore();
      await proxy.close();
    }
  });

  test('a cut that outlasts the retry window stops the run: exit 3, one line naming Cassandra and its address; resume completes it', async () => {
    standin.reset();
    const proxy = await startTcpProxy({ port: 9042 });
    const dir = await mkdtemp(join(out, 'cutlong-'));
    const state = { SUNBIRD_DATAOPS_STATE_DIR: join(dir, 'state') };
    try {
      // The cut lasts until the CLI has given up (a 90 s outage, as far as the run can tell).
      const cut = cutWhenCalled(proxy, 50, null);
      const r = await cli(fastRun(dir), {
        ...state,
        CASSANDRA_PORT: String(proxy.port),
        CASSANDRA_RETRY_WINDOW_MS: '3000',
      });
      await cut;
      assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
      const last = lastLine(r);
      assert.match(
        last,
        new RegExp(`^sunbird-dataops: Cassandra is not reachable at 127\\.0\\.0\\.1:${proxy.port}: `),
      );
      assert.match(r.stderr, /retrying for up to 3 s/);
      assert.ok(standin.requests().length < USERS, 'the run stopped before the end');

      // Cassandra is back: the printed resume command finishes the run without re-sending confirmed ids.
      proxy.restore();
      const runId = /sunbird-dataops resume (sync-user-\S+)/.exec(`${r.stdout}\n${r.stderr}`)?.[1];
      assert.ok(runId, `the resume command is printed:\n${r.stdout}\n${r.stderr}`);
      const resumed = await cli(['resume', runId, '--sync-api-endpoint', `${standin.url}/v1/data/sync`], {
        ...state,
        CASSANDRA_PORT: String(proxy.port),
      });
      assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
      const sent = acceptedIds(standin);
      assert.deepEqual(sorted(new Set(sent)), sorted(tableIds), 'every id of the table was synced');
      assert.ok(
        sent.length - USERS <= 4,
        `at most the blocks in flight were sent twice (${sent.length - USERS})`,
      );
    } finally {
      proxy.restore();
      await proxy.close();
    }
  });
});
