/**
 * Pacing of Sync API calls, two ways, chosen per run (`run.pace`):
 *
 * - fixed (the default, the original job's way): it slept `sleep` ms after each call before the next.
 *   Across several workers (CLI `--concurrency`, or the blocks of one Lambda batch) the same spacing
 *   holds: a call may start only `sleep` ms after the previous call started, and `sleep` ms after it
 *   ended. Dry runs and a sleep of 0 are not paced.
 * - auto (`--pace auto`): the pacer finds the API's capacity by itself and the sleep time is not
 *   applied (it is the fixed pacing that auto replaces). See `AutoPacer`.
 *
 * A pacer is told each attempt's answer (`observe`: status, latency, Retry-After) as it arrives, so an
 * adaptive one can slow every worker down at the first 429 rather than when the call's retries are over.
 */
import { type Clock, systemClock } from '#shared/core/time.ts';
import type { RunSettings } from '#shared/sync/messages.ts';
import type { AttemptReport } from '#shared/sync/ports.ts';

export interface PaceOptions {
  /** A retry of a call in flight: it waits for its turn, but its call already holds its place. */
  retry?: boolean;
}

export interface Pacer {
  /**
   * Waits until a call of this run may start. True: go (the pacer counts the call in flight until
   * `after`, unless it is a retry); false: `signal` aborted first and nothing is held.
   */
  before(run: RunSettings, signal?: AbortSignal, opts?: PaceOptions): Promise<boolean>;
  /** One attempt of a call of this run got its answer (or none): what an adaptive pacer learns from. */
  observe(run: RunSettings, attempt: AttemptReport): void;
  /** A call of this run has ended (each `before` that returned true is matched by one `after`). */
  after(run: RunSettings): void;
}

export class FixedPacer implements Pacer {
  readonly #clock: Clock;
  #nextCallAt = 0;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  static paced(run: RunSettings): boolean {
    return !run.dryRun && run.sleepMs > 0;
  }

  async before(run: RunSettings, signal?: AbortSignal, opts: PaceOptions = {}): Promise<boolean> {
    // The original retried nothing; our retries keep their own backoff, unpaced, as before.
    if (!FixedPacer.paced(run) || opts.retry) return !signal?.aborted;
    for (
      let wait = this.#nextCallAt - this.#clock.now();
      wait > 0;
      wait = this.#nextCallAt - this.#clock.now()
    ) {
      if (signal?.aborted) return false;
      await this.#clock.sleep(wait, signal);
    }
    if (signal?.aborted) return false;
    this.#nextCallAt = this.#clock.now() + run.sleepMs;
    return true;
  }

  observe(): void {}

  after(run: RunSettings): void {
    if (FixedPacer.paced(run)) this.#nextCallAt = Math.max(this.#nextCallAt, this.#clock.now() + run.sleepMs);
  }
}

/** Answers that say "slow down": throttling, an overloaded gateway or service, or no answer at all. */
export function isCongestion(status: number | null): boolean {
  return status === null || status === 429 || status === 502 || status === 503 || status === 504;
}

/** The auto pacer's constants (exported for the documentation and the tests). */
export const AUTO_PACE = {
  /** Decisions to go faster (or slower on latency) are taken once per interval of at least this... */
  intervalMs: 1000,
  /** ...and long enough to hold about this many calls at the current rate. */
  callsPerInterval: 2,
  /** Calls per second to start from. */
  initialRate: 1,
  /** Never slower than this (calls per second), except while a Retry-After is being waited out. */
  minRate: 0.05,
  /** A congestion signal keeps this share of the rate... */
  decrease: 0.95,
  /**
   * ...or this share when signals repeat: within `repeatWindowMs` of the previous decrease, with "slow
   * down" answers at least `repeatShare` of the answers to calls sent since then (so a capacity that
   * dropped is found in a step or two, while a stray 429 among many good answers only trims).
   */
  repeatDecrease: 0.5,
  repeatWindowMs: 3000,
  repeatShare: 0.05,
  /** Leaving slow start keeps this share of the rate the first signal came at. */
  slowStartDecrease: 0.7,
  /**
   * Additive increase per second, as a share of the rate at the last decrease (the ceiling): quickly
   * back to 90 % of it, slowly up to it, then a probe whose step grows by `probeGrowth` per second spent
   * above it (so a ceiling set too low is left behind, while one that is right is passed gently).
   */
  fastStep: 0.05,
  nearStep: 0.0025,
  probeGrowth: 0.002,
  /** An interval whose mean latency exceeds the baseline by both this factor and margin is congestion. */
  latencyFactor: 2.5,
  latencyMarginMs: 50,
  /** The latency baseline: the lowest interval mean of the last this many intervals. */
  baselineIntervals: 30,
  /** The window over which good answers per second are counted when a signal comes. */
  goodputWindowMs: 2000,
  /** Latency assumed before the first answer (sizes the in-flight window). */
  assumedLatencyMs: 1000,
} as const;

export interface AutoPaceOptions {
  /** Most calls in flight at once: the `--concurrency` ceiling (1 for a Lambda container). */
  maxConcurrency: number;
  /**
   * This pacer's share of the run's `maxRate` (default 1). Deployed, each sync-block container has its
   * own pacer and takes 1 / (the sync queue's maximum concurrency) of it.
   */
  rateShare?: number;
  /** Calls per second to start from (default `AUTO_PACE.initialRate`). */
  initialRate?: number;
  clock?: Clock;
}

/** What the auto pacer is doing, for progress lines and benchmarks. */
export interface AutoPaceState {
  /** Calls per second it allows now (after the cap). */
  rate: number;
  /** The rate at the last decrease; null until the first. */
  ceiling: number | null;
  slowStart: boolean;
  window: number;
  inFlight: number;
  /** Ms left of a Retry-After being waited out. */
  pausedForMs: number;
  increases: number;
  decreases: number;
}

interface Interval {
  start: number;
  started: number;
  /** Some caller waited for the rate: a higher rate would have been used. */
  rateBound: boolean;
  congested: boolean;
  latencySum: number;
  latencyCount: number;
}

const newInterval = (start: number): Interval => ({
  start,
  started: 0,
  rateBound: false,
  congested: false,
  latencySum: 0,
  latencyCount: 0,
});

/**
 * Adaptive pacing, AIMD on the call rate: starting at `initialRate`, the rate doubles per interval
 * (slow start) until the first congestion signal (429, 502, 503, 504, a timeout or network error, or an
 * interval whose latency rose well above its baseline); from then on it grows additively — quickly back
 * to 90 % of the rate where trouble began (the ceiling), then by a slow probe — and each signal cuts it
 * multiplicatively (deeper when signals repeat). Only callers held back by the rate make it grow, so a
 * rate that is not used (too few workers, slow answers) does not run away.
 *
 * A Retry-After is always obeyed: no call of any worker starts before it has passed. Answers to calls
 * that were sent before the last decrease do not cut again (they report the old rate). Calls in flight
 * are limited to what the rate needs at the observed latency (four times, plus one: latency jitters), within
 * `maxConcurrency`.
 * The rate stays within the run's `maxRate` (× `rateShare`).
 */
export class AutoPacer implements Pacer {
  readonly #clock: Clock;
  readonly #maxConcurrency: number;
  readonly #share: number;
  #rate: number;
  #ceiling: number | null = null;
  #slowStart = true;
  #cap = Number.POSITIVE_INFINITY;
  #nextStartAt = 0;
  #pauseUntil = 0;
  #inFlight = 0;
  #lastCutAt = Number.NEGATIVE_INFINITY;
  /** Since when the rate has been above the ceiling (the probe's step grows with it). */
  #aboveSince: number | null = null;
  /** Answers to calls sent since the last decrease: healthy ones and "slow down" ones. */
  #sinceCut = { ok: 0, congested: 0 };
  /** When the good answers of the last goodput window came. */
  #oks: number[] = [];
  #latencyEwma: number | null = null;
  readonly #means: number[] = [];
  #interval: Interval;
  #waiters: Array<() => void> = [];
  #increases = 0;
  #decreases = 0;

  constructor(opts: AutoPaceOptions) {
    if (!(opts.maxConcurrency >= 1)) throw new RangeError('AutoPacer: maxConcurrency must be ≥ 1');
    this.#clock = opts.clock ?? systemClock;
    this.#maxConcurrency = Math.floor(opts.maxConcurrency);
    this.#share = opts.rateShare ?? 1;
    this.#rate = opts.initialRate ?? AUTO_PACE.initialRate;
    this.#interval = newInterval(this.#clock.now());
  }

  async before(run: RunSettings, signal?: AbortSignal, opts: PaceOptions = {}): Promise<boolean> {
    this.#cap = run.maxRate ? run.maxRate * this.#share : Number.POSITIVE_INFINITY;
    if (run.dryRun) return !signal?.aborted;
    for (;;) {
      if (signal?.aborted) return false;
      const now = this.#clock.now();
      this.#tick(now);
      if (!opts.retry && this.#inFlight >= this.window()) {
        await this.#slotFreed(signal);
        continue;
      }
      const at = Math.max(this.#pauseUntil, this.#nextStartAt);
      if (at > now) {
        if (this.#nextStartAt > this.#pauseUntil) this.#interval.rateBound = true;
        await this.#clock.sleep(Math.ceil(at - now), signal);
        continue;
      }
      const spacing = 1000 / this.#allowed();
      // At most one call of credit after a late wake-up (timers are coarse), none across a pause.
      this.#nextStartAt = Math.max(this.#nextStartAt, this.#pauseUntil, now - spacing) + spacing;
      if (!opts.retry) this.#inFlight++;
      this.#interval.started++;
      return true;
    }
  }

  observe(run: RunSettings, a: AttemptReport): void {
    if (run.dryRun) return;
    const now = this.#clock.now();
    this.#tick(now);
    const pausedUntil = this.#pauseUntil;
    if (a.retryAfterMs !== undefined && a.status !== null && a.status >= 400) {
      this.#pauseUntil = Math.max(this.#pauseUntil, now + a.retryAfterMs);
    }
    // An answer to a call sent before the last cut reports the old rate: it neither counts nor cuts.
    const current = now - a.latencyMs >= this.#lastCutAt;
    if (isCongestion(a.status)) {
      this.#interval.congested = true;
      if (current) {
        this.#sinceCut.congested++;
        this.#decrease(now, pausedUntil);
      }
      return;
    }
    if (current) this.#sinceCut.ok++;
    if (a.status !== null && a.status < 300) {
      this.#oks.push(now);
      while (this.#oks[0]! < now - AUTO_PACE.goodputWindowMs) this.#oks.shift();
    }
    if (a.status !== null && a.status < 500) {
      this.#interval.latencySum += a.latencyMs;
      this.#interval.latencyCount++;
      this.#latencyEwma =
        this.#latencyEwma === null ? a.latencyMs : 0.8 * this.#latencyEwma + 0.2 * a.latencyMs;
    }
  }

  after(run: RunSettings): void {
    if (run.dryRun || this.#inFlight === 0) return;
    this.#inFlight--;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Calls allowed in flight: what the rate needs at the observed latency, four times, plus one. */
  window(): number {
    const latency = this.#latencyEwma ?? AUTO_PACE.assumedLatencyMs;
    const needed = Math.ceil((4 * this.#allowed() * latency) / 1000) + 1;
    return Math.max(1, Math.min(this.#maxConcurrency, needed));
  }

  state(): AutoPaceState {
    return {
      rate: this.#allowed(),
      ceiling: this.#ceiling,
      slowStart: this.#slowStart,
      window: this.window(),
      inFlight: this.#inFlight,
      pausedForMs: Math.max(0, this.#pauseUntil - this.#clock.now()),
      increases: this.#increases,
      decreases: this.#decreases,
    };
  }

  #allowed(): number {
    return Math.min(this.#rate, this.#cap);
  }

  #slotFreed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  #intervalLength(): number {
    return Math.max(AUTO_PACE.intervalMs, (AUTO_PACE.callsPerInterval * 1000) / this.#allowed());
  }

  /** Closes the interval when it is over and takes its decision. */
  #tick(now: number): void {
    const iv = this.#interval;
    const length = now - iv.start;
    if (length < this.#intervalLength()) return;
    this.#interval = newInterval(now);
    if (iv.congested) return; // decided on the spot
    if (iv.latencyCount > 0) {
      const mean = iv.latencySum / iv.latencyCount;
      const baseline = this.#means.length ? Math.min(...this.#means) : undefined;
      this.#means.push(mean);
      if (this.#means.length > AUTO_PACE.baselineIntervals) this.#means.shift();
      if (
        baseline !== undefined &&
        mean > baseline * AUTO_PACE.latencyFactor &&
        mean - baseline > AUTO_PACE.latencyMarginMs
      ) {
        this.#decrease(now);
        return;
      }
    }
    if (iv.rateBound) this.#increase(now, length);
    else if (iv.started > 0 && now >= this.#pauseUntil + length) {
      // Not the limit (too few workers, slow answers): keep the rate near what is really sent, so a
      // signal's cut bites at once and a return of demand does not meet a stale, high rate.
      this.#rate = Math.max(AUTO_PACE.minRate, Math.min(this.#rate, (2 * iv.started * 1000) / length));
    }
  }

  #increase(now: number, lengthMs: number): void {
    this.#increases++;
    const top = Math.max(this.#cap, AUTO_PACE.minRate);
    const c = this.#ceiling;
    if (this.#slowStart || c === null) {
      this.#rate = Math.min(this.#rate * 2, top);
      return;
    }
    let perSecond: number;
    if (this.#rate < 0.9 * c) perSecond = AUTO_PACE.fastStep;
    else if (this.#rate < c) perSecond = AUTO_PACE.nearStep;
    else {
      this.#aboveSince ??= now;
      perSecond = AUTO_PACE.nearStep + (AUTO_PACE.probeGrowth * (now - this.#aboveSince)) / 1000;
    }
    this.#rate = Math.min(this.#rate + perSecond * c * (lengthMs / 1000), top);
  }

  /**
   * Good answers per second over the last `goodputWindowMs` before `now`, counted from the first of them
   * after the last pause (a pause, or a quiet start, holds calls back); undefined when that leaves less
   * than half the window.
   */
  #goodput(now: number, pausedUntil: number): number | undefined {
    const first = this.#oks.find((t) => t >= pausedUntil);
    if (first === undefined) return undefined;
    const from = Math.max(now - AUTO_PACE.goodputWindowMs, first);
    if (now - from < AUTO_PACE.goodputWindowMs / 2) return undefined;
    return this.#oks.filter((t) => t >= from).length / ((now - from) / 1000);
  }

  #decrease(now: number, pausedUntil = this.#pauseUntil): void {
    this.#decreases++;
    const base = Math.max(AUTO_PACE.minRate, this.#allowed());
    // What got through just now is the best estimate of the capacity (the rate allowed may be above it).
    const goodput = this.#goodput(now, pausedUntil);
    const ceiling = goodput === undefined ? base : Math.max(AUTO_PACE.minRate, Math.min(base, goodput));
    const since = this.#sinceCut;
    const repeated =
      !this.#slowStart &&
      now - this.#lastCutAt < AUTO_PACE.repeatWindowMs &&
      since.congested >= AUTO_PACE.repeatShare * (since.ok + since.congested);
    const factor = this.#slowStart
      ? AUTO_PACE.slowStartDecrease
      : repeated
        ? AUTO_PACE.repeatDecrease
        : AUTO_PACE.decrease;
    this.#sinceCut = { ok: 0, congested: 0 };
    this.#aboveSince = null;
    this.#rate = Math.max(AUTO_PACE.minRate, (this.#slowStart ? base : ceiling) * factor);
    // Signals in a row: the rate that failed was far off; hold the new one (the probe finds more).
    this.#ceiling = repeated ? this.#rate : ceiling;
    this.#slowStart = false;
    this.#lastCutAt = now;
  }
}

/** The pacer of a worker that may see runs of either kind: each run is paced the way it asks. */
export class RunPacer implements Pacer {
  readonly fixed: FixedPacer;
  readonly auto: AutoPacer;

  constructor(opts: AutoPaceOptions) {
    this.fixed = new FixedPacer(opts.clock);
    this.auto = new AutoPacer(opts);
  }

  #of(run: RunSettings): Pacer {
    return run.pace === 'auto' ? this.auto : this.fixed;
  }

  before(run: RunSettings, signal?: AbortSignal, opts?: PaceOptions): Promise<boolean> {
    return this.#of(run).before(run, signal, opts);
  }

  observe(run: RunSettings, attempt: AttemptReport): void {
    this.#of(run).observe(run, attempt);
  }

  after(run: RunSettings): void {
    this.#of(run).after(run);
  }
}

/** A long duration the way an operator reads it: `45s`, `12m30s`, `13h53m`, `2d03h`. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

type PaceSettings = Pick<RunSettings, 'dryRun' | 'blockSize' | 'sleepMs' | 'pace' | 'maxRate'>;

/**
 * How long a run of `ids` ids should take with its pacing, said before it starts. Fixed pacing: the
 * sleep between call starts is a floor (one call at a time adds each call's own time). Auto pacing: the
 * API's capacity decides; the cap gives a floor, and a few rates show the scale.
 */
export function estimateRunTime(ids: number, run: PaceSettings, concurrency: number): string {
  const calls = Math.ceil(ids / run.blockSize);
  const head = `${ids.toLocaleString('en')} ids in ${calls.toLocaleString('en')} call${calls === 1 ? '' : 's'}`;
  if (run.dryRun) return `${head}: dry run, no calls made`;
  if (run.pace !== 'auto') {
    const floor = humanDuration(calls * run.sleepMs);
    const plus = concurrency === 1 ? ' plus each call’s own time' : '';
    return `${head}, ${run.sleepMs} ms apart: at least ${floor}${plus} (fixed pacing)`;
  }
  const at = (rate: number) => `${rate} calls/s ${humanDuration((calls / rate) * 1000)}`;
  const cap = run.maxRate
    ? `; at the --max-rate of ${run.maxRate} calls/s: ${humanDuration((calls / run.maxRate) * 1000)}`
    : '';
  return `${head}, auto pacing with up to ${concurrency} in flight: the Sync API's capacity decides (at ${[1, 10, 50].map(at).join(', ')})${cap}`;
}

/** The rate a run achieved, and what it means for a full resync of `reference` ids. */
export function achievedRate(ids: number, calls: number, durationMs: number, reference = 10_000_000): string {
  const seconds = Math.max(0.001, durationMs / 1000);
  const perSecond = ids / seconds;
  const scale =
    perSecond > 0
      ? `; ${reference.toLocaleString('en')} ids at this rate: ${humanDuration((reference / perSecond) * 1000)}`
      : '';
  return `achieved ${perSecond.toFixed(1)} ids/s (${(calls / seconds).toFixed(2)} calls/s)${scale}`;
}
