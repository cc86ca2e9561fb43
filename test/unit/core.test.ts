/**
 * The cross-cutting pieces every job uses: the error taxonomy, the retry policy, bounded concurrency,
 * time, the in-memory queue and SQS batching.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '#shared/config.ts';
import { mapLimit } from '#shared/core/concurrency.ts';
import {
  BadInputError,
  CredentialsRefusedError,
  EXIT,
  exitCodeOf,
  InterruptedError,
  isRetryable,
  oneLine,
  RunFailedError,
  ServiceUnavailableError,
} from '#shared/core/errors.ts';
import { GroupCommit } from '#shared/core/group-commit.ts';
import { once } from '#shared/core/once.ts';
import {
  backoffMs,
  DEFAULT_RETRY,
  decideRetry,
  isRetryableNetworkError,
  isRetryableStatus,
  parseRetryAfter,
  withRetry,
} from '#shared/core/retry.ts';
import { deadline, ManualClock } from '#shared/core/time.ts';
import { KeycloakRefusedError } from '#shared/keycloak/errors.ts';
import { LazyQueue, MemoryQueue, MessageError, QueueSendError } from '#shared/queue/queue.ts';
import { sqsBatches } from '#shared/queue/sqs.ts';
import { IdFileError } from '#shared/sync/ids.ts';

describe('error taxonomy', () => {
  test('each kind has its exit code: 2 bad input, 3 unavailable or refused, 1 failed run, 130 interrupted', () => {
    assert.equal(exitCodeOf(new BadInputError('x')), EXIT.badInput);
    assert.equal(exitCodeOf(new ServiceUnavailableError('Cassandra', 'x')), EXIT.unavailable);
    assert.equal(exitCodeOf(new CredentialsRefusedError('Keycloak', 'x')), EXIT.unavailable);
    assert.equal(exitCodeOf(new RunFailedError('x')), EXIT.someFailed);
    assert.equal(exitCodeOf(new InterruptedError('x')), EXIT.interrupted);
    assert.equal(exitCodeOf(new Error('anything else')), EXIT.someFailed);
  });

  test('the jobs’ own errors are classified by type, not by their message', () => {
    assert.equal(exitCodeOf(new ConfigError('invalid sunbird_sync_block_size')), EXIT.badInput);
    assert.equal(exitCodeOf(new IdFileError('id file not found')), EXIT.badInput);
    assert.equal(exitCodeOf(new MessageError('message is not JSON')), EXIT.badInput);
    assert.equal(exitCodeOf(new KeycloakRefusedError('HTTP 500 would not matter here')), EXIT.unavailable);
    assert.equal(exitCodeOf(new QueueSendError('SQS refused 1 message(s)')), EXIT.unavailable);
  });

  test('handlers retry unavailable services and unknown errors, never bad input or refused credentials', () => {
    assert.equal(isRetryable(new ServiceUnavailableError('Kafka', 'x')), true);
    assert.equal(isRetryable(new Error('?')), true);
    assert.equal(isRetryable(new BadInputError('x')), false);
    assert.equal(isRetryable(new CredentialsRefusedError('Keycloak', 'x')), false);
  });

  test('an unavailable service names itself and where it was looked for', () => {
    const e = new ServiceUnavailableError('Cassandra', 'Cassandra is not reachable', {
      address: '10.0.0.1:9042',
    });
    assert.deepEqual([e.service, e.address, e.kind], ['Cassandra', '10.0.0.1:9042', 'service-unavailable']);
  });

  test('oneLine keeps the first line of a message (driver errors are multi-line)', () => {
    assert.equal(
      oneLine(new Error('All host(s) tried\n  at stack frame\n  at another')),
      'All host(s) tried',
    );
    assert.equal(oneLine('plain'), 'plain');
  });
});

describe('retry policy', () => {
  test('retryable statuses: 408, 429 and 5xx except 501 and 505', () => {
    const retryable = [408, 429, 500, 502, 503, 504, 599].filter(isRetryableStatus);
    assert.deepEqual(retryable, [408, 429, 500, 502, 503, 504, 599]);
    assert.deepEqual([200, 400, 401, 403, 404, 413, 501, 505].filter(isRetryableStatus), []);
  });

  test('network errors by code: resets, refusals, timeouts; not programming errors', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'])
      assert.equal(isRetryableNetworkError(Object.assign(new Error(), { code })), true, code);
    assert.equal(isRetryableNetworkError(new TypeError('x is not a function')), false);
  });

  test('Retry-After as delta-seconds and as an HTTP date; garbage is ignored', () => {
    const now = Date.parse('Mon, 01 Jan 2024 10:00:00 GMT');
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter(['7', '9']), 7000);
    assert.equal(parseRetryAfter('Mon, 01 Jan 2024 10:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Mon, 01 Jan 2024 09:00:00 GMT', now), 0, 'a date in the past means now');
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(parseRetryAfter(' '), undefined);
  });

  test('backoff doubles per retry with equal jitter, capped', () => {
    const p = { minBackoffMs: 100, maxBackoffMs: 1000 };
    assert.equal(
      backoffMs(0, p, () => 0),
      50,
    );
    assert.equal(
      backoffMs(0, p, () => 1),
      100,
    );
    assert.equal(
      backoffMs(2, p, () => 1),
      400,
    );
    assert.equal(
      backoffMs(10, p, () => 1),
      1000,
    );
    assert.equal(
      backoffMs(10, p, () => 0),
      500,
    );
  });

  test('a Retry-After is obeyed (never earlier), and one beyond the cap ends the retries with a reason', () => {
    const d = decideRetry(0, DEFAULT_RETRY, 3000, () => 0);
    assert.deepEqual(d, { retry: true, waitMs: 3000 });
    const late = decideRetry(0, DEFAULT_RETRY, 120_000);
    assert.equal(late.retry, false);
    assert.match(late.retry ? '' : (late.reason ?? ''), /Retry-After of 120 s exceeds the 60 s cap/);
    assert.deepEqual(decideRetry(DEFAULT_RETRY.maxRetries, DEFAULT_RETRY), { retry: false });
  });

  test('withRetry retries what is retryable, up to the limit, waiting as decided', async () => {
    const waits: number[] = [];
    let calls = 0;
    const policy = { ...DEFAULT_RETRY, maxRetries: 3, minBackoffMs: 10, maxBackoffMs: 10 };
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new ServiceUnavailableError('X', 'down');
        },
        { policy, retryable: isRetryable, wait: async (ms) => void waits.push(ms) },
      ),
      ServiceUnavailableError,
    );
    assert.equal(calls, 4);
    assert.equal(waits.length, 3);
    calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new BadInputError('no');
        },
        { policy, retryable: isRetryable, wait: async () => {} },
      ),
    );
    assert.equal(calls, 1, 'bad input is never retried');
  });

  test('withRetry can retry a result (an HTTP answer) and honours its Retry-After', async () => {
    const waits: number[] = [];
    const answers = [503, 503, 200];
    const out = await withRetry(async () => answers.shift()!, {
      policy: { ...DEFAULT_RETRY, maxRetries: 5 },
      retryable: () => false,
      retryResult: (s) => (s === 503 ? { retryAfterMs: 1000 } : undefined),
      wait: async (ms) => void waits.push(ms),
    });
    assert.equal(out, 200);
    assert.equal(waits.length, 2);
    assert.ok(waits.every((w) => w >= 1000));
  });
});

describe('bounded concurrency', () => {
  test('never more than the limit in flight, results in input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([...Array(20).keys()], 3, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return n * 2;
    });
    assert.equal(peak, 3);
    assert.deepEqual(
      out,
      [...Array(20).keys()].map((n) => n * 2),
    );
  });

  test('after a failure no new item starts, the ones in flight finish, and the first error comes back', async () => {
    const started: number[] = [];
    let finished = 0;
    await assert.rejects(
      mapLimit([...Array(10).keys()], 2, async (n) => {
        started.push(n);
        await new Promise((r) => setImmediate(r));
        if (n === 1) throw new Error('fatal');
        finished++;
      }),
      /fatal/,
    );
    assert.ok(started.length <= 3, String(started));
    assert.equal(finished, started.length - 1);
  });

  test('an empty list and a limit of 0 are fine', async () => {
    assert.deepEqual(await mapLimit([], 4, async () => 1), []);
    assert.deepEqual(await mapLimit([1, 2], 0, async (n) => n), [1, 2]);
  });
});

describe('group commit', () => {
  test('an idle writer writes at once; items submitted meanwhile go out together in the next write', async () => {
    const writes: number[][] = [];
    const gates: Array<() => void> = [];
    const gc = new GroupCommit<number>(
      async (items) => {
        writes.push(items);
        await new Promise<void>((r) => gates.push(r));
      },
      { maxBatch: 3, maxInFlight: 1 },
    );
    const done: number[] = [];
    const all = [1, 2, 3, 4, 5, 6].map((n) => gc.submit(n).then(() => done.push(n)));
    assert.deepEqual(writes, [[1]], 'the first item is written alone, without waiting for others');
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(writes, [[1], [2, 3, 4]], 'the next write carries up to maxBatch waiting items');
    assert.deepEqual(done, [1], 'an item settles only when its own write is done');
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
    gates.shift()!();
    await Promise.all(all);
    assert.deepEqual(writes, [[1], [2, 3, 4], [5, 6]]);
    assert.deepEqual(done, [1, 2, 3, 4, 5, 6]);
  });

  test('a failed write rejects every item it carried, and later writes go on', async () => {
    let calls = 0;
    const gc = new GroupCommit<string>(
      async (items) => {
        calls++;
        if (items.includes('bad')) throw new Error('write refused');
      },
      { maxBatch: 10, maxInFlight: 1 },
    );
    const first = gc.submit('ok');
    const second = gc.submit('bad');
    const third = gc.submit('also carried');
    await first;
    await assert.rejects(second, /write refused/);
    await assert.rejects(
      third,
      /write refused/,
      'the item that shared the failed write is not reported done',
    );
    await gc.submit('later');
    assert.equal(calls, 3);
  });

  test('a writer that throws synchronously rejects instead of crashing', async () => {
    const gc = new GroupCommit<number>(
      (() => {
        throw new Error('sync throw');
      }) as unknown as (items: number[]) => Promise<void>,
      { maxBatch: 2, maxInFlight: 2 },
    );
    await assert.rejects(gc.submit(1), /sync throw/);
  });
});

describe('once', () => {
  test('concurrent and later calls share the first result; a failure is forgotten and tried again', async () => {
    let calls = 0;
    const value = once(async () => {
      calls++;
      if (calls === 1) throw new Error('first attempt fails');
      return calls;
    });
    await assert.rejects(value(), /first attempt fails/);
    const [a, b] = await Promise.all([value(), value()]);
    assert.deepEqual([a, b, await value(), calls], [2, 2, 2, 2]);
  });
});

describe('time', () => {
  test('the virtual clock wakes concurrent sleepers in time order, without real waiting', async () => {
    const clock = new ManualClock(0);
    const woke: Array<[string, number]> = [];
    await Promise.all([
      clock.sleep(300).then(() => woke.push(['b', clock.now()])),
      clock.sleep(100).then(() => woke.push(['a', clock.now()])),
      clock.sleep(500).then(() => woke.push(['c', clock.now()])),
    ]);
    assert.deepEqual(woke, [
      ['a', 100],
      ['b', 300],
      ['c', 500],
    ]);
  });

  test('a deadline counts down on its clock and never goes negative', () => {
    const clock = new ManualClock(1000);
    const d = deadline(500, clock);
    assert.equal(d.left(), 500);
    clock.advance(400);
    assert.equal(d.passed(), false);
    clock.advance(200);
    assert.deepEqual([d.left(), d.passed()], [0, true]);
  });
});

describe('queues', () => {
  test('the in-memory queue applies backpressure: a sender waits while it is full', async () => {
    const q = new MemoryQueue(2);
    await q.send(['a', 'b']);
    let sent = false;
    const p = q.send(['c']).then(() => {
      sent = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(sent, false);
    assert.equal(await q.take(), 'a');
    await p;
    assert.equal(sent, true);
  });

  test('closed and drained, it answers null; sending to a closed queue fails', async () => {
    const q = new MemoryQueue();
    await q.send(['x']);
    q.close();
    assert.equal(await q.take(), 'x');
    assert.equal(await q.take(), null);
    await assert.rejects(q.send(['y']), QueueSendError);
  });

  test('a released message comes back, even after the queue was closed: nothing is lost', async () => {
    const q = new MemoryQueue();
    await q.send(['m']);
    const [got] = (await q.receive()) ?? [];
    q.close();
    await got?.release();
    assert.equal(await q.take(), 'm');
  });

  test('a lazy queue makes its queue on the first send or receive, once, and passes both through', async () => {
    const inner = new MemoryQueue();
    let made = 0;
    const q = new LazyQueue(
      once(async () => {
        made++;
        return inner;
      }),
    );
    assert.equal(made, 0, 'nothing made before use');
    await Promise.all([q.send(['a']), q.send(['b'])]);
    const [got] = (await q.receive()) ?? [];
    assert.equal(got?.body, 'a');
    assert.equal(inner.size, 1);
    assert.equal(made, 1);
  });

  test('SQS batches hold at most 10 messages and 250,000 bytes', () => {
    assert.deepEqual(
      sqsBatches(Array.from({ length: 23 }, (_, i) => String(i))).map((b) => b.length),
      [10, 10, 3],
    );
    const big = 'x'.repeat(100_000);
    assert.deepEqual(
      sqsBatches([big, big, big, 'y']).map((b) => b.length),
      [2, 2],
    );
    assert.deepEqual(sqsBatches([]), []);
  });
});
