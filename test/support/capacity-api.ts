/**
 * A Sync API with a capacity, on a clock (a `ManualClock` in the unit tests): a token bucket of
 * `capacity` calls per second holding at most `burst` tokens; a call beyond it is answered 429 with a
 * Retry-After of whole seconds, as a gateway would; an admitted call takes `latencyMs(load)`, where load
 * is the admitted rate of the last second over the capacity. Like the real client it retries a 429
 * after the Retry-After (up to `maxRetries`) and reports every attempt through `onAttempt`.
 */
import type { Clock } from '#shared/core/time.ts';
import type { SyncApi, SyncCallResult, SyncOptions } from '#shared/sync/ports.ts';

export interface CapacityApiOptions {
  clock: Clock;
  capacity: number;
  burst?: number;
  latencyMs?: (load: number) => number;
  maxRetries?: number;
  /** Share of requests answered 429 although the bucket had room (a jittery gateway), seeded. */
  noise?: number;
}

export class CapacityApi implements SyncApi {
  readonly #clock: Clock;
  capacity: number;
  #burst: number;
  #tokens: number;
  #refilledAt: number;
  readonly #latency: (load: number) => number;
  readonly #maxRetries: number;
  readonly #noise: number;
  #seed = 1;
  readonly #admitted: number[] = [];
  /** Every attempt: when it arrived and its status. */
  readonly attempts: Array<{ at: number; status: number }> = [];
  inFlight = 0;
  maxInFlight = 0;

  constructor(opts: CapacityApiOptions) {
    this.#clock = opts.clock;
    this.capacity = opts.capacity;
    this.#burst = opts.burst ?? Math.max(1, opts.capacity / 10);
    this.#tokens = this.#burst;
    this.#refilledAt = opts.clock.now();
    this.#latency = opts.latencyMs ?? ((load) => 20 * (1 + load * load));
    this.#maxRetries = opts.maxRetries ?? 5;
    this.#noise = opts.noise ?? 0;
  }

  /** A seeded random number in [0, 1) (so a test's noise is the same every run). */
  #random(): number {
    this.#seed = (this.#seed * 16807) % 2147483647;
    return this.#seed / 2147483647;
  }

  /** Changes the capacity (and the burst with it) from now on. */
  setCapacity(capacity: number): void {
    this.#refill();
    this.capacity = capacity;
    this.#burst = Math.max(1, capacity / 10);
    this.#tokens = Math.min(this.#tokens, this.#burst);
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.capacity);
    this.#refilledAt = now;
  }

  #admit(): boolean {
    this.#refill();
    if (this.#noise && this.#random() < this.#noise) return false;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #load(now: number): number {
    while (this.#admitted.length && this.#admitted[0]! <= now - 1000) this.#admitted.shift();
    return this.#admitted.length / this.capacity;
  }

  /** The preflight: this API is always there. */
  async check(): Promise<void> {}

  async sync(_objectType: string, _ids: string[], options: SyncOptions = {}): Promise<SyncCallResult> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      for (let attempt = 1; ; attempt++) {
        const sent = this.#clock.now();
        if (this.#admit()) {
          this.#admitted.push(sent);
          this.attempts.push({ at: sent, status: 200 });
          await this.#clock.sleep(this.#latency(this.#load(sent)));
          options.onAttempt?.({ status: 200, latencyMs: this.#clock.now() - sent });
          return { ok: true, status: 200, requestBody: '{}', responseBody: '{}', attempts: attempt };
        }
        this.attempts.push({ at: sent, status: 429 });
        await this.#clock.sleep(2);
        const retryAfterMs = Math.max(1, Math.ceil(1 / this.capacity)) * 1000;
        options.onAttempt?.({ status: 429, latencyMs: this.#clock.now() - sent, retryAfterMs });
        if (attempt > this.#maxRetries) {
          return {
            ok: false,
            status: 429,
            requestBody: '{}',
            responseBody: '',
            attempts: attempt,
            retryAfterMs,
          };
        }
        await this.#clock.sleep(retryAfterMs + 10);
        await options.beforeRetry?.();
      }
    } finally {
      this.inFlight--;
    }
  }
}
