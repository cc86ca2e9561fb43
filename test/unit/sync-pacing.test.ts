/**
 * Adaptive pacing (`--pace auto`) on a manual clock: the auto pacer against simulated Sync APIs (a token
 * bucket of C calls/s, scripted answers), its caps, Retry-After, and how the run, the Lambda handler and
 * the configuration choose it. No real time passes: every number below is virtual and exact.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Context } from 'aws-lambda';
import { toSqsEvent } from '#scripts/offline/sqs-bridge.ts';
import { effectiveConcurrency, loadFlatConfig } from '#shared/config.ts';
import { ManualClock } from '#shared/core/time.ts';
import { parseStartPayload } from '#shared/fanout/payload.ts';
import { createLogger } from '#shared/logger.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import { createSyncBlockHandler } from '#shared/sync/handler.ts';
import { runLocal } from '#shared/sync/local.ts';
import { FakeSyncApi, MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import type { Block, RunSettings } from '#shared/sync/messages.ts';
import {
  AutoPacer,
  achievedRate,
  estimateRunTime,
  humanDuration,
  type Pacer,
  RunPacer,
} from '#shared/sync/pacing.ts';
import type { AttemptReport, SyncApi, SyncCallResult, SyncOptions } from '#shared/sync/ports.ts';
import { syncRequest } from '#shared/sync/request.ts';
import { CapacityApi } from '#test/support/capacity-api.ts';

function autoRun(over: Partial<RunSettings> = {}): RunSettings {
  return {
    runId: 'r-auto',
    job: 'sync',
    objectType: 'user',
    dryRun: false,
    verify: false,
    blockSize: 100,
    sleepMs: 10_000,
    pace: 'auto',
    ...over,
  };
}

/** `workers` loops calling `api` through `pacer` until the clock reaches `untilMs`; `at(ms)` hooks time. */
async function drive(
  clock: ManualClock,
  pacer: Pacer,
  api: SyncApi,
  run: RunSettings,
  opts: { workers: number; untilMs: number; at?: (now: number) => void },
): Promise<void> {
  const worker = async (): Promise<void> => {
    while (clock.now() < opts.untilMs) {
      opts.at?.(clock.now());
      if (!(await pacer.before(run))) return;
      try {
        await api.sync('user', ['x'], {
          onAttempt: (a) => pacer.observe(run, a),
          beforeRetry: () => pacer.before(run, undefined, { retry: true }),
        });
      } finally {
        pacer.after(run);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, worker));
}

/** Attempts per virtual second: [second] → { ok, throttled }. */
function perSecond(attempts: Array<{ at: number; status: number }>, from: number, to: number) {
  const out: Array<{ ok: number; throttled: number }> = [];
  for (let s = from; s < to; s++) out.push({ ok: 0, throttled: 0 });
  for (const a of attempts) {
    const s = Math.floor(a.at / 1000);
    if (s < from || s >= to) continue;
    if (a.status === 200) out[s - from]!.ok++;
    else out[s - from]!.throttled++;
  }
  return out;
}

/** A Sync API answering each attempt from `answer(n, now)` after `latencyMs(now)`, on the clock. */
class ScriptedApi implements SyncApi {
  readonly starts: number[] = [];
  readonly clock: ManualClock;
  readonly answer: (n: number) => { status: number; retryAfterMs?: number };
  readonly latencyMs: (now: number) => number;

  constructor(
    clock: ManualClock,
    answer: (n: number) => { status: number; retryAfterMs?: number },
    latencyMs: (now: number) => number = () => 20,
  ) {
    this.clock = clock;
    this.answer = answer;
    this.latencyMs = latencyMs;
  }

  async check(): Promise<void> {}

  async sync(_t: string, _ids: string[], options: SyncOptions = {}): Promise<SyncCallResult> {
    for (let attempt = 1; ; attempt++) {
      const sent = this.clock.now();
      this.starts.push(sent);
      const a = this.answer(this.starts.length);
      await this.clock.sleep(this.latencyMs(sent));
      const report: AttemptReport = { status: a.status, latencyMs: this.clock.now() - sent };
      if (a.retryAfterMs !== undefined) report.retryAfterMs = a.retryAfterMs;
      options.onAttempt?.(report);
      if (a.status === 200 || attempt > 3) {
        return {
          ok: a.status === 200,
          status: a.status,
          requestBody: '',
          responseBody: '',
          attempts: attempt,
        };
      }
      await this.clock.sleep(a.retryAfterMs ?? 500);
      await options.beforeRetry?.();
    }
  }
}

describe('auto pacing', () => {
  test('while answers are healthy and workers wait for it, the rate goes up', async () => {
    const clock = new ManualClock();
    const api = new CapacityApi({ clock, capacity: 100_000 });
    const pacer = new AutoPacer({ maxConcurrency: 16, clock });
    await drive(clock, pacer, api, autoRun(), { workers: 16, untilMs: 8_000 });
    const calls = perSecond(api.attempts, 0, 8).map((s) => s.ok);
    for (let i = 1; i < calls.length; i++) assert.ok(calls[i]! >= calls[i - 1]!, String(calls));
    assert.ok(calls[7]! >= 8 * calls[0]!, String(calls));
    assert.equal(pacer.state().decreases, 0);
    assert.ok(api.attempts.every((a) => a.status === 200));
  });

  test('a 429 with Retry-After holds every worker until it has passed, and the rate goes down', async () => {
    const clock = new ManualClock();
    let throttledAt = -1;
    const api = new ScriptedApi(clock, (n) => {
      if (n !== 40) return { status: 200 };
      throttledAt = clock.now();
      return { status: 429, retryAfterMs: 3_000 };
    });
    const pacer = new AutoPacer({ maxConcurrency: 8, clock });
    let rateBefore = 0;
    await drive(clock, pacer, api, autoRun(), {
      workers: 8,
      untilMs: 20_000,
      at: () => {
        if (throttledAt < 0) rateBefore = pacer.state().rate;
      },
    });
    assert.ok(throttledAt > 0, 'the 429 was sent');
    const answeredAt = throttledAt + 20;
    const during = api.starts.filter((t) => t > throttledAt && t < answeredAt + 3_000);
    const sentBefore = api.starts.filter((t) => t > throttledAt && t < answeredAt);
    assert.deepEqual(during, sentBefore, 'nothing starts from the 429 until its Retry-After has passed');
    assert.ok(
      api.starts.some((t) => t >= answeredAt + 3_000),
      'calls resume after it',
    );
    assert.equal(pacer.state().decreases, 1);
    assert.ok(pacer.state().ceiling! <= rateBefore, 'the cut starts from the rate that met the 429');
  });

  test('the rate keeps under --max-rate, whatever the API could take', async () => {
    const clock = new ManualClock();
    const api = new CapacityApi({ clock, capacity: 100_000 });
    const pacer = new AutoPacer({ maxConcurrency: 16, clock });
    await drive(clock, pacer, api, autoRun({ maxRate: 30 }), { workers: 16, untilMs: 20_000 });
    const starts = api.attempts.map((a) => a.at).sort((a, b) => a - b);
    let most = 0;
    for (let i = 0, j = 0; i < starts.length; i++) {
      while (starts[i]! - starts[j]! >= 1000) j++;
      most = Math.max(most, i - j + 1);
    }
    assert.ok(most <= 31, `at most 30 calls in any second, and one late timer's credit (saw ${most})`);
    const lastFive = perSecond(api.attempts, 15, 20).reduce((n, s) => n + s.ok, 0);
    assert.ok(lastFive >= 5 * 28, `it reaches the cap (${lastFive} calls in the last 5 s)`);
  });

  test('calls in flight never exceed the concurrency ceiling, and reach it when answers are slow', async () => {
    const clock = new ManualClock();
    const api = new CapacityApi({ clock, capacity: 100_000, latencyMs: () => 400 });
    const pacer = new AutoPacer({ maxConcurrency: 3, clock });
    await drive(clock, pacer, api, autoRun(), { workers: 12, untilMs: 30_000 });
    assert.equal(api.maxInFlight, 3);
    assert.ok(pacer.state().rate <= 2 * (3 / 0.4), 'an unused rate does not run away');
  });

  test('latency rising well above its baseline slows it down', async () => {
    const clock = new ManualClock();
    let slowFrom = Number.POSITIVE_INFINITY;
    const api = new ScriptedApi(
      clock,
      () => ({ status: 200 }),
      (now) => (now >= slowFrom ? 300 : 20),
    );
    const pacer = new AutoPacer({ maxConcurrency: 32, clock });
    let rateWhenSlowed = 0;
    await drive(clock, pacer, api, autoRun(), {
      workers: 32,
      untilMs: 16_000,
      at: (now) => {
        if (now >= 10_000 && slowFrom === Number.POSITIVE_INFINITY) {
          slowFrom = now;
          rateWhenSlowed = pacer.state().rate;
        }
      },
    });
    assert.ok(pacer.state().decreases >= 1);
    assert.ok(pacer.state().rate < rateWhenSlowed, `${pacer.state().rate} < ${rateWhenSlowed}`);
  });

  test('answers to calls sent before a cut do not cut again', async () => {
    const clock = new ManualClock();
    const pacer = new AutoPacer({ maxConcurrency: 8, initialRate: 100, clock });
    const run = autoRun();
    for (let i = 0; i < 3; i++) assert.equal(await pacer.before(run), true);
    clock.advance(50);
    pacer.observe(run, { status: 503, latencyMs: 50 });
    const after1 = pacer.state();
    clock.advance(10);
    pacer.observe(run, { status: 503, latencyMs: 60 });
    pacer.observe(run, { status: null, latencyMs: 60 });
    assert.equal(pacer.state().decreases, 1);
    assert.equal(pacer.state().rate, after1.rate);
    pacer.observe(run, { status: 503, latencyMs: 5 });
    assert.equal(pacer.state().decreases, 2, 'an answer to a call sent after the cut does');
  });

  test('a stray 429 among many good answers only trims the rate; 429s that keep coming halve it', async () => {
    const clock = new ManualClock();
    const pacer = new AutoPacer({ maxConcurrency: 8, initialRate: 100, clock });
    const run = autoRun();
    const answer = (status: number) => pacer.observe(run, { status, latencyMs: 0 });
    /** Good answers at 100 a second (more than the rate allows: the rate is what limits). */
    const healthy = (ms: number) => {
      for (let t = 0; t < ms; t += 10) {
        clock.advance(10);
        answer(200);
      }
    };
    answer(503); // leaves slow start
    const cut = (before: () => void, signal: number) => {
      before();
      const rate = pacer.state().rate;
      answer(signal);
      return pacer.state().rate / rate;
    };
    assert.equal(
      cut(() => healthy(5_000), 503),
      0.95,
      'alone, long after the last',
    );
    assert.equal(
      cut(() => healthy(1_000), 503),
      0.95,
      'soon after, but one in a hundred answers',
    );
    assert.equal(
      cut(() => healthy(50), 429),
      0.5,
      'soon after, and one in six answers',
    );
  });

  test('a cut starts from what got through when the rate allowed was above it', async () => {
    const clock = new ManualClock();
    const pacer = new AutoPacer({ maxConcurrency: 64, initialRate: 400, clock });
    const run = autoRun();
    pacer.observe(run, { status: 503, latencyMs: 0 }); // leaves slow start: 280 allowed
    for (let t = 0; t < 5_000; t += 20) {
      clock.advance(20);
      pacer.observe(run, { status: 200, latencyMs: 5 }); // but 50 a second get through
    }
    pacer.observe(run, { status: 429, latencyMs: 5 });
    const { ceiling, rate } = pacer.state();
    assert.ok(ceiling !== null && Math.abs(ceiling - 50) <= 1, `ceiling ${ceiling}`);
    assert.equal(rate, 0.95 * ceiling);
  });

  test('against a capacity C it settles near C with few 429s, and follows C when it halves', async () => {
    const clock = new ManualClock();
    const api = new CapacityApi({ clock, capacity: 50 });
    const pacer = new AutoPacer({ maxConcurrency: 16, clock });
    await drive(clock, pacer, api, autoRun(), {
      workers: 16,
      untilMs: 120_000,
      at: (now) => {
        if (now >= 60_000 && api.capacity === 50) api.setCapacity(25);
      },
    });
    const sum = (from: number, to: number) => perSecond(api.attempts, from, to).reduce((n, s) => n + s.ok, 0);
    const throttled = api.attempts.filter((a) => a.status === 429).length;
    assert.ok(sum(30, 60) / 30 >= 0.9 * 50, `before: ${sum(30, 60) / 30} calls/s of 50`);
    assert.ok(sum(70, 120) / 50 >= 0.9 * 25, `after halving: ${sum(70, 120) / 50} calls/s of 25`);
    assert.ok(throttled / api.attempts.length <= 0.02, `${throttled} of ${api.attempts.length} throttled`);
  });

  test('a retry waits for its turn but takes no place in flight', async () => {
    const clock = new ManualClock();
    const pacer = new AutoPacer({ maxConcurrency: 1, clock });
    const run = autoRun();
    assert.equal(await pacer.before(run), true);
    assert.equal(await pacer.before(run, undefined, { retry: true }), true);
    assert.equal(pacer.state().inFlight, 1);
    assert.ok(clock.now() >= 1000, 'the retry waited for the rate (1 call/s at first)');
    pacer.after(run);
    assert.equal(pacer.state().inFlight, 0);
  });

  test('dry runs are not paced; an aborted wait holds nothing', async () => {
    const clock = new ManualClock();
    const pacer = new AutoPacer({ maxConcurrency: 1, clock });
    for (let i = 0; i < 5; i++) assert.equal(await pacer.before(autoRun({ dryRun: true })), true);
    assert.deepEqual(clock.sleeps, []);
    assert.equal(await pacer.before(autoRun()), true);
    const ctl = new AbortController();
    const waiting = pacer.before(autoRun(), ctl.signal);
    ctl.abort();
    assert.equal(await waiting, false);
    assert.equal(pacer.state().inFlight, 1);
  });
});

describe('choosing the pacing', () => {
  test('a run asks for its pacing: fixed sleeps its sleep time, auto does not', async () => {
    const clock = new ManualClock();
    const pacer = new RunPacer({ maxConcurrency: 4, clock });
    const fixed = autoRun({ pace: undefined, sleepMs: 5_000 });
    for (let i = 0; i < 3; i++) {
      await pacer.before(fixed);
      pacer.after(fixed);
    }
    assert.deepEqual(clock.sleeps, [5_000, 5_000]);
    const auto = autoRun({ sleepMs: 5_000 });
    for (let i = 0; i < 5; i++) {
      await pacer.before(auto);
      pacer.observe(auto, { status: 200, latencyMs: 10 });
      pacer.after(auto);
    }
    assert.ok(
      clock.sleeps.slice(2).every((ms) => ms < 5_000),
      String(clock.sleeps),
    );
  });

  test('a local run with --pace auto keeps the workers within the concurrency and never sleeps the sleep time', async () => {
    const clock = new ManualClock();
    const api = new CapacityApi({ clock, capacity: 200 });
    const result = await runLocal(
      {
        job: 'sync',
        objectType: 'user',
        table: 'user',
        keyspace: 'ks',
        dryRun: false,
        verify: false,
        blockSize: 10,
        sleepMs: 10_000,
        pace: 'auto',
        ids: Array.from({ length: 2_000 }, (_, i) => `u${i}`),
        source: 'test',
      },
      {
        ids: new MemoryIdSource({}),
        ledger: new MemoryRunLedger(),
        syncApi: api,
        pacer: new RunPacer({ maxConcurrency: 4, clock }),
      },
      {},
      { workerConcurrency: 4 },
    );
    assert.equal(result.idsSucceeded, 2_000);
    assert.ok(api.maxInFlight <= 4);
    assert.ok(!clock.sleeps.includes(10_000));
    assert.ok(clock.now() < 200 * 10_000, 'far quicker than 200 calls × the sleep time');
  });

  test('in the sync-block handler a container keeps to its share of --max-rate, without the sleep time', async () => {
    const clock = new ManualClock();
    const api = new FakeSyncApi({ now: () => clock.now() });
    const handler = createSyncBlockHandler({
      syncApi: () => api,
      ledger: () => new MemoryRunLedger(),
      stage: () => new MemoryQueue(),
      logger: createLogger({ level: 'SILENT' }),
      pacer: new RunPacer({ maxConcurrency: 1, rateShare: 1 / 4, clock }),
    });
    const run = autoRun({ maxRate: 8, sleepMs: 10_000 });
    const blocks = Array.from(
      { length: 12 },
      (_, seq): Block => ({ type: 'block', run, rangeNo: 0, seq, ids: [`u${seq}`] }),
    );
    const res = await handler(sqsEvent(blocks.map((b) => JSON.stringify(b))), context());
    assert.deepEqual(res.batchItemFailures, []);
    const at = api.calls.map((c) => c.at);
    for (let i = 1; i < at.length; i++)
      assert.ok(at[i]! - at[i - 1]! >= 500, `8 / 4 containers = 2 calls/s: ${at}`);
    assert.ok(!clock.sleeps.includes(10_000));
  });

  test('a pacer wait the invocation has no time left for sends the block back, uncalled', async () => {
    const api = new FakeSyncApi();
    const handler = createSyncBlockHandler({
      syncApi: () => api,
      ledger: () => new MemoryRunLedger(),
      stage: () => new MemoryQueue(),
      logger: createLogger({ level: 'SILENT' }),
      reserveMs: 60_000,
    });
    const run = autoRun();
    const b: Block = { type: 'block', run, rangeNo: 0, seq: 0, ids: ['u1'] };
    const res = await handler(sqsEvent([JSON.stringify(b)]), context(30_000));
    assert.deepEqual(res.batchItemFailures, [{ itemIdentifier: 'm0' }]);
    assert.equal(api.calls.length, 0);
  });

  test('--pace and --max-rate from flags, context params or the environment; the concurrency follows the pace', () => {
    const cfg = loadFlatConfig({ env: {}, overrides: { pace: 'auto', 'max-rate': '2.5' } });
    assert.equal(cfg['sync.pace'], 'auto');
    assert.equal(cfg['sync.maxRate'], 2.5);
    assert.equal(effectiveConcurrency(undefined, cfg['sync.pace']), 8, 'auto: a ceiling of 8 unless told');
    const env = loadFlatConfig({ env: { SYNC_PACE: 'auto' } });
    assert.equal(env['sync.pace'], 'auto');
    assert.equal(effectiveConcurrency(3, env['sync.pace']), 3);
    assert.equal(
      effectiveConcurrency(undefined, loadFlatConfig({ env: {} })['sync.pace']),
      1,
      'fixed: one at a time, as the original',
    );
    assert.throws(() => loadFlatConfig({ env: {}, overrides: { pace: 'fast' } }), /--pace.*fixed or auto/);
    assert.throws(() => loadFlatConfig({ env: {}, overrides: { 'max-rate': '-1' } }), /--max-rate/);
  });

  test('an auto run carries its pacing in its blocks; a fixed run’s blocks are as before', () => {
    const base = { sunbird_cassandra_table: 'user' };
    const fixed = syncRequest(loadFlatConfig({ env: {}, overrides: base }), { source: 't' });
    assert.equal('pace' in fixed, false);
    assert.equal('maxRate' in fixed, false);
    const auto = syncRequest(
      loadFlatConfig({ env: {}, overrides: { ...base, pace: 'auto', 'max-rate': 3 } }),
      {
        source: 't',
      },
    );
    assert.deepEqual([auto.pace, auto.maxRate], ['auto', 3]);
    const payload = parseStartPayload({ objectType: 'user', pace: 'auto', maxRate: 1.5 });
    assert.deepEqual([payload.pace, payload.maxRate], ['auto', 1.5]);
  });
});

describe('time-to-resync', () => {
  test('before a run: the sleep is the floor of fixed pacing; auto shows the scale and the cap', () => {
    const fixed = estimateRunTime(1_000_000, autoRun({ pace: undefined, sleepMs: 5_000 }), 1);
    assert.match(
      fixed,
      /1,000,000 ids in 10,000 calls, 5000 ms apart: at least 13h53m plus each call’s own time/,
    );
    const auto = estimateRunTime(1_000_000, autoRun({ maxRate: 10 }), 8);
    assert.match(auto, /up to 8 in flight/);
    assert.match(auto, /at 1 calls\/s 2h46m/);
    assert.match(auto, /--max-rate of 10 calls\/s: 16m40s/);
    assert.match(estimateRunTime(500, autoRun({ dryRun: true }), 1), /dry run/);
  });

  test('after a run: the achieved rate, and what it means for ten million ids', () => {
    assert.equal(
      achievedRate(1_000, 10, 10_000),
      'achieved 100.0 ids/s (1.00 calls/s); 10,000,000 ids at this rate: 27h46m',
    );
    assert.deepEqual([45_000, 750_000, 50_000_000, 200 * 3_600_000].map(humanDuration), [
      '45s',
      '12m30s',
      '13h53m',
      '8d08h',
    ]);
  });
});

const ARN = 'arn:aws:sqs:us-east-1:000000000000:q';
function context(remainingMs = 900_000): Context {
  return {
    getRemainingTimeInMillis: () => remainingMs,
    awsRequestId: 'req',
    functionName: 'fn',
  } as unknown as Context;
}
function sqsEvent(bodies: string[]) {
  return toSqsEvent(
    bodies.map((Body, i) => ({ MessageId: `m${i}`, ReceiptHandle: `h${i}`, Body })),
    ARN,
    'us-east-1',
  );
}
