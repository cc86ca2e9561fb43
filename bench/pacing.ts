/**
 * `npm run bench -- pacing [--capacity 100] [--seconds 60] [--follow 30] [--rounds 1] [--concurrency 16]`
 *
 * Adaptive pacing against the Sync API stand-in with a capacity C (a token bucket of C requests/s, 429
 * with Retry-After beyond it, latency growing with load), in its own process. A local run (`runLocal`,
 * the CLI's path, with the real undici client and in-memory ledger) syncs blocks of 100 ids:
 *
 * - auto (`--pace auto`, up to --concurrency in flight) for --seconds at C, then C is halved through the
 *   stand-in's admin route and the run goes on for --follow seconds;
 * - fixed, the runbook's Talend pacing: block 100, sleep 10,000 ms, one call at a time;
 * - fixed, 8 calls in flight and no sleep (each 429 waits out its own Retry-After in the client).
 *
 * Throughput is counted from the answers (200s per second); 429s from every attempt, retries included.
 * Targets (issue 15): auto reaches ≥ 90 % of C within 30 s and keeps ≥ 90 % with ≤ 2 % of requests
 * answered 429; when C halves it follows within 10 s (≥ 90 % of C/2 from then on) without failed blocks.
 * Rounds are interleaved way by way; medians are reported. Needs no services.
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { type BenchResult, median, metText, printResult, startStandin } from '#bench/_report.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import { runLocal } from '#shared/sync/local.ts';
import { MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import { RunPacer } from '#shared/sync/pacing.ts';
import type { SyncApi, SyncCallResult, SyncOptions } from '#shared/sync/ports.ts';
import type { StartRunRequest } from '#shared/sync/run.ts';

const { values } = parseArgs({
  options: {
    capacity: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '60' },
    follow: { type: 'string', default: '30' },
    'fixed-seconds': { type: 'string', default: '25' },
    rounds: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '16' },
    /** Print the auto way's answers per second (200s/429s). */
    trace: { type: 'boolean', default: false },
  },
});

function positive(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`bench pacing: --${name} expects a number > 0, got "${v}"`);
    process.exit(2);
  }
  return n;
}

const C = positive('capacity', values.capacity);
const autoSeconds = positive('seconds', values.seconds);
const followSeconds = positive('follow', values.follow);
const fixedSeconds = positive('fixed-seconds', values['fixed-seconds']);
const rounds = Math.round(positive('rounds', values.rounds));
const concurrency = Math.round(positive('concurrency', values.concurrency));
const BLOCK = 100;

/** Every attempt's answer (ms since the way started, status; null = none) and the blocks that failed. */
interface Trace {
  attempts: Array<{ at: number; status: number | null }>;
  /** The auto pacer's allowed rate and decreases so far, once a second. */
  rates: Array<{ rate: number; decreases: number }>;
  failedBlocks: number;
}

/** The real client, with every attempt noted on the way to the pacer. */
class Observed implements SyncApi {
  readonly trace: Trace = { attempts: [], rates: [], failedBlocks: 0 };
  readonly #inner: SyncApi;
  readonly #start = performance.now();
  constructor(inner: SyncApi) {
    this.#inner = inner;
  }
  check(signal?: AbortSignal): Promise<void> {
    return this.#inner.check(signal);
  }
  sync(objectType: string, ids: string[], options: SyncOptions = {}): Promise<SyncCallResult> {
    return this.#inner.sync(objectType, ids, {
      ...options,
      onAttempt: (a) => {
        this.trace.attempts.push({ at: performance.now() - this.#start, status: a.status });
        options.onAttempt?.(a);
      },
    });
  }
}

interface Way {
  name: string;
  pace: 'auto' | 'fixed';
  sleepMs: number;
  workers: number;
  seconds: number;
  /** Halve the capacity this many seconds in. */
  halveAt?: number;
}

async function admin(base: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`stand-in ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
}

/** One way for its time against a fresh bucket of capacity C. */
async function measure(base: string, way: Way): Promise<Trace> {
  await admin(base, 'POST', '/__admin/reset');
  const client = new SyncApiClient({
    endpoint: `${base}/v1/data/sync`,
    connections: way.workers,
    maxRetries: 5,
  });
  const api = new Observed(client);
  const pacer = new RunPacer({ maxConcurrency: way.workers });
  const sampler = setInterval(() => {
    const { rate, decreases } = pacer.auto.state();
    api.trace.rates.push({ rate, decreases });
  }, 1000);
  const blocks = Math.ceil((way.pace === 'auto' ? C * 1.2 : way.workers * 50) * way.seconds) + 10;
  const req: StartRunRequest = {
    job: 'sync',
    objectType: 'user',
    table: 'user',
    keyspace: 'bench',
    dryRun: false,
    verify: false,
    blockSize: BLOCK,
    sleepMs: way.sleepMs,
    ...(way.pace === 'auto' ? { pace: 'auto' as const } : {}),
    ids: Array.from({ length: blocks * BLOCK }, (_, i) => `bench-${i}`),
    source: 'bench pacing',
  };
  const stop = new AbortController();
  const timers = [setTimeout(() => stop.abort(), way.seconds * 1000)];
  if (way.halveAt !== undefined) {
    timers.push(
      setTimeout(() => {
        admin(base, 'POST', '/__admin/capacity', { requestsPerSecond: C / 2 }).catch((err: unknown) => {
          console.error(`could not halve the capacity: ${(err as Error).message}`);
          stop.abort();
        });
      }, way.halveAt * 1000),
    );
  }
  try {
    await runLocal(
      req,
      { ids: new MemoryIdSource({}), ledger: new MemoryRunLedger(), syncApi: api, pacer },
      {
        onBlockDone: (_b, outcome) => {
          if (outcome.status === 'failed') api.trace.failedBlocks++;
        },
      },
      { workerConcurrency: way.workers, signal: stop.signal },
    );
  } finally {
    for (const t of timers) clearTimeout(t);
    clearInterval(sampler);
    await client.close();
  }
  return api.trace;
}

/** Answers in [fromS, toS): 200s per second and the share answered 429. */
function window(trace: Trace, fromS: number, toS: number): { okPerSecond: number; throttled: number } {
  const inside = trace.attempts.filter((a) => a.at >= fromS * 1000 && a.at < toS * 1000);
  const ok = inside.filter((a) => a.status === 200).length;
  const throttled = inside.filter((a) => a.status === 429).length;
  return { okPerSecond: ok / (toS - fromS), throttled: inside.length ? throttled / inside.length : 0 };
}

/** First second by whose end the trailing 5 s averaged ≥ `share` of `capacity` (Infinity: never). */
function reachedAt(trace: Trace, capacity: number, share: number, fromS: number, toS: number): number {
  for (let s = fromS + 5; s <= toS; s++) {
    if (window(trace, s - 5, s).okPerSecond >= share * capacity) return s - fromS;
  }
  return Number.POSITIVE_INFINITY;
}

/** `second:200s/429s(allowed rate,-decreases so far)` for each second of a way. */
function perSecondLine(trace: Trace, seconds: number): string {
  const out: string[] = [];
  for (let s = 0; s < seconds; s++) {
    const inside = trace.attempts.filter((a) => a.at >= s * 1000 && a.at < (s + 1) * 1000);
    const r = trace.rates[s];
    const pacer = r ? `(${r.rate.toFixed(0)}${r.decreases ? `,-${r.decreases}` : ''})` : '';
    out.push(
      `${s}:${inside.filter((a) => a.status === 200).length}/${inside.filter((a) => a.status === 429).length}${pacer}`,
    );
  }
  return out.join(' ');
}

interface Summary {
  steady: number;
  throttled: number;
  reached: number;
  followed: number;
  followThroughput: number;
  followThrottled: number;
  failedBlocks: number;
}

function summariseAuto(trace: Trace): Summary {
  const h = autoSeconds;
  const end = autoSeconds + followSeconds;
  return {
    steady: window(trace, 30, h).okPerSecond / C,
    throttled: window(trace, 0, h).throttled,
    reached: reachedAt(trace, C, 0.9, 0, h),
    followed: reachedAt(trace, C / 2, 0.9, h, end),
    followThroughput: window(trace, h + 10, end).okPerSecond / (C / 2),
    followThrottled: window(trace, h, end).throttled,
    failedBlocks: trace.failedBlocks,
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const secs = (x: number) => (Number.isFinite(x) ? `${x} s` : 'never');

function report(autos: Summary[], talend: Trace[], eight: Trace[]): BenchResult {
  const m = (f: (s: Summary) => number) => median(autos.map(f));
  const fixedRow = (traces: Trace[], seconds: number) => ({
    throughput: median(traces.map((t) => window(t, 0, seconds).okPerSecond / C)),
    throttled: median(traces.map((t) => window(t, 0, seconds).throttled)),
    failed: median(traces.map((t) => t.failedBlocks)),
  });
  const t = fixedRow(talend, fixedSeconds);
  const e = fixedRow(eight, fixedSeconds);
  const steady = m((s) => s.steady);
  const follow = m((s) => s.followThroughput);
  return {
    bench: 'pacing',
    rows: [
      {
        measure: `auto: throughput / C (C = ${C} requests/s, 30 s to ${autoSeconds} s)`,
        value: `${(steady * C).toFixed(1)} calls/s`,
        ratio: steady,
        target: '≥ 0.90',
        met: steady >= 0.9,
      },
      {
        measure: 'auto: requests answered 429',
        value: pct(m((s) => s.throttled)),
        ratio: null,
        target: '≤ 2 %',
        met: m((s) => s.throttled) <= 0.02,
      },
      {
        measure: 'auto: 90 % of C reached after',
        value: secs(m((s) => s.reached)),
        ratio: null,
        target: '≤ 30 s',
        met: m((s) => s.reached) <= 30,
      },
      {
        measure: 'auto, C halved: 90 % of C/2 reached after',
        value: secs(m((s) => s.followed)),
        ratio: null,
        target: '≤ 10 s',
        met: m((s) => s.followed) <= 10,
      },
      {
        measure: 'auto, C halved: throughput / (C/2) from 10 s after',
        value: `${(follow * (C / 2)).toFixed(1)} calls/s`,
        ratio: follow,
        target: '≥ 0.90',
        met: follow >= 0.9,
      },
      {
        measure: 'auto, C halved: 429s / failed blocks after',
        value: `${pct(m((s) => s.followThrottled))} / ${m((s) => s.failedBlocks)}`,
        ratio: null,
        target: '≤ 2 % / 0',
        met: m((s) => s.followThrottled) <= 0.02 && m((s) => s.failedBlocks) === 0,
      },
      {
        measure: 'fixed, Talend pacing (block 100, sleep 10,000 ms): throughput / C',
        value: `${(t.throughput * C).toFixed(2)} calls/s, ${pct(t.throttled)} 429`,
        ratio: t.throughput,
        target: '—',
        met: null,
      },
      {
        measure: 'fixed, 8 in flight, sleep 0: throughput / C',
        value: `${(e.throughput * C).toFixed(1)} calls/s, ${pct(e.throttled)} 429, ${e.failed} failed blocks`,
        ratio: e.throughput,
        target: '—',
        met: null,
      },
    ],
  };
}

function printTable(result: BenchResult): void {
  console.log(
    `\npacing: stand-in capacity C = ${C} requests/s (${C * BLOCK} ids/s at block ${BLOCK}), ${rounds} round(s), medians\n`,
  );
  console.log('| measure | value | ratio | target | |');
  console.log('|---|---:|---:|---|---|');
  for (const r of result.rows) {
    const ratio = r.ratio === null ? '' : `${r.ratio.toFixed(3)}×`;
    console.log(`| ${r.measure} | ${r.value} | ${ratio} | ${r.target} | ${metText(r.met)} |`);
  }
}

let standin: ChildProcess | undefined;
try {
  const s = await startStandin(['--capacity', String(C)]);
  standin = s.proc;
  const ways: Way[] = [
    {
      name: 'auto',
      pace: 'auto',
      sleepMs: 0,
      workers: concurrency,
      seconds: autoSeconds + followSeconds,
      halveAt: autoSeconds,
    },
    { name: 'talend', pace: 'fixed', sleepMs: 10_000, workers: 1, seconds: fixedSeconds },
    { name: 'eight', pace: 'fixed', sleepMs: 0, workers: 8, seconds: fixedSeconds },
  ];
  const autos: Summary[] = [];
  const talend: Trace[] = [];
  const eight: Trace[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const way of ways) {
      process.stderr.write(`round ${round}/${rounds}: ${way.name} for ${way.seconds} s\n`);
      const trace = await measure(s.url, way);
      if (way.name === 'auto' && values.trace) process.stderr.write(`${perSecondLine(trace, way.seconds)}\n`);
      if (way.name === 'auto') autos.push(summariseAuto(trace));
      else (way.name === 'talend' ? talend : eight).push(trace);
    }
  }
  const result = report(autos, talend, eight);
  printTable(result);
  printResult(result);
} finally {
  standin?.kill('SIGTERM');
}
