/**
 * Preflights on the in-memory adapters: a run checks the Sync API (and, for the Keycloak job, the store)
 * before its first side effect, so a refused key, a wrong password or a missing privilege ends the run
 * with nothing recorded, synced or deleted. The real adapters' checks are tested against the stand-in and
 * the local Keycloak (test/integration/sync-api-client, preflight, keycloak-safety).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { preflightVerdict } from '#shared/clients/sync-api.ts';
import { ConfigError } from '#shared/config.ts';
import { CredentialsRefusedError, EXIT, exitCodeOf, ServiceUnavailableError } from '#shared/core/errors.ts';
import { TallyMetrics } from '#shared/core/metrics.ts';
import { KeycloakRefusedError } from '#shared/keycloak/errors.ts';
import { runDeletionLocally } from '#shared/keycloak/local.ts';
import { MemoryDeletionRecords, MemoryDirectory, MemoryKeycloak } from '#shared/keycloak/memory.ts';
import type { KeycloakDeletionRequest } from '#shared/keycloak/start.ts';
import { mergeRequestEvent } from '#shared/merge/events.ts';
import { MemoryMergeStore, MemoryPublisher } from '#shared/merge/memory.ts';
import { processMergeMessage } from '#shared/merge/process.ts';
import { runLocal } from '#shared/sync/local.ts';
import { FakeSyncApi, MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import type { StartRunRequest } from '#shared/sync/run.ts';

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `u-${i}`);

function syncRequest(over: Partial<StartRunRequest> = {}): StartRunRequest {
  return {
    job: 'sync',
    objectType: 'user',
    table: 'user',
    keyspace: 'ks',
    dryRun: false,
    verify: false,
    blockSize: 10,
    sleepMs: 0,
    source: 'test',
    ...over,
  };
}

describe('what the Sync API preflight’s answer means', () => {
  const endpoint = 'https://user:pw@sunbird.example/api/data/v1/index/sync?x=1';
  const verdict = (status: number | null, error?: string) => {
    try {
      preflightVerdict({ status, error }, endpoint, true);
      return 'ok';
    } catch (err) {
      return err;
    }
  };

  test('200, or the service’s own 400 to the unknown objectType: key and route accepted', () => {
    assert.equal(verdict(200), 'ok');
    assert.equal(verdict(400), 'ok');
  });

  test('401 and 403 are refused credentials (exit 3); 404 and 405 a wrong endpoint setting (exit 2)', () => {
    for (const status of [401, 403]) {
      const err = verdict(status);
      assert.ok(err instanceof CredentialsRefusedError, `${status}`);
      assert.equal(exitCodeOf(err), EXIT.unavailable);
    }
    for (const status of [404, 405]) {
      const err = verdict(status);
      assert.ok(err instanceof ConfigError, `${status}`);
      assert.equal(exitCodeOf(err), EXIT.badInput);
      assert.match((err as Error).message, /sunbird_sync_api_endpoint/);
    }
  });

  test('no answer, or 429/5xx after the retries: unavailable (exit 3), naming the endpoint without credentials', () => {
    for (const [status, error] of [
      [null, 'ECONNREFUSED: connect ECONNREFUSED'],
      [503, undefined],
      [429, undefined],
    ] as const) {
      const err = verdict(status, error);
      assert.ok(err instanceof ServiceUnavailableError, `${status}`);
      assert.equal(err.service, 'Sync API');
      assert.equal(err.address, 'https://sunbird.example/api/data/v1/index/sync');
      assert.ok(!err.message.includes('pw'), 'no credentials from the URL');
    }
  });
});

describe('a sync run’s preflight', () => {
  test('passes once per run, before the first call', async () => {
    const api = new FakeSyncApi();
    const r = await runLocal(syncRequest({ ids: ids(30) }), {
      ids: new MemoryIdSource({}),
      ledger: new MemoryRunLedger(),
      syncApi: api,
    });
    assert.equal(api.checks, 1);
    assert.equal(api.calls.length, 3);
    assert.equal(r.idsSucceeded, 30);
  });

  for (const [what, preflight, kind] of [
    ['a refused key', { status: 401 }, CredentialsRefusedError],
    ['an unreachable API', { status: null, error: 'ECONNREFUSED' }, ServiceUnavailableError],
    ['a wrong route', { status: 404 }, ConfigError],
  ] as const) {
    test(`${what} ends the run before anything is recorded or sent`, async () => {
      const api = new FakeSyncApi({ preflight });
      const ledger = new MemoryRunLedger();
      await assert.rejects(
        runLocal(syncRequest({ ids: ids(30) }), { ids: new MemoryIdSource({}), ledger, syncApi: api }),
        kind,
      );
      assert.equal(api.calls.length, 0, 'no sync call');
      assert.deepEqual(await ledger.recentRuns(10), [], 'no run recorded');
    });
  }

  test('a dry run makes no call at all, not even the preflight', async () => {
    const api = new FakeSyncApi({ preflight: { status: 401 } });
    await runLocal(syncRequest({ dryRun: true, ids: ids(5) }), {
      ids: new MemoryIdSource({}),
      ledger: new MemoryRunLedger(),
      syncApi: api,
    });
    assert.equal(api.checks, 0);
  });
});

describe('a Keycloak deletion’s preflight', () => {
  function setup() {
    const users = [
      { id: 'a', realm: 'sunbird', direct: ['public'] },
      { id: 'b', realm: 'sunbird', direct: ['public'] },
      { id: 'c', realm: 'other', direct: ['public'] },
    ];
    const kc = new MemoryKeycloak(users);
    const ledger = new MemoryRunLedger();
    const api = new FakeSyncApi();
    const deps = {
      sync: { ids: new MemoryIdSource({}), ledger, syncApi: api },
      stage: {
        users: kc,
        directory: new MemoryDirectory(users.map((u) => u.id)),
        store: () => kc,
        protectedRoles: ['admin'],
        ledger,
        records: new MemoryDeletionRecords(),
      },
    };
    return { kc, api, ledger, deps };
  }
  const request = (over: Partial<KeycloakDeletionRequest> = {}): KeycloakDeletionRequest => ({
    protectedRoles: ['admin'],
    limit: 100,
    keyspace: 'sunbird',
    mode: 'admin-api',
    dryRun: false,
    verify: false,
    blockSize: 1,
    sleepMs: 0,
    source: 'test',
    ...over,
  });

  test('the store is asked about one candidate of each realm, before the Sync API preflight', async () => {
    const { kc, api, deps } = setup();
    const r = await runDeletionLocally(request(), deps);
    assert.deepEqual(kc.checks, [
      [
        { realm: 'other', id: 'c' },
        { realm: 'sunbird', id: 'a' },
      ],
    ]);
    assert.equal(api.checks, 1);
    assert.deepEqual(r.lists.deleted.sort(), ['a', 'b', 'c']);
  });

  for (const preflight of ['login-refused', 'no-manage-users'] as const) {
    test(`${preflight}: exit 3 with no Sync API call and nothing deleted`, async () => {
      const { kc, api, ledger, deps } = setup();
      kc.preflight = preflight;
      const err = await runDeletionLocally(request(), deps).then(
        () => assert.fail('the preflight must refuse'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof KeycloakRefusedError, String(err));
      assert.equal(exitCodeOf(err), EXIT.unavailable);
      assert.equal(api.checks + api.calls.length, 0, 'the Sync API was not even asked');
      assert.equal(kc.users.size, 3);
      assert.equal(kc.deleteCalls.length, 0);
      assert.deepEqual(await ledger.recentRuns(10), []);
    });
  }

  test('a dry run never asks the store (no Keycloak login)', async () => {
    const { kc, deps } = setup();
    kc.preflight = 'login-refused';
    await runDeletionLocally(request({ dryRun: true }), deps);
    assert.equal(kc.checks.length, 0);
  });
});

describe('a merge’s preflight', () => {
  const deps = (store: MemoryMergeStore, publisher: MemoryPublisher) => ({
    store,
    publisher,
    courseBatchTopic: 'cb',
    failedTopic: 'failed',
    metrics: new TallyMetrics(),
  });

  test('Kafka not answering: the merge throws before its first write, and nothing is reported', async () => {
    const store = new MemoryMergeStore();
    store.seed('enrolments', [{ userid: 'from-1', courseid: 'c', batchid: 'b' }]);
    const publisher = new MemoryPublisher();
    publisher.connectError = new ServiceUnavailableError('Kafka', 'Kafka is not reachable at 127.0.0.1:1');
    await assert.rejects(
      processMergeMessage(mergeRequestEvent('from-1', 'to-1'), deps(store, publisher)),
      ServiceUnavailableError,
    );
    assert.equal(store.writes, 0);
    assert.equal(store.journal.size, 0);
    assert.equal(store.chunks.size, 0, 'not even the plan');
    assert.equal(publisher.published.length, 0);
  });

  test('Kafka answering: connected, merged, events published', async () => {
    const store = new MemoryMergeStore();
    store.seed('enrolments', [{ userid: 'from-1', courseid: 'c', batchid: 'b' }]);
    const publisher = new MemoryPublisher();
    const r = await processMergeMessage(mergeRequestEvent('from-1', 'to-1'), deps(store, publisher));
    assert.equal(r.status, 'merged');
    assert.equal(publisher.connects, 1);
    assert.equal(publisher.on('cb').length, 1);
  });
});
