/**
 * `sunbird-dataops sync` checks the Sync API before it scans or records anything, as an operator runs it
 * (a child process), against real Cassandra and the stand-in: a wrong key is exit 3 after one request, an
 * unreachable API exit 3, a wrong route exit 2 — each one line, and no run is started.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { seed } from '#scripts/seed/seed.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { type CliResult, lastLine, runCli } from '#test/helpers/cli.ts';

const KEY = 'preflight-test-key';

let client: CassandraClient;
let ks: { sunbird: string; ops: string };
let drop: () => Promise<void>;
let standin: SyncApiStandin;
let out: string;

before(async () => {
  const iso = await isolatedKeyspaces('pre', ['sunbird', 'ops']);
  ({ client, drop } = iso);
  ks = iso.ks;
  await seed(client, {
    users: 50,
    orgs: 5,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: 3,
    keyspace: ks.sunbird,
    coursesKeyspace: 'unused',
  });
  standin = await startSyncApiStandin({ port: 0, apiKey: KEY });
  out = await mkdtemp(join(tmpdir(), 'preflight-'));
});

after(async () => {
  await standin?.close();
  await drop?.();
  if (out) await rm(out, { recursive: true, force: true });
});

function sync(endpoint: string, key: string): Promise<CliResult> {
  const args = [
    'sync',
    '--table',
    'user',
    '--sync-api-endpoint',
    endpoint,
    '--dry-run',
    'false',
    '--out',
    out,
  ];
  return runCli(args, { SUNBIRD_KEYSPACE: ks.sunbird, DATAOPS_KEYSPACE: ks.ops, SYNC_API_KEY: key });
}

/** The one line the CLI ends with, and that no run was started or recorded. */
async function refusedBeforeStarting(r: CliResult): Promise<string> {
  assert.doesNotMatch(r.stderr, /run \S+ started/, 'no run was started');
  assert.deepEqual(await new CassandraRunLedger(client, ks.ops).recentRuns(5), [], 'no run in the ledger');
  return lastLine(r);
}

describe('sunbird-dataops sync: the Sync API preflight', () => {
  test('a wrong key: exit 3 after one request, one line, nothing scanned or recorded', async () => {
    standin.reset();
    const wrong = 'not-the-key-1234';
    const r = await sync(`${standin.url}/v1/data/sync`, wrong);
    assert.equal(r.code, 3, r.stderr);
    const line = await refusedBeforeStarting(r);
    assert.match(
      line,
      /^sunbird-dataops: the Sync API at http:\/\/127\.0\.0\.1:\d+\/v1\/data\/sync refused the API key \(HTTP 401\)$/,
    );
    assert.equal(standin.requests().length, 1, 'one request');
    assert.ok(!`${r.stdout}${r.stderr}`.includes(wrong), 'the key is never printed');
  });

  test('an unreachable API: exit 3, one line naming it', async () => {
    const dead = await startSyncApiStandin();
    const url = `${dead.url}/v1/data/sync`;
    await dead.close();
    const r = await sync(url, KEY);
    assert.equal(r.code, 3, r.stderr);
    const line = await refusedBeforeStarting(r);
    assert.match(
      line,
      new RegExp(
        `^sunbird-dataops: the Sync API at ${url.replace(/\./g, '\\.')} is not available: .*ECONNREFUSED`,
      ),
    );
  });

  test('a wrong route: exit 2, one line naming the endpoint setting', async () => {
    standin.reset();
    const r = await sync(`${standin.url}/api/data/v1/sync`, KEY);
    assert.equal(r.code, 2, r.stderr);
    const line = await refusedBeforeStarting(r);
    assert.match(line, /no Sync API route at .* \(HTTP 404\): check sunbird_sync_api_endpoint/);
  });

  test('the right key and route: the preflight passes and the run syncs every user', async () => {
    standin.reset();
    const r = await sync(`${standin.url}/api/data/v1/index/sync`, KEY);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ids synced: 50, failed: 0/);
    assert.equal(
      standin.requests()[0]?.status,
      400,
      'the preflight came first and was refused by validation',
    );
  });
});
