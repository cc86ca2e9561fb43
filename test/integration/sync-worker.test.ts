/**
 * The block worker and the local chain against real Cassandra (ledger), real ElasticMQ and the Sync
 * API stand-in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { PREFLIGHT_BODY, SyncApiClient } from '#shared/clients/sync-api.ts';
import { SqsQueue } from '#shared/queue/sqs.ts';
import { CassandraIdSource } from '#shared/sync/cassandra-ids.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import { runLocal } from '#shared/sync/local.ts';
import type { StartRunRequest } from '#shared/sync/run.ts';
import { summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { drain, isolatedQueue, testSqs } from '#test/helpers/sqs.ts';

let client: CassandraClient;
let ks: { sunbird: string; ops: string };
let drop: () => Promise<void>;
let ledger: CassandraRunLedger;
let standin: SyncApiStandin;
let sqs: SQSClient;
const KEY = 'worker-test-key-123';

before(async () => {
  const iso = await isolatedKeyspaces('worker', ['sunbird', 'ops']);
  ({ client, drop } = iso);
  ks = iso.ks;
  ledger = new CassandraRunLedger(client, ks.ops);
  standin = await startSyncApiStandin({ port: 0, apiKey: KEY });
  sqs = testSqs();
});

after(async () => {
  await standin.close();
  await drop();
  sqs.destroy();
});

function api(url = standin.url, maxRetries = 2): SyncApiClient {
  return new SyncApiClient({
    endpoint: `${url}/v1/data/sync`,
    apiKey: KEY,
    maxRetries,
    minBackoffMs: 20,
    maxBackoffMs: 100,
  });
}

function ids(n: number, prefix = 'u'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);
}

function request(over: Partial<StartRunRequest>): StartRunRequest {
  return {
    job: 'sync',
    objectType: 'user',
    table: 'user',
    keyspace: ks.sunbird,
    dryRun: false,
    verify: false,
    blockSize: 10,
    sleepMs: 0,
    source: 'test',
    ...over,
  };
}

/** The requests of a run's blocks: all but its preflight (runLocal checks the API before it starts). */
function blockRequests(s: SyncApiStandin = standin) {
  return s.requests().filter((r) => r.rawBody !== PREFLIGHT_BODY);
}

function sentIds(): string[] {
  return standin
    .requests()
    .filter((r) => r.status === 200)
    .flatMap((r) => (r.body as { request: { objectIds: string[] } }).request.objectIds);
}

describe('sync worker', () => {
  test('the sleep time is honoured between consecutive Sync API calls', async () => {
    standin.reset();
    const syncApi = api();
    await runLocal(request({ ids: ids(50), blockSize: 10, sleepMs: 250 }), {
      ids: new CassandraIdSource(client),
      ledger,
      syncApi,
    });
    await syncApi.close();
    const arrivals = blockRequests().map((r) => r.receivedAt);
    assert.equal(arrivals.length, 5);
    for (let i = 1; i < arrivals.length; i++) {
      // Timers never fire early; a few ms of clock granularity between processes is allowed for.
      assert.ok(arrivals[i]! - arrivals[i - 1]! >= 245, `gap ${i} was ${arrivals[i]! - arrivals[i - 1]!} ms`);
    }
  });

  test('a 429 with Retry-After is waited out and the block then succeeds', async () => {
    standin.reset();
    standin.setFaults({ script: [{ passThrough: true }, { status: 429, retryAfter: 1 }] }); // after the preflight
    const syncApi = api();
    const result = await runLocal(request({ ids: ids(10) }), {
      ids: new CassandraIdSource(client),
      ledger,
      syncApi,
    });
    await syncApi.close();
    const [first, second] = blockRequests();
    assert.equal(first?.status, 429);
    assert.equal(second?.status, 200);
    assert.ok(second!.receivedAt - first!.receivedAt >= 1000, 'the retry waited for Retry-After');
    assert.equal(result.idsFailed, 0);
    const summary = await summarise(ledger, result.runId);
    assert.equal(summary?.blocks.succeeded, 1);
  });

  test('500s are retried, then the block’s ids are recorded as failed and the run continues', async () => {
    standin.reset();
    // After the preflight, every attempt of the first block (maxRetries 2).
    standin.setFaults({ script: [{ passThrough: true }, 500, 500, 500] });
    const syncApi = api();
    const all = ids(40);
    const result = await runLocal(request({ ids: all }), {
      ids: new CassandraIdSource(client),
      ledger,
      syncApi,
    });
    await syncApi.close();
    assert.equal(result.blocksFailed, 1);
    assert.equal(result.blocksSucceeded, 3);
    const summary = await summarise(ledger, result.runId);
    assert.deepEqual(new Set(summary?.failures.map((f) => f.id)), new Set(all.slice(0, 10)));
    assert.match(summary!.failures[0]!.reason, /HTTP 500.*after 3 attempts/);
    assert.deepEqual(new Set(sentIds()), new Set(all.slice(10)));
  });

  test('the API going away mid-run loses no id: every id is synced or recorded as failed, and a retry completes', async () => {
    const api2 = await startSyncApiStandin({ port: 0, apiKey: KEY });
    const port = api2.port;
    const syncApi = api(api2.url, 1);
    const all = ids(100, 'gone');
    let calls = 0;
    const result = await runLocal(
      request({ ids: all }),
      { ids: new CassandraIdSource(client), ledger, syncApi },
      {
        onCall: () => {
          if (++calls === 3) void api2.close(); // the API disappears after the third call
        },
      },
    );
    await syncApi.close();
    const summary = await summarise(ledger, result.runId);
    const synced = api2
      .requests()
      .filter((r) => r.status === 200)
      .flatMap((r) => (r.body as { request: { objectIds: string[] } }).request.objectIds);
    const failed = summary!.failures.map((f) => f.id);
    assert.ok(failed.length > 0, 'some blocks failed while the API was away');
    assert.deepEqual(
      new Set([...synced, ...failed]),
      new Set(all),
      'every id is either synced or in the failure record',
    );
    assert.match(summary!.failures[0]!.reason, /network error/);

    // The API comes back on the same address; retrying the failed ids finishes the job.
    const back = await startSyncApiStandin({ port, apiKey: KEY });
    const syncApi2 = api(back.url);
    const retry = await runLocal(request({ ids: failed, source: 'retry', parentRun: result.runId }), {
      ids: new CassandraIdSource(client),
      ledger,
      syncApi: syncApi2,
    });
    await syncApi2.close();
    await back.close();
    assert.equal(retry.idsFailed, 0);
    const resynced = blockRequests(back).flatMap(
      (r) => (r.body as { request: { objectIds: string[] } }).request.objectIds,
    );
    assert.deepEqual(new Set([...synced, ...resynced]), new Set(all));
  });

  test('verified mode records ids the service did not confirm as failed', async () => {
    const verifying = await startSyncApiStandin({
      port: 0,
      apiKey: KEY,
      exists: async (_t, list) => new Set(list.filter((id) => !id.endsWith('7'))),
    });
    const syncApi = api(verifying.url);
    const result = await runLocal(request({ ids: ids(20), verify: true }), {
      ids: new CassandraIdSource(client),
      ledger,
      syncApi,
    });
    await syncApi.close();
    await verifying.close();
    const summary = await summarise(ledger, result.runId);
    assert.deepEqual(summary?.failures.map((f) => f.id).sort(), ['u-0007', 'u-0017']);
    assert.equal(summary?.blocks.partial, 2);
    const firstBody = blockRequests(verifying)[0]!.body as { request: { operationType?: string } };
    assert.equal(firstBody.request.operationType, 'sync');
  });

  test('a dry run makes no API call and still records every id it would sync', async () => {
    standin.reset();
    const syncApi = api();
    const result = await runLocal(request({ ids: ids(35), dryRun: true }), {
      ids: new CassandraIdSource(client),
      ledger,
      syncApi,
    });
    await syncApi.close();
    assert.equal(standin.requests().length, 0);
    const summary = await summarise(ledger, result.runId);
    assert.equal(summary?.blocks['dry-run'], 4);
    const recorded: string[] = [];
    for await (const b of ledger.blocks(result.runId)) recorded.push(...b.ids);
    assert.deepEqual(recorded.sort(), ids(35));
  });

  test('through a real SQS queue the chain delivers every block once and leaves the queue empty', async () => {
    standin.reset();
    const q = await isolatedQueue(sqs, 'worker-chain');
    try {
      const syncApi = api();
      const all = ids(95, 'q');
      const result = await runLocal(
        request({ ids: all }),
        {
          ids: new CassandraIdSource(client),
          ledger,
          syncApi,
          blocks: new SqsQueue(sqs, q.url, { visibilityTimeoutS: 120 }),
        },
        {},
        { workerConcurrency: 2 },
      );
      await syncApi.close();
      assert.equal(result.blocks, 10);
      assert.equal(result.idsSucceeded, 95);
      assert.deepEqual(new Set(sentIds()), new Set(all));
      assert.deepEqual(await drain(sqs, q.url), []);
      // A block sent by someone else to the same queue is left for its owner.
      await new SqsQueue(sqs, q.url).send(['{"type":"block","foreign":true}']);
      assert.equal((await drain(sqs, q.url)).length, 1);
    } finally {
      await q.drop();
    }
  });
});
