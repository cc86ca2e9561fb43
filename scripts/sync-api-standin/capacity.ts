/**
 * A capacity for the stand-in, for benchmarks and tests of adaptive pacing: a token bucket of
 * `requestsPerSecond` sync requests per second (requests, not ids: the gateway counts calls) holding at
 * most `burst` tokens. A request beyond it is answered 429 with a Retry-After of whole seconds until a
 * token is free (at least 1, as gateways send it). An admitted request is answered after a latency that
 * grows with the load: `baseLatencyMs × (1 + load²)`, where load is the number of requests admitted in
 * the last second over the capacity (so twice the base at full capacity). Changeable at run time
 * (`POST /__admin/capacity`), so a benchmark can halve it mid-run.
 */
import { z } from 'zod';

export const capacitySchema = z.strictObject({
  /** Requests admitted per second (the bucket's refill rate). */
  requestsPerSecond: z.number().positive(),
  /** Most tokens the bucket holds: the burst allowed after a quiet spell (default: 0.1 s worth, ≥ 1). */
  burst: z.number().min(1).optional(),
  /** Latency of an admitted request at no load, in ms (default 20). */
  baseLatencyMs: z.number().nonnegative().optional(),
});
export type CapacityOptions = z.infer<typeof capacitySchema>;

export interface CapacityCounts {
  admitted: number;
  throttled: number;
}

export type CapacityDecision =
  | { admitted: true; latencyMs: number }
  | { admitted: false; retryAfterS: number };

export class Capacity {
  #opts: Required<CapacityOptions>;
  #tokens: number;
  #refilledAt: number;
  /** Admission times of the last second (for the load). */
  #recent: number[] = [];
  #head = 0;
  readonly #now: () => number;
  counts: CapacityCounts = { admitted: 0, throttled: 0 };

  constructor(opts: CapacityOptions, now: () => number = () => performance.now()) {
    this.#now = now;
    this.#opts = Capacity.#complete(capacitySchema.parse(opts));
    this.#tokens = this.#opts.burst;
    this.#refilledAt = now();
  }

  static #complete(o: CapacityOptions): Required<CapacityOptions> {
    return {
      requestsPerSecond: o.requestsPerSecond,
      burst: o.burst ?? Math.max(1, o.requestsPerSecond / 10),
      baseLatencyMs: o.baseLatencyMs ?? 20,
    };
  }

  get options(): Required<CapacityOptions> {
    return { ...this.#opts };
  }

  /** A new capacity from now on (the tokens held are kept, up to the new burst). */
  set(opts: CapacityOptions): void {
    this.#refill();
    this.#opts = Capacity.#complete(capacitySchema.parse(opts));
    this.#tokens = Math.min(this.#tokens, this.#opts.burst);
  }

  /** A full bucket and zero counts. */
  reset(): void {
    this.#tokens = this.#opts.burst;
    this.#refilledAt = this.#now();
    this.#recent = [];
    this.#head = 0;
    this.counts = { admitted: 0, throttled: 0 };
  }

  #refill(): void {
    const now = this.#now();
    const { burst, requestsPerSecond } = this.#opts;
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilledAt) / 1000) * requestsPerSecond);
    this.#refilledAt = now;
  }

  /** Admitted requests of the last second. */
  #admittedLastSecond(now: number): number {
    while (this.#head < this.#recent.length && this.#recent[this.#head]! <= now - 1000) this.#head++;
    if (this.#head > 1024) {
      this.#recent = this.#recent.slice(this.#head);
      this.#head = 0;
    }
    return this.#recent.length - this.#head;
  }

  /** Takes a token for one request, or says how long to come back after. */
  admit(): CapacityDecision {
    this.#refill();
    const { requestsPerSecond, baseLatencyMs } = this.#opts;
    if (this.#tokens < 1) {
      this.counts.throttled++;
      const waitS = (1 - this.#tokens) / requestsPerSecond;
      return { admitted: false, retryAfterS: Math.max(1, Math.ceil(waitS)) };
    }
    this.#tokens -= 1;
    this.counts.admitted++;
    const now = this.#now();
    this.#recent.push(now);
    const load = this.#admittedLastSecond(now) / requestsPerSecond;
    return { admitted: true, latencyMs: baseLatencyMs * (1 + load * load) };
  }
}
