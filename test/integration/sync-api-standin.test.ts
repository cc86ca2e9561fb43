import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';

const KEY = 'standin-test-key-1234';
const TS = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}:\d{3}\+0000$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const body = (objectType: unknown, ids: string[] = ['u1', 'u2'], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ params: {}, request: { objectType, operationFor: 'es', objectIds: ids, ...extra } });

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: the tests walk arbitrary JSON envelopes
  json: any;
}

async function post(
  s: SyncApiStandin,
  payload: string | Uint8Array,
  opts: { path?: string; key?: string | null } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = opts.key === undefined ? KEY : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const res = await fetch(s.url + (opts.path ?? '/v1/data/sync'), { method: 'POST', headers, body: payload });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function assertErrorEnvelope(reply: Reply, err: string, errmsg: string): void {
  assert.equal(reply.status, 400);
  const e = reply.json;
  assert.deepEqual(Object.keys(e), ['id', 'ver', 'ts', 'params', 'responseCode', 'result']);
  assert.equal(e.id, 'api.data.sync');
  assert.equal(e.ver, 'v1');
  assert.match(e.ts, TS);
  assert.deepEqual(Object.keys(e.params), ['resmsgid', 'msgid', 'err', 'status', 'errmsg']);
  assert.match(e.params.resmsgid, UUID);
  assert.equal(typeof e.params.msgid, 'string');
  assert.equal(e.params.err, err);
  assert.equal(e.params.status, 'FAILED');
  assert.equal(e.params.errmsg, errmsg);
  assert.equal(e.responseCode, 'CLIENT_ERROR');
  assert.deepEqual(e.result, {});
}

describe('Sync API stand-in: the contract', () => {
  let s: SyncApiStandin;
  before(async () => {
    s = await startSyncApiStandin({ apiKey: KEY, aclDeniedKeys: ['denied-key-5678'] });
  });
  after(() => s.close());
  beforeEach(() => s.reset());

  test('both routes accept a valid block with the exact success envelope', async () => {
    for (const path of ['/v1/data/sync', '/api/data/v1/index/sync']) {
      const reply = await post(s, body('user'), { path });
      assert.equal(reply.status, 200, path);
      assert.match(reply.headers.get('content-type') ?? '', /application\/json/);
      const e = reply.json;
      assert.deepEqual(Object.keys(e), ['id', 'ver', 'ts', 'params', 'responseCode', 'result']);
      assert.equal(e.id, 'api.data.sync');
      assert.equal(e.ver, 'v1');
      assert.match(e.ts, TS);
      assert.deepEqual(Object.keys(e.params), ['resmsgid', 'msgid', 'err', 'status', 'errmsg']);
      assert.equal(e.params.err, null);
      assert.equal(e.params.status, 'SUCCESS');
      assert.equal(e.params.errmsg, null);
      assert.equal(e.responseCode, 'OK');
      assert.deepEqual(e.result, { response: 'SUCCESS' });
    }
  });

  test('organisation and location are valid object types', async () => {
    assert.equal((await post(s, body('organisation'))).status, 200);
    assert.equal((await post(s, body('location'))).status, 200);
  });

  test('any other route is a 404 with an error envelope', async () => {
    const reply = await post(s, body('user'), { path: '/v1/data/other' });
    assert.equal(reply.status, 404);
    assert.equal(reply.json.params.status, 'FAILED');
    assert.deepEqual(reply.json.result, {});
    const get = await fetch(`${s.url}/v1/data/sync`);
    await get.arrayBuffer();
    assert.equal(get.status, 404);
  });

  test('no key, a wrong key, or a non-Bearer header is a 401 from the gateway', async () => {
    for (const key of [null, 'wrong-key']) {
      const reply = await post(s, body('user'), { key });
      assert.equal(reply.status, 401);
      assert.deepEqual(reply.json, { message: 'Unauthorized' });
    }
    const res = await fetch(`${s.url}/v1/data/sync`, {
      method: 'POST',
      headers: { authorization: KEY },
      body: body('user'),
    });
    await res.arrayBuffer();
    assert.equal(res.status, 401);
    assert.deepEqual(
      s.requests().map((r) => r.auth),
      ['absent', 'mismatched', 'absent'],
    );
  });

  test('a key outside the ACL is a 403', async () => {
    const reply = await post(s, body('user'), { key: 'denied-key-5678' });
    assert.equal(reply.status, 403);
    assert.deepEqual(reply.json, { message: 'You cannot consume this service' });
    assert.equal(s.requests()[0]?.auth, 'matched');
  });

  test('a body over 1 MB is a 413 and is not kept; exactly 1 MB is accepted', async () => {
    // Each id adds 14 bytes (`"id-00000000",`); enough of them to cross 1 MB.
    const ids = Array.from({ length: 1_048_576 / 14 + 10 }, (_, i) => `id-${i.toString().padStart(8, '0')}`);
    const over = body('user', ids);
    assert.ok(Buffer.byteLength(over) > 1_048_576);
    const reply = await post(s, over);
    assert.equal(reply.status, 413);
    assert.deepEqual(reply.json, { message: 'Request size limit exceeded' });

    // Exactly at the limit passes (dropping ids, then padding the last one to hit 1,048,576 bytes).
    ids.length -= 20;
    const fit = body('user', ids);
    const pad = 1_048_576 - Buffer.byteLength(fit);
    ids[ids.length - 1] += 'x'.repeat(pad);
    assert.equal(Buffer.byteLength(body('user', ids)), 1_048_576);
    assert.equal((await post(s, body('user', ids))).status, 200);

    // Chunked upload (no Content-Length) over the limit is cut off too.
    const chunked = await fetch(`${s.url}/v1/data/sync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 3; i++) c.enqueue(new Uint8Array(512 * 1024).fill(0x20));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    await chunked.arrayBuffer();
    assert.equal(chunked.status, 413);

    const rec = s.requests();
    assert.equal(rec[0]?.status, 413);
    assert.equal(rec[0]?.rawBody, null);
    assert.equal(rec[2]?.status, 413);
  });

  test('invalid JSON is a 400', async () => {
    const reply = await post(s, '{"params":{},"request":');
    assertErrorEnvelope(reply, 'INVALID_REQUESTED_DATA', 'Requested data for this operation is not valid.');
  });

  test('a missing objectType is a 400 UOS_0003', async () => {
    assertErrorEnvelope(
      await post(s, JSON.stringify({ params: {}, request: { operationFor: 'es', objectIds: ['a'] } })),
      'UOS_0003',
      'Mandatory parameter objectType is missing.',
    );
    assertErrorEnvelope(
      await post(s, JSON.stringify({ params: {} })),
      'UOS_0003',
      'Mandatory parameter objectType is missing.',
    );
  });

  test('an unknown objectType is a 400 UOS_0072 "Invalid Object Type."', async () => {
    for (const t of ['users', 'course', 42]) {
      assertErrorEnvelope(await post(s, body(t)), 'UOS_0072', 'Invalid Object Type.');
    }
  });

  test('msgid echoes X-Request-ID when given', async () => {
    const res = await fetch(`${s.url}/v1/data/sync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'x-request-id': 'req-123' },
      body: body('user'),
    });
    const e = (await res.json()) as { params: { msgid: string } };
    assert.equal(e.params.msgid, 'req-123');
  });

  test('requests are recorded with the body as received and without the key', async () => {
    const payload = body('user', ['a', 'b']);
    await post(s, payload);
    await post(s, body('nope'));
    const [first, second] = s.requests();
    assert.ok(first && second);
    assert.equal(first.seq, 1);
    assert.equal(first.method, 'POST');
    assert.equal(first.path, '/v1/data/sync');
    assert.equal(first.rawBody, payload);
    assert.deepEqual(first.body, JSON.parse(payload));
    assert.equal(first.status, 200);
    assert.equal(first.auth, 'matched');
    assert.equal(first.headers.authorization, undefined);
    assert.equal(first.headers['content-type'], 'application/json');
    assert.ok(first.receivedAt > 0);
    assert.equal(second.status, 400);
    assert.ok(!JSON.stringify(s.requests()).includes(KEY));

    const admin = await fetch(`${s.url}/__admin/requests`);
    const listed = (await admin.json()) as { requests: unknown[] };
    assert.equal(listed.requests.length, 2);
    await (await fetch(`${s.url}/__admin/reset`, { method: 'POST' })).arrayBuffer();
    assert.equal(s.requests().length, 0);
  });
});

describe('Sync API stand-in: verified mode ("operationType":"sync")', () => {
  test('esSyncResponse lists only the ids that exist', async () => {
    const calls: Array<[string, string[]]> = [];
    const s = await startSyncApiStandin({
      exists: async (objectType, ids) => {
        calls.push([objectType, ids]);
        return new Set(ids.filter((id) => id.startsWith('ok')));
      },
    });
    try {
      const reply = await post(s, body('user', ['ok1', 'gone', 'ok2'], { operationType: 'sync' }), {
        key: null,
      });
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json.result, { response: 'SUCCESS', esSyncResponse: { ok1: true, ok2: true } });
      assert.equal(reply.json.params.status, 'SUCCESS');
      assert.deepEqual(calls, [['user', ['ok1', 'gone', 'ok2']]]);

      // Without operationType the service answers at once and never looks.
      const plain = await post(s, body('user', ['gone']), { key: null });
      assert.deepEqual(plain.json.result, { response: 'SUCCESS' });
      assert.equal(calls.length, 1);
    } finally {
      await s.close();
    }
  });

  test('without an exists function every id exists', async () => {
    const s = await startSyncApiStandin();
    try {
      const reply = await post(s, body('organisation', ['o1', 'o2'], { operationType: 'sync' }), {
        key: null,
      });
      assert.deepEqual(reply.json.result.esSyncResponse, { o1: true, o2: true });
    } finally {
      await s.close();
    }
  });

  test('a verified block slower than the timeout is a 500; a failing lookup is a 500', async () => {
    let fail = false;
    const s = await startSyncApiStandin({
      verifyTimeoutMs: 100,
      exists: async (_t, ids) => {
        if (fail) throw new Error('lookup failed');
        await sleep(400);
        return new Set(ids);
      },
    });
    try {
      const slow = await post(s, body('user', ['a'], { operationType: 'sync' }), { key: null });
      assert.equal(slow.status, 500);
      assert.equal(slow.json.responseCode, 'SERVER_ERROR');
      assert.equal(slow.json.params.status, 'FAILED');
      fail = true;
      assert.equal(
        (await post(s, body('user', ['a'], { operationType: 'sync' }), { key: null })).status,
        500,
      );
    } finally {
      await s.close();
    }
  });
});

describe('Sync API stand-in: rate limit', () => {
  test('over N requests per window per key is a 429 with Retry-After in seconds', async () => {
    const s = await startSyncApiStandin({
      apiKey: [KEY, 'other-key-0000'],
      rateLimit: { limit: 3, windowMs: 60_000 },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await post(s, body('user'))).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const limited = await post(s, body('user'));
      assert.equal(limited.status, 429);
      assert.deepEqual(limited.json, { message: 'API rate limit exceeded' });
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(
        Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
        `retry-after ${retryAfter}`,
      );
      // The limit is per key.
      assert.equal((await post(s, body('user'), { key: 'other-key-0000' })).status, 200);
    } finally {
      await s.close();
    }
  });

  test('a new window lets requests through again', async () => {
    const s = await startSyncApiStandin({ rateLimit: { limit: 1, windowMs: 200 } });
    try {
      assert.equal((await post(s, body('user'), { key: null })).status, 200);
      assert.equal((await post(s, body('user'), { key: null })).status, 429);
      await sleep(250);
      assert.equal((await post(s, body('user'), { key: null })).status, 200);
    } finally {
      await s.close();
    }
  });
});

describe('Sync API stand-in: fault knobs', () => {
  let s: SyncApiStandin;
  before(async () => {
    s = await startSyncApiStandin({ apiKey: KEY });
  });
  after(() => s.close());
  beforeEach(() => s.reset());

  test('a scripted queue answers the next requests in order, then normal handling resumes', async () => {
    s.setFaults({
      script: [
        { status: 429, retryAfter: 1 },
        500,
        { status: 503, body: 'plain text' },
        { passThrough: true },
      ],
    });
    const r1 = await post(s, body('user'));
    assert.equal(r1.status, 429);
    assert.equal(r1.headers.get('retry-after'), '1');
    const r2 = await post(s, body('user'));
    assert.equal(r2.status, 500);
    assert.equal(r2.json.responseCode, 'SERVER_ERROR');
    const r3 = await post(s, body('user'));
    assert.equal(r3.status, 503);
    assert.equal(r3.text, 'plain text');
    // passThrough and after the script: real handling, including validation.
    assert.equal((await post(s, body('user'))).status, 200);
    assert.equal((await post(s, body('bad'))).status, 400);
    assert.deepEqual(
      s.requests().map((r) => [r.status, r.fault]),
      [
        [429, 'scripted'],
        [500, 'scripted'],
        [503, 'scripted'],
        [200, undefined],
        [400, undefined],
      ],
    );
  });

  test('faults can be set over the admin route', async () => {
    const res = await fetch(`${s.url}/__admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ script: [502] }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal((await post(s, body('user'))).status, 502);
    assert.equal((await post(s, body('user'))).status, 200);

    const bad = await fetch(`${s.url}/__admin/faults`, { method: 'POST', body: '{"failureRate": 7}' });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
  });

  test('resetNext destroys the connection of the next N requests', async () => {
    s.setFaults({ resetNext: 2 });
    await assert.rejects(post(s, body('user')));
    await assert.rejects(post(s, body('user')));
    assert.equal((await post(s, body('user'))).status, 200);
    assert.deepEqual(
      s.requests().map((r) => [r.status, r.fault]),
      [
        [null, 'reset'],
        [null, 'reset'],
        [200, undefined],
      ],
    );
  });

  test('a scripted reset destroys the connection', async () => {
    s.setFaults({ script: [{ reset: true }] });
    await assert.rejects(post(s, body('user')));
    assert.equal((await post(s, body('user'))).status, 200);
  });

  test('failureRate with a seed fails a reproducible fraction with the chosen status', async () => {
    const run = async () => {
      s.reset();
      s.setFaults({ failureRate: 0.3, failureStatus: 503, seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++) statuses.push((await post(s, body('user'))).status);
      return statuses;
    };
    const a = await run();
    const b = await run();
    assert.deepEqual(a, b);
    const failed = a.filter((x) => x === 503).length;
    assert.ok(failed > 5 && failed < 35, `failed ${failed}/60`);
    assert.ok(a.every((x) => x === 200 || x === 503));
  });

  test('latencyMs delays every answer', async () => {
    s.setFaults({ latencyMs: 150 });
    const t0 = performance.now();
    assert.equal((await post(s, body('user'))).status, 200);
    assert.ok(performance.now() - t0 >= 140);
  });

  test('reset() restores the initial faults', async () => {
    const s2 = await startSyncApiStandin({ faults: { script: [500] } });
    try {
      assert.equal((await post(s2, body('user'), { key: null })).status, 500);
      assert.equal((await post(s2, body('user'), { key: null })).status, 200);
      s2.reset();
      assert.equal((await post(s2, body('user'), { key: null })).status, 500);
      s2.setFaults({});
      assert.equal((await post(s2, body('user'), { key: null })).status, 200);
    } finally {
      await s2.close();
    }
  });
});
