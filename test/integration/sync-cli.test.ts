/**
 * `sunbird-dataops sync|report|retry` as operators run them (a child process, as from a shell),
 * and the Lambda handlers with real-shaped events — against real Cassandra and the stand-in.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { SQSEvent } from 'aws-lambda';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { openStateDb } from '#shared/clients/sqlite.ts';
import { blockSchema, scanTaskSchema } from '#shared/sync/messages.ts';
import { SqliteRunLedger } from '#shared/sync/sqlite-ledger.ts';
import { summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { drain, isolatedQueue, SQS_ENDPOINT, testSqs } from '#test/helpers/sqs.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'bin', 'sunbird-dataops.js');
const KEY = 'cli-test-key-abcdef';
const USERS = 1200;

let client: CassandraClient;
let ks: { sunbird: string; ops: string };
let drop: () => Promise<void>;
let standin: SyncApiStandin;
/** The CLI's embedded ledger for this file's runs (the default ledger of CLI runs). */
let stateDir: string;

before(async () => {
  const iso = await isolatedKeyspaces('cli', ['sunbird', 'ops']);
  ({ client, drop } = iso);
  ks = iso.ks;
  await seed(client, {
    users: USERS,
    orgs: 30,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: 11,
    keyspace: ks.sunbird,
    coursesKeyspace: 'unused',
  });
  standin = await startSyncApiStandin({ port: 0, apiKey: KEY });
  stateDir = await mkdtemp(join(tmpdir(), 'cli-state-'));
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

async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: {
        ...process.env,
        SUNBIRD_KEYSPACE: ks.sunbird,
        DATAOPS_KEYSPACE: ks.ops,
        SUNBIRD_DATAOPS_STATE_DIR: stateDir,
        SYNC_API_KEY: KEY,
        ...env,
      },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const endpoint = () => `sunbird_sync_api_endpoint=${standin.url}/v1/data/sync`;
/** Ids of the calls the stand-in accepted (not the run's preflight, which it refuses by design). */
const synced = (s: SyncApiStandin): string[] =>
  s
    .requests()
    .filter((q) => q.status === 200)
    .flatMap((q) => (q.body as { request: { objectIds: string[] } }).request.objectIds);
const runIdOf = (r: CliResult) => /run (\S+)/.exec(r.stdout)?.[1] ?? '';

describe('sunbird-dataops sync', () => {
  test('a dry run (the default) makes zero API calls and leaves syncIds.csv with every id of the table', async () => {
    standin.reset();
    const out = await mkdtemp(join(tmpdir(), 'dry-'));
    const r = await cli([
      'sync',
      '--context_param',
      'sunbird_cassandra_table=organisation',
      '--context_param',
      endpoint(),
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(standin.requests().length, 0);
    const listed = (await readFile(join(out, 'syncIds.csv'), 'utf8')).trim().split('\n');
    const orgs = (await client.execute(`SELECT id FROM ${ks.sunbird}.organisation`)).rows.map(
      (row) => row.id as string,
    );
    assert.deepEqual(new Set(listed), new Set(orgs));
    assert.equal(listed.length, 30);
    assert.match(r.stdout, /dry run/);
    assert.deepEqual(
      (await readdir(out)).filter((f) => f.endsWith('.log')),
      [],
      'a dry run writes no call logs',
    );
  });

  test('the old runbook line works unchanged and a real run syncs every user', async () => {
    standin.reset();
    const out = await mkdtemp(join(tmpdir(), 'real-'));
    const r = await cli([
      'sync',
      '--context_param',
      'sunbird_cassandra_table="user"',
      '--context_param',
      'sunbird_sync_object_type="user"',
      '--context_param',
      endpoint(),
      '--context_param',
      'sunbird_sync_block_size=100',
      '--context_param',
      'sunbird_sync_sleep_time=1',
      '--context_param',
      'dry_run=false',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const sent = synced(standin);
    assert.deepEqual(new Set(sent), new Set(seededUserIds(11, USERS)));
    assert.match(
      r.stdout,
      /Sync API call done for \d+\/1200 records\.\.\./,
      'plain progress lines when not on a terminal',
    );
    assert.match(r.stdout, /ids synced: 1200, failed: 0/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(KEY), 'the API key is never printed');
  });

  test('the Sync_run.sh wrapper takes the runbook’s --context_param arguments', async () => {
    standin.reset();
    const out = await mkdtemp(join(tmpdir(), 'wrapper-'));
    const { stdout } = await run(
      join(import.meta.dirname, '..', '..', 'bin', 'Sync_run.sh'),
      [
        '--context_param',
        'sunbird_cassandra_table="organisation"',
        '--context_param',
        'sunbird_sync_object_type="organisation"',
        '--context_param',
        endpoint(),
        '--context_param',
        'dry_run=false',
        '--context_param',
        'sunbird_sync_sleep_time=1',
        '--out',
        out,
      ],
      {
        env: {
          ...process.env,
          SUNBIRD_KEYSPACE: ks.sunbird,
          DATAOPS_KEYSPACE: ks.ops,
          SUNBIRD_DATAOPS_STATE_DIR: stateDir,
          SYNC_API_KEY: KEY,
        },
      },
    );
    assert.match(stdout, /ids synced: 30, failed: 0/);
    const types = new Set(
      standin
        .requests()
        .filter((q) => q.status === 200)
        .map((q) => (q.body as { request: { objectType: string } }).request.objectType),
    );
    assert.deepEqual(types, new Set(['organisation']));
  });

  test('the success and failure logs match the original format byte for byte on a known input', async () => {
    standin.reset();
    standin.setFaults({
      script: [
        { passThrough: true }, // the preflight
        { status: 200, body: '{"result":\n{"response":"SUCCESS"}}' },
        { status: 400, body: '{"params":{"err":"UOS_0072","errmsg":"Invalid Object Type."}}' },
        { status: 200, body: 'ok' },
      ],
    });
    const dir = await mkdtemp(join(tmpdir(), 'logs-'));
    const idFile = join(dir, 'ids.txt');
    await writeFile(idFile, 'a\nb\nc\nd\ne\n');
    const r = await cli([
      'sync',
      '--object-type',
      'user',
      '--id-file',
      idFile,
      '--block-size',
      '2',
      '--sleep-time',
      '1',
      '--dry-run',
      'false',
      '--context_param',
      endpoint(),
      '--out',
      dir,
    ]);
    assert.equal(r.code, 1, 'some ids failed → exit 1');
    const files = await readdir(dir);
    const success = files.find((f) => /^SyncSuccess_\d+\.log$/.test(f))!;
    const failure = files.find((f) => /^SyncFailure_\d+\.log$/.test(f))!;
    assert.equal(success.replace('Success', 'Failure'), failure, 'both logs share one epoch-millis stamp');
    const body = (ids: string[]) =>
      JSON.stringify({ params: {}, request: { objectType: 'user', operationFor: 'es', objectIds: ids } });
    assert.equal(
      await readFile(join(dir, success), 'utf8'),
      `\n\nRequest No : 1\nRequest : ${body(['a', 'b'])}\nResponse : {"result":{"response":"SUCCESS"}}` +
        `\n\nRequest No : 3\nRequest : ${body(['e'])}\nResponse : ok`,
    );
    assert.equal(
      await readFile(join(dir, failure), 'utf8'),
      `\n\nRequest No : 2\nRequest : ${body(['c', 'd'])}\nResponse : {"params":{"err":"UOS_0072","errmsg":"Invalid Object Type."}}`,
    );
    // The documented recovery: grep the Request lines of the failure log and take .request.objectIds.
    const recovered = (await readFile(join(dir, failure), 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('Request : '))
      .flatMap(
        (l) =>
          (JSON.parse(l.slice('Request : '.length)) as { request: { objectIds: string[] } }).request
            .objectIds,
      );
    assert.deepEqual(recovered, ['c', 'd']);
  });

  test('report and retry round-trip: the retried ids are exactly the failed ones', async () => {
    standin.reset();
    // After the preflight, blocks 2 and 4 are rejected (400 is not retried).
    standin.setFaults({ script: [{ passThrough: true }, 200, 400, 200, 400] });
    const dir = await mkdtemp(join(tmpdir(), 'retry-'));
    const idFile = join(dir, 'ids.txt');
    const all = Array.from({ length: 40 }, (_, i) => `r${i}`);
    await writeFile(idFile, all.join('\n'));
    const first = await cli([
      'sync',
      '--object-type',
      'user',
      '--id-file',
      idFile,
      '--block-size',
      '10',
      '--sleep-time',
      '1',
      '--dry-run',
      'false',
      '--context_param',
      endpoint(),
      '--out',
      dir,
    ]);
    assert.equal(first.code, 1);
    const runId = runIdOf(first);
    const expectedFailed = [...all.slice(10, 20), ...all.slice(30, 40)];

    const report = await cli([
      'report',
      runId,
      '--out',
      dir,
      '--failed-ids',
      join(dir, 'failed.txt'),
      '--logs',
    ]);
    assert.equal(report.code, 1, 'a run with failures reports exit 1');
    assert.match(report.stdout, /ids synced: 20, failed: 20/);
    assert.deepEqual(
      (await readFile(join(dir, 'failed.txt'), 'utf8')).trim().split('\n').sort(),
      expectedFailed.sort(),
    );

    standin.reset();
    const retry = await cli([
      'retry',
      runId,
      '--sleep-time',
      '1',
      '--context_param',
      endpoint(),
      '--out',
      dir,
    ]);
    assert.equal(retry.code, 0, retry.stderr);
    const retried = synced(standin);
    assert.deepEqual(retried.sort(), expectedFailed.sort());
    const summary = await summarise(new SqliteRunLedger(openStateDb(stateDir)), runIdOf(retry));
    assert.equal(summary?.run.parentRun, runId);
    assert.equal(summary?.idsSucceeded, 20);
  });

  test('--target aws only enqueues for the deployed stack and prints the run id to follow', async () => {
    standin.reset();
    const sqs = testSqs();
    const scanQ = await isolatedQueue(sqs, 'cli-aws-scan');
    const syncQ = await isolatedQueue(sqs, 'cli-aws-sync');
    try {
      const env = { SQS_ENDPOINT, SCAN_QUEUE_URL: scanQ.url, SYNC_QUEUE_URL: syncQ.url };
      const full = await cli(['sync', '--table', 'user', '--dry-run', 'false', '--target', 'aws'], env);
      assert.equal(full.code, 0, full.stderr);
      assert.match(full.stdout, /handed to the deployed stack: \d+ scan tasks enqueued/);
      assert.match(full.stdout, /sunbird-dataops report sync-user-/);
      const tasks = (await drain(sqs, scanQ.url)).map((b) => scanTaskSchema.parse(JSON.parse(b)));
      assert.ok(
        tasks.length >= 1 && tasks.every((t) => t.run.runId === runIdOf(full) && t.run.dryRun === false),
      );

      const dir = await mkdtemp(join(tmpdir(), 'aws-'));
      await writeFile(join(dir, 'ids.txt'), 'x1\nx2\nx3\n');
      const byIds = await cli(
        [
          'sync',
          '--object-type',
          'user',
          '--id-file',
          join(dir, 'ids.txt'),
          '--block-size',
          '2',
          '--target',
          'aws',
        ],
        env,
      );
      assert.equal(byIds.code, 0, byIds.stderr);
      const blocks = (await drain(sqs, syncQ.url)).map((b) => blockSchema.parse(JSON.parse(b)));
      assert.deepEqual(
        blocks.map((b) => b.ids),
        [['x1', 'x2'], ['x3']],
      );
      assert.equal(standin.requests().length, 0, 'nothing is synced from the operator’s machine');
    } finally {
      await scanQ.drop();
      await syncQ.drop();
      sqs.destroy();
    }
  });

  test('runs lists the ledger’s runs, newest first', async () => {
    const r = await cli(['runs', '--limit', '3']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length >= 1 && lines.length <= 3);
    const stamps = lines.map((l) => l.split(/\s+/)[1]!);
    assert.deepEqual([...stamps].sort().reverse(), stamps, 'newest first');
    assert.match(lines[0]!, /^(sync|kcdel)-(user|organisation)-\S+ {2}\d{4}-/);
  });

  test('bad input exits 2 with a one-line reason', async () => {
    const missing = await cli(['sync', '--table', 'user', '--id-file', '/nonexistent/ids.csv']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr.trim(), /^sunbird-dataops: id file not found: \/nonexistent\/ids\.csv$/);
    const badParam = await cli(['sync', '--context_param', 'sunbird_cassandra_table=users']);
    assert.equal(badParam.code, 2);
    assert.match(badParam.stderr, /sunbird_cassandra_table.*expected user or organisation/);
    const unknown = await cli(['sync', '--context_param', 'sunbird_sync_blocksize=5', '--table', 'user']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown setting "sunbird_sync_blocksize"/);
    const nothing = await cli(['sync']);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /--table user\|organisation/);
    const noRun = await cli(['report', 'no-such-run']);
    assert.equal(noRun.code, 2);
  });
});

describe('sync-block Lambda handler', () => {
  test('a malformed queue message is reported as a batch item failure and does not block the others', async () => {
    standin.reset();
    Object.assign(process.env, {
      SYNC_API_ENDPOINT: `${standin.url}/v1/data/sync`,
      SYNC_API_KEY: KEY,
      SUNBIRD_KEYSPACE: ks.sunbird,
      DATAOPS_KEYSPACE: ks.ops,
      LOG_LEVEL: 'ERROR',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    });
    const { handler, close } = await import('#functions/sync-block.ts');
    after(close);
    const fixture = JSON.parse(
      await readFile(join(import.meta.dirname, '..', '..', 'events', 'sqs-sync-block.json'), 'utf8'),
    ) as SQSEvent;
    const good = fixture.Records[0]!;
    const block = JSON.parse(good.body) as {
      run: { runId: string; sleepMs: number };
      seq: number;
      ids: string[];
    };
    block.run.sleepMs = 0;
    const second = { ...block, seq: block.seq + 1, ids: ['lambda-x', 'lambda-y'] };
    const event: SQSEvent = {
      Records: [
        { ...good, messageId: 'm-good-1', body: JSON.stringify(block) },
        { ...good, messageId: 'm-bad', body: '{"type":"block","ids":"not-a-list"' },
        {
          ...good,
          messageId: 'm-bad-2',
          body: JSON.stringify({ type: 'block', run: block.run, rangeNo: 0, seq: 9, ids: [] }),
        },
        { ...good, messageId: 'm-good-2', body: JSON.stringify(second) },
      ],
    };
    const ctx = {
      getRemainingTimeInMillis: () => 60_000,
      functionName: 'sync-block',
      awsRequestId: 'req-1',
    } as never;
    const response = await handler(event, ctx);
    assert.deepEqual(response.batchItemFailures.map((f) => f.itemIdentifier).sort(), ['m-bad', 'm-bad-2']);
    const sent = standin
      .requests()
      .map((q) => (q.body as { request: { objectIds: string[] } }).request.objectIds);
    assert.deepEqual(sent, [block.ids, ['lambda-x', 'lambda-y']]);
    const block0 = block as unknown as { rangeNo: number };
    const rows = await client.execute(
      `SELECT seq, status FROM ${ks.ops}.run_blocks WHERE run_id = ? AND range_no = ? AND chunk = 0 AND stage = 'sync'`,
      [block.run.runId, block0.rangeNo],
    );
    assert.deepEqual(
      rows.rows.map((r) => [r.seq, r.status]),
      [
        [block.seq, 'succeeded'],
        [block.seq + 1, 'succeeded'],
      ],
      'both good blocks are in the ledger',
    );
  });
});
