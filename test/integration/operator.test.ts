/**
 * The CLI as an operator runs it against a cluster, on real Cassandra, ElasticMQ and the Sync API stand-in:
 * the embedded ledger (no ops keyspace needed), kill -9 and Ctrl-C followed by `resume`, `retry` with a new
 * block size after 413s, two runs sharing one SQS queue, `--json`, and `migrate`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { openStateDb } from '#shared/clients/sqlite.ts';
import { SqliteRunLedger } from '#shared/sync/sqlite-ledger.ts';
import { summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { blockCalls } from '#test/helpers/cli.ts';
import { drain, isolatedQueue, SQS_ENDPOINT, testSqs } from '#test/helpers/sqs.ts';

const execFileP = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'bin', 'sunbird-dataops.js');
const KEY = 'operator-test-key-123456';
const USERS = 3000;
const SEED = 23;

let client: CassandraClient;
let ks: { sunbird: string; ops: string };
let drop: () => Promise<void>;
let standin: SyncApiStandin;
let allIds: string[];

before(async () => {
  // Only Sunbird's keyspace: no ops keyspace exists, as on a cluster where the tool has read rights only.
  const iso = await isolatedKeyspaces('oper', ['sunbird']);
  ({ client, drop } = iso);
  ks = { sunbird: iso.ks.sunbird, ops: `${iso.ks.sunbird}_noops` };
  await seed(client, {
    users: USERS,
    orgs: 40,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: SEED,
    keyspace: ks.sunbird,
    coursesKeyspace: 'unused',
  });
  allIds = seededUserIds(SEED, USERS);
  standin = await startSyncApiStandin({ port: 0, apiKey: KEY });
});

after(async () => {
  await standin.close();
  await drop();
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function env(stateDir: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    ...process.env,
    SUNBIRD_KEYSPACE: ks.sunbird,
    DATAOPS_KEYSPACE: ks.ops,
    SUNBIRD_DATAOPS_STATE_DIR: stateDir,
    SYNC_API_KEY: KEY,
    SYNC_API_ENDPOINT: `${standin.url}/v1/data/sync`,
    ...extra,
  };
}

async function cli(args: string[], stateDir: string, extra: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args], {
      env: env(stateDir, extra),
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function start(args: string[], stateDir: string): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: env(stateDir),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c));
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : -1), stdout, stderr }),
    ),
  );
  return { child, done };
}

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every id the stand-in accepted (200), with how often. */
function accepted(): Map<string, number> {
  const seen = new Map<string, number>();
  for (const r of blockCalls(standin)) {
    if (r.status !== 200) continue;
    for (const id of (r.body as { request: { objectIds: string[] } }).request.objectIds)
      seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
}

const lastJson = (r: CliResult) => JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
const ledgerOf = (stateDir: string) => new SqliteRunLedger(openStateDb(stateDir));
const fullSync = (out: string, extra: string[] = []) => [
  'sync',
  '--table',
  'user',
  '--dry-run',
  'false',
  '--block-size',
  '50',
  '--sleep-time',
  '1',
  '--out',
  out,
  ...extra,
];

describe('operator-grade CLI runs', () => {
  test('a fresh cluster with no ops keyspace: sync needs only SELECT on the table (embedded ledger) and --json ends with the result', async () => {
    standin.reset();
    const state = await mkdtemp(join(tmpdir(), 'oper-state-'));
    const out = await mkdtemp(join(tmpdir(), 'oper-out-'));
    const r = await cli(
      ['sync', '--table', 'organisation', '--dry-run', 'false', '--sleep-time', '1', '--out', out, '--json'],
      state,
    );
    assert.equal(r.code, 0, r.stderr);
    const result = lastJson(r);
    assert.equal(result.status, 'finished');
    assert.equal(result.exitCode, 0);
    assert.equal(result.idsSucceeded, 40);
    assert.match(String(result.runId), /^sync-organisation-/);
    assert.ok((result.files as string[]).some((f) => /SyncSuccess_\d+\.log$/.test(f)));
    assert.match(r.stderr, /run sync-organisation-\S+ started/, 'human progress goes to stderr with --json');
    const summary = await summarise(ledgerOf(state), String(result.runId));
    assert.equal(summary?.complete, true);
  });

  test('kill -9 mid-run, then resume: every id synced, at most the blocks in flight sent twice', async () => {
    standin.reset();
    standin.setFaults({ latencyMs: 15 });
    const state = await mkdtemp(join(tmpdir(), 'oper-state-'));
    const out = await mkdtemp(join(tmpdir(), 'oper-out-'));
    const { child, done } = start(fullSync(out, ['--concurrency', '2']), state);
    await until('30 % of the blocks', () => blockCalls(standin).length >= 18);
    child.kill('SIGKILL');
    assert.equal((await done).code, 137);
    standin.setFaults({});
    const [run] = await ledgerOf(state).recentRuns(1);
    assert.ok(run, 'the run is in the embedded ledger');
    const r = await cli(['resume', run.runId], state);
    assert.equal(r.code, 0, r.stderr);
    const seen = accepted();
    assert.deepEqual([...seen.keys()].sort(), [...allIds].sort(), 'the table, exactly');
    const twice = [...seen.values()].filter((n) => n > 1).length;
    assert.ok(twice <= 2 * 50, `${twice} ids sent twice: at most the 2 blocks in flight`);
    const summary = await summarise(ledgerOf(state), run.runId);
    assert.deepEqual([summary?.complete, summary?.idsSucceeded, summary?.blocksPending], [true, USERS, 0]);
  });

  test('Ctrl-C: in-flight blocks finish, exit 130 with the resume command; resume completes and appends to the same logs', async () => {
    standin.reset();
    standin.setFaults({ latencyMs: 15 });
    const state = await mkdtemp(join(tmpdir(), 'oper-state-'));
    const out = await mkdtemp(join(tmpdir(), 'oper-out-'));
    const { child, done } = start(fullSync(out), state);
    await until('some blocks', () => blockCalls(standin).length >= 10);
    child.kill('SIGINT');
    const first = await done;
    assert.equal(first.code, 130, first.stderr);
    const runId = /resume (sync-user-\S+)/.exec(first.stdout)?.[1];
    assert.ok(runId, first.stdout);
    assert.match(first.stdout, /interrupted/);
    standin.setFaults({});
    const r = await cli(['resume', runId], state);
    assert.equal(r.code, 0, r.stderr);
    const seen = accepted();
    assert.deepEqual([...seen.keys()].sort(), [...allIds].sort());
    assert.ok(
      [...seen.values()].every((n) => n === 1),
      'no block sent twice after a clean stop',
    );
    const logs = (await readdir(out)).filter((f) => f.startsWith('SyncSuccess_'));
    assert.equal(logs.length, 1, 'the resume appended to the run’s own success log');
    const text = await readFile(join(out, logs[0]!), 'utf8');
    const numbers = [...text.matchAll(/Request No : (\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(
      numbers,
      numbers.map((_, i) => i + 1),
      'request numbers go on across the resume',
    );
    assert.equal(numbers.length, blockCalls(standin).length, 'every block call is in the one log');
  });

  test('blocks refused with 413: retry with a smaller --block-size sends the failed ids in blocks of that size', async () => {
    const small = await startSyncApiStandin({ port: 0, apiKey: KEY, maxBodyBytes: 1_500 });
    try {
      const state = await mkdtemp(join(tmpdir(), 'oper-state-'));
      const out = await mkdtemp(join(tmpdir(), 'oper-out-'));
      const endpoint = { SYNC_API_ENDPOINT: `${small.url}/v1/data/sync` };
      const first = await cli(
        ['sync', '--table', 'organisation', '--dry-run', 'false', '--sleep-time', '1', '--out', out],
        state,
        endpoint,
      );
      assert.equal(first.code, 1, first.stderr);
      assert.ok(blockCalls(small).every((r) => r.status === 413));
      const runId = /run (\S+)/.exec(first.stdout)?.[1] ?? assert.fail(first.stdout);
      const retry = await cli(
        ['retry', runId, '--block-size', '10', '--out', out, '--json'],
        state,
        endpoint,
      );
      assert.equal(retry.code, 0, retry.stderr);
      const ok = blockCalls(small).filter((r) => r.status === 200);
      assert.equal(ok.length, 4);
      assert.ok(
        ok.every((r) => (r.body as { request: { objectIds: string[] } }).request.objectIds.length === 10),
      );
      const retried = await ledgerOf(state).getRun(String(lastJson(retry).runId));
      assert.deepEqual([retried?.blockSize, retried?.parentRun], [10, runId]);
    } finally {
      await small.close();
    }
  });

  test('two runs sharing one SQS queue both complete, and nothing lands in the dead-letter queue', async () => {
    standin.reset();
    const sqs: SQSClient = testSqs();
    const q = await isolatedQueue(sqs, 'oper-shared', { maxReceiveCount: 2, visibilityTimeout: 30 });
    try {
      const state = await mkdtemp(join(tmpdir(), 'oper-state-'));
      const out = await mkdtemp(join(tmpdir(), 'oper-out-'));
      const shared = ['--queue-url', q.url, '--sqs-endpoint', SQS_ENDPOINT, '--concurrency', '2'];
      const [a, b] = await Promise.all([
        cli(
          [
            'sync',
            '--table',
            'user',
            '--dry-run',
            'false',
            '--block-size',
            '100',
            '--sleep-time',
            '1',
            '--out',
            out,
            ...shared,
            '--json',
          ],
          state,
        ),
        cli(
          [
            'sync',
            '--table',
            'organisation',
            '--dry-run',
            'false',
            '--sleep-time',
            '1',
            '--out',
            out,
            ...shared,
            '--json',
          ],
          state,
        ),
      ]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(lastJson(a).idsSucceeded, USERS);
      assert.equal(lastJson(b).idsSucceeded, 40);
      assert.deepEqual(await drain(sqs, q.dlqUrl!), [], 'the dead-letter queue is empty');
    } finally {
      await q.drop();
      sqs.destroy();
    }
  });

  test('migrate --print shows the ops keyspace’s CQL without connecting; migrate creates it idempotently', async () => {
    const state = await mkdtemp(join(tmpdir(), 'oper-state-'));
    const printed = await cli(
      [
        'migrate',
        '--print',
        '--cassandra-host',
        '192.0.2.1',
        '--replication',
        "{'class':'NetworkTopologyStrategy','dc1':3}",
      ],
      state,
    );
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(
      printed.stdout,
      new RegExp(
        `CREATE KEYSPACE IF NOT EXISTS ${ks.ops} WITH replication = \\{'class':'NetworkTopologyStrategy','dc1':3\\};`,
      ),
    );
    assert.match(printed.stdout, /CREATE TABLE IF NOT EXISTS \S+\.run_blocks/);
    const bad = await cli(['migrate', '--print', '--replication', 'three copies'], state);
    assert.equal(bad.code, 2);
    const ops = `${ks.sunbird}_mig`;
    try {
      for (let i = 0; i < 2; i++) {
        const r = await cli(['migrate', '--ops-keyspace', ops], state);
        assert.equal(r.code, 0, r.stderr);
      }
      const tables = await client.execute(
        'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?',
        [ops],
      );
      assert.deepEqual(tables.rows.map((t) => t.table_name).sort(), [
        'merge_journal',
        'merge_plan_chunk',
        'run_blocks',
        'run_deletions',
        'run_keys',
        'run_ranges',
        'runs',
      ]);
      const viaCassandra = await cli(
        [
          'sync',
          '--table',
          'organisation',
          '--ledger',
          'cassandra',
          '--ops-keyspace',
          ops,
          '--sleep-time',
          '1',
          '--dry-run',
          'false',
          '--json',
        ],
        state,
      );
      assert.equal(viaCassandra.code, 0, viaCassandra.stderr);
      assert.match(String(lastJson(viaCassandra).ledger), new RegExp(`keyspace ${ops}`));
    } finally {
      await client.execute(`DROP KEYSPACE IF EXISTS ${ops}`);
    }
  });

  test('exit codes: 2 for bad input, 3 for an unreachable Cassandra, both one line; --json carries the error', async () => {
    const state = await mkdtemp(join(tmpdir(), 'oper-state-'));
    const bad = await cli(['sync', '--table', 'user', '--concurrency', '0', '--json'], state);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr.trim(), /^sunbird-dataops: --concurrency expects a whole number from 1 to 256$/);
    assert.equal(lastJson(bad).exitCode, 2);
    const down = await cli(['sync', '--table', 'user', '--cassandra-port', '9', '--sleep-time', '1'], state);
    assert.equal(down.code, 3, down.stderr);
    assert.match(
      down.stderr.trim(),
      /^sunbird-dataops: Cassandra is not reachable at 127\.0\.0\.1:9: [^\n]*ECONNREFUSED[^\n]*$/,
    );
  });
});
