import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import {
  buildSyncRequestBody,
  PREFLIGHT_BODY,
  type RetryInfo,
  SyncApiClient,
  type SyncApiClientOptions,
} from '#shared/clients/sync-api.ts';
import { ConfigError } from '#shared/config.ts';
import { CredentialsRefusedError, exitCodeOf, ServiceUnavailableError } from '#shared/core/errors.ts';
import { parseRetryAfter } from '#shared/core/retry.ts';
import type { SyncCallResult } from '#shared/sync/ports.ts';

const KEY = 'client-test-secret-key-9f8e7d';

/** Everything a caller could log or persist from a result, as one string. */
function serialise(r: SyncCallResult): string {
  return JSON.stringify({ ...r, confirmedIds: r.confirmedIds ? [...r.confirmedIds] : undefined });
}

describe('buildSyncRequestBody', () => {
  test('matches the original job byte for byte', () => {
    assert.equal(
      buildSyncRequestBody('user', ['id1', 'id2']),
      '{"params":{},"request":{"objectType":"user","operationFor":"es","objectIds":["id1","id2"]}}',
    );
    assert.equal(
      buildSyncRequestBody('organisation', ['o"1'], true),
      '{"params":{},"request":{"objectType":"organisation","operationFor":"es","objectIds":["o\\"1"],"operationType":"sync"}}',
    );
  });

  test('parseRetryAfter reads seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
    const now = Date.parse('2024-01-01T10:00:00Z');
    assert.equal(parseRetryAfter('Mon, 01 Jan 2024 10:00:05 GMT', now), 5000);
  });
});

describe('SyncApiClient against the stand-in', () => {
  let s: SyncApiStandin;
  const clients: SyncApiClient[] = [];
  let retries: RetryInfo[] = [];
  const client = (o: Partial<SyncApiClientOptions> = {}) => {
    const c = new SyncApiClient({
      endpoint: `${s.url}/v1/data/sync`,
      apiKey: KEY,
      minBackoffMs: 20,
      maxBackoffMs: 100,
      maxRetries: 3,
      onRetry: (info) => retries.push(info),
      ...o,
    });
    clients.push(c);
    return c;
  };

  before(async () => {
    s = await startSyncApiStandin({ apiKey: KEY });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await s.close();
  });
  beforeEach(() => {
    s.reset();
    retries = [];
  });

  test('a block is sent with the exact body and headers and a 200 is ok', async () => {
    const r = await client().sync('user', ['id1', 'id2']);
    assert.equal(r.ok, true);
    assert.equal(r.status, 200);
    assert.equal(r.attempts, 1);
    assert.equal(r.requestBody, buildSyncRequestBody('user', ['id1', 'id2']));
    assert.equal(JSON.parse(r.responseBody).result.response, 'SUCCESS');
    const [rec] = s.requests();
    assert.ok(rec);
    assert.equal(
      rec.rawBody,
      '{"params":{},"request":{"objectType":"user","operationFor":"es","objectIds":["id1","id2"]}}',
    );
    assert.equal(rec.rawBody, r.requestBody);
    assert.equal(rec.auth, 'matched');
    assert.equal(rec.headers['content-type'], 'application/json');
    assert.equal(rec.path, '/v1/data/sync');
  });

  test('the gateway route works the same', async () => {
    const c = client({ endpoint: `${s.url}/api/data/v1/index/sync` });
    const r = await c.sync('organisation', ['o1']);
    assert.equal(r.ok, true);
    assert.equal(s.requests()[0]?.path, '/api/data/v1/index/sync');
  });

  test('a 429 is retried no earlier than its Retry-After', async () => {
    s.setFaults({ script: [{ status: 429, retryAfter: 1 }] });
    const t0 = performance.now();
    const r = await client().sync('user', ['a']);
    const elapsed = performance.now() - t0;
    assert.equal(r.ok, true);
    assert.equal(r.attempts, 2);
    assert.ok(elapsed >= 1000, `waited ${elapsed} ms`);
    const [first, second] = s.requests();
    assert.ok(first && second);
    assert.ok(second.receivedAt - first.receivedAt >= 1000, 'the retry arrived at least 1 s later');
    assert.equal(second.rawBody, first.rawBody, 'the retry resends the same body');
    assert.equal(retries.length, 1);
    assert.equal(retries[0]?.status, 429);
    assert.ok((retries[0]?.waitMs ?? 0) >= 1000);
  });

  test('a Retry-After beyond the cap ends the retries with the reason', async () => {
    s.setFaults({ script: [{ status: 429, retryAfter: 120 }] });
    const r = await client({ maxRetryAfterMs: 60_000 }).sync('user', ['a']);
    assert.equal(r.ok, false);
    assert.equal(r.status, 429);
    assert.equal(r.attempts, 1);
    assert.equal(r.retryAfterMs, 120_000);
    assert.match(r.error ?? '', /Retry-After/);
  });

  test('500s are retried with backoff, then ok=false with the last status and body', async () => {
    s.setFaults({ failureRate: 1, failureStatus: 500 });
    const r = await client().sync('user', ['a', 'b']);
    assert.equal(r.ok, false);
    assert.equal(r.status, 500);
    assert.equal(r.attempts, 4, 'maxRetries + 1');
    assert.equal(JSON.parse(r.responseBody).responseCode, 'SERVER_ERROR');
    assert.equal(s.requests().length, 4);
    assert.deepEqual(
      retries.map((x) => [x.attempt, x.status]),
      [
        [1, 500],
        [2, 500],
        [3, 500],
      ],
    );
    assert.ok(retries.every((x) => x.waitMs >= 10 && x.waitMs <= 100));
  });

  test('a 503 then a 200 is ok on the second attempt', async () => {
    s.setFaults({ script: [503] });
    const r = await client().sync('user', ['a']);
    assert.equal(r.ok, true);
    assert.equal(r.attempts, 2);
  });

  test('a reset connection is retried', async () => {
    s.setFaults({ resetNext: 2 });
    const r = await client().sync('user', ['a']);
    assert.equal(r.ok, true);
    assert.equal(r.attempts, 3);
    assert.equal(retries.length, 2);
    assert.ok(retries.every((x) => x.status === undefined && typeof x.error === 'string'));
    assert.deepEqual(
      s.requests().map((x) => x.status),
      [null, null, 200],
    );
  });

  test('connections reset every time end in ok=false with the network error, never a throw', async () => {
    s.setFaults({ resetRate: 1 });
    const r = await client({ maxRetries: 2 }).sync('user', ['a']);
    assert.equal(r.ok, false);
    assert.equal(r.status, null);
    assert.equal(r.attempts, 3);
    assert.equal(r.responseBody, '');
    assert.ok(r.error && r.error.length > 0);
  });

  test('an unreachable API is retried and then reported, not thrown', async () => {
    const dead = await startSyncApiStandin();
    const url = `${dead.url}/v1/data/sync`;
    await dead.close();
    const r = await client({ endpoint: url, maxRetries: 1 }).sync('user', ['a']);
    assert.equal(r.ok, false);
    assert.equal(r.status, null);
    assert.equal(r.attempts, 2);
    assert.match(r.error ?? '', /ECONNREFUSED/);
  });

  test('400, 401, 403 and 413 are returned at once, not retried', async () => {
    const c = client();
    const bad = await c.sync('course', ['a']);
    assert.equal(bad.ok, false);
    assert.equal(bad.status, 400);
    assert.equal(bad.attempts, 1);
    assert.equal(JSON.parse(bad.responseBody).params.err, 'UOS_0072');

    const unauth = await client({ apiKey: 'not-the-key-0000' }).sync('user', ['a']);
    assert.equal(unauth.status, 401);
    assert.equal(unauth.attempts, 1);

    s.setFaults({ script: [403] });
    const forbidden = await c.sync('user', ['a']);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.attempts, 1);

    const huge = Array.from({ length: 80_000 }, (_, i) => `user-${i.toString().padStart(10, '0')}`);
    const tooLarge = await c.sync('user', huge);
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.attempts, 1);

    assert.equal(retries.length, 0);
    assert.equal(s.requests().length, 4);
  });

  test('verified mode: ids the service did not index are unconfirmed', async () => {
    const vs = await startSyncApiStandin({
      apiKey: KEY,
      exists: async (_t, ids) => new Set(ids.filter((id) => id !== 'missing')),
    });
    try {
      const c = client({ endpoint: `${vs.url}/v1/data/sync` });
      const r = await c.sync('user', ['u1', 'missing', 'u2'], { verify: true });
      assert.equal(r.ok, true);
      assert.deepEqual([...(r.confirmedIds ?? [])].sort(), ['u1', 'u2']);
      assert.deepEqual(r.unconfirmedIds, ['missing']);
      assert.equal(
        r.requestBody,
        '{"params":{},"request":{"objectType":"user","operationFor":"es","objectIds":["u1","missing","u2"],"operationType":"sync"}}',
      );
      assert.equal(vs.requests()[0]?.rawBody, r.requestBody);
    } finally {
      await vs.close();
    }
  });

  test('verified mode: a 200 without esSyncResponse confirms nothing', async () => {
    s.setFaults({
      script: [{ status: 200, body: { result: { response: 'SUCCESS', esSyncResponse: { a: false } } } }],
    });
    const r = await client().sync('user', ['a', 'b'], { verify: true });
    assert.equal(r.ok, true);
    assert.deepEqual(r.unconfirmedIds, ['a', 'b']);
    assert.equal(r.confirmedIds?.size, 0);
  });

  test('an abort during the backoff returns promptly with ok=false', async () => {
    s.setFaults({ script: [{ status: 429, retryAfter: 30 }] });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = performance.now();
    const r = await client().sync('user', ['a'], { signal: ac.signal });
    assert.equal(r.ok, false);
    assert.ok(performance.now() - t0 < 10_000, 'did not sit out the 30 s Retry-After');
  });

  test('the API key never appears in any returned field', async () => {
    const results: SyncCallResult[] = [];
    const c = client({ maxRetries: 1 });
    results.push(await c.sync('user', ['a']));
    results.push(await c.sync('bad', ['a']));
    s.setFaults({ failureRate: 1 });
    results.push(await c.sync('user', ['a']));
    s.setFaults({ resetRate: 1 });
    results.push(await c.sync('user', ['a']));
    s.setFaults({
      script: [
        { status: 500, body: `echo Bearer ${KEY}` },
        { status: 500, body: `echo ${KEY}` },
      ],
    });
    results.push(await c.sync('user', ['a']));
    for (const r of results) assert.ok(!serialise(r).includes(KEY), serialise(r));
    assert.ok(!JSON.stringify(retries).includes(KEY));
  });

  test('bad arguments are programmer errors and throw', async () => {
    assert.throws(() => new SyncApiClient({ endpoint: 'not a url' }));
    assert.throws(() => new SyncApiClient({ endpoint: 'ftp://x/y' }));
    assert.throws(() => new SyncApiClient({ endpoint: s.url, maxRetries: -1 }));
    await assert.rejects(client().sync('', ['a']));
  });

  test('many concurrent calls share the keep-alive pool', async () => {
    const c = client({ connections: 4 });
    const rs = await Promise.all(Array.from({ length: 200 }, (_, i) => c.sync('user', [`u${i}`])));
    assert.ok(rs.every((r) => r.ok));
    const connections = new Set(s.requests().map((r) => r.remote));
    assert.ok(connections.size <= 4, `${connections.size} connections`);
    assert.equal(s.requests().length, 200);
  });

  describe('the preflight (check)', () => {
    test('one request, refused by the service’s validation without syncing anything, proves key and route', async () => {
      await client().check();
      const [rec, ...rest] = s.requests();
      assert.ok(rec, 'one request');
      assert.equal(rest.length, 0, 'exactly one request');
      assert.equal(rec.status, 400);
      assert.equal(rec.auth, 'matched', 'the key went through the gateway');
      assert.equal(rec.rawBody, PREFLIGHT_BODY);
      const request = (rec.body as { request: { objectType: string; objectIds: string[] } }).request;
      // Never an empty id list: older services answer that by re-indexing the whole type.
      assert.ok(request.objectIds.length > 0);
      assert.ok(!['user', 'organisation', 'location'].includes(request.objectType));
      // Through the gateway's public route as well.
      await client({ endpoint: `${s.url}/api/data/v1/index/sync` }).check();
    });

    test('a wrong key is refused after exactly one request: credentials refused (exit 3), the key never shown', async () => {
      const err = await client({ apiKey: 'not-the-key-0000' })
        .check()
        .then(
          () => assert.fail('a wrong key must be refused'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof CredentialsRefusedError, String(err));
      assert.equal(exitCodeOf(err), 3);
      assert.match(
        err.message,
        /^the Sync API at http:\/\/127\.0\.0\.1:\d+\/v1\/data\/sync refused the API key \(HTTP 401\)$/,
      );
      assert.ok(!err.message.includes('not-the-key-0000'));
      assert.equal(s.requests().length, 1);
      const none = await client({ apiKey: '' })
        .check()
        .then(
          () => assert.fail('no key must be refused'),
          (e: unknown) => e,
        );
      assert.match(String((none as Error).message), /no key was given: set SYNC_API_KEY/);
    });

    test('a key outside the route’s ACL is refused (403, exit 3)', async () => {
      const acl = await startSyncApiStandin({ apiKey: KEY, aclDeniedKeys: ['denied-key'] });
      try {
        const c = new SyncApiClient({ endpoint: `${acl.url}/v1/data/sync`, apiKey: 'denied-key' });
        clients.push(c);
        const err = await c.check().then(
          () => assert.fail('refused'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof CredentialsRefusedError, String(err));
        assert.match(err.message, /HTTP 403/);
        assert.equal(acl.requests().length, 1);
      } finally {
        await acl.close();
      }
    });

    test('a wrong route is a configuration error naming the endpoint setting (exit 2)', async () => {
      const err = await client({ endpoint: `${s.url}/api/data/v1/index/sink` })
        .check()
        .then(
          () => assert.fail('no route there'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(exitCodeOf(err), 2);
      assert.match(
        err.message,
        /no Sync API route at .*\/api\/data\/v1\/index\/sink \(HTTP 404\).*sunbird_sync_api_endpoint/,
      );
    });

    test('an unreachable API is unavailable (exit 3) after a short, bounded retry', async () => {
      const dead = await startSyncApiStandin();
      const url = `${dead.url}/v1/data/sync`;
      await dead.close();
      const err = await client({ endpoint: url })
        .check()
        .then(
          () => assert.fail('nothing listens'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof ServiceUnavailableError, String(err));
      assert.equal(err.service, 'Sync API');
      assert.match(err.message, /is not available: .*ECONNREFUSED/);
      assert.equal(retries.length, 2, 'the preflight retries at most twice');
    });

    test('a transient 503 is retried, then the preflight passes', async () => {
      s.setFaults({ script: [503] });
      await client().check();
      assert.deepEqual(
        s.requests().map((r) => r.status),
        [503, 400],
      );
    });
  });
});
