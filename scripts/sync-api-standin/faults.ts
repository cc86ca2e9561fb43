/**
 * Fault injection in front of the stand-in, like a flaky network or gateway: scripted responses,
 * connection resets, a failure rate and added latency — reproducible through a seeded generator.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defaultBodyFor } from './contract.ts';

const scriptedResponseSchema = z.union([
  z.number().int().min(100).max(599),
  z.object({
    status: z.number().int().min(100).max(599).optional(),
    /** Seconds, sent as the Retry-After header. */
    retryAfter: z.number().nonnegative().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    /** A string is sent as is; anything else as JSON. Omitted: the envelope that fits the status. */
    body: z.unknown().optional(),
    /** Destroy the connection instead of answering. */
    reset: z.boolean().optional(),
    delayMs: z.number().int().nonnegative().optional(),
    /** Handle the request normally (after delayMs) — a placeholder in a script. */
    passThrough: z.boolean().optional(),
  }),
]);

export const faultsSchema = z.strictObject({
  /** Fraction (0–1) of requests answered with `failureStatus` instead of being handled. */
  failureRate: z.number().min(0).max(1).optional(),
  failureStatus: z.number().int().min(100).max(599).optional(),
  /** Seed of the generator behind failureRate/resetRate, so a run is reproducible. */
  seed: z.number().int().optional(),
  /** Added before every answer on the sync routes. */
  latencyMs: z.number().int().nonnegative().optional(),
  /** Consumed one per request, before any other fault. */
  script: z.array(scriptedResponseSchema).optional(),
  /** Destroy the connection of the next N requests. */
  resetNext: z.number().int().nonnegative().optional(),
  /** Fraction (0–1) of requests whose connection is destroyed. */
  resetRate: z.number().min(0).max(1).optional(),
});

export type ScriptedResponse = z.infer<typeof scriptedResponseSchema>;
export type SyncApiFaults = z.infer<typeof faultsSchema>;

/** What the fault layer decided for one request: drop the connection, or answer in place of the service. */
export type FaultOutcome =
  | { fault: 'reset' }
  | { fault: 'scripted' | 'failure'; status: number; body: string; headers: Record<string, string> };

/** mulberry32: tiny, fast, seedable; good enough for fault injection. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function scriptedAnswer(step: Exclude<ScriptedResponse, number>, msgid: string): FaultOutcome {
  if (step.reset) return { fault: 'reset' };
  const status = step.status ?? 200;
  const body =
    step.body === undefined
      ? defaultBodyFor(status, msgid)
      : typeof step.body === 'string'
        ? step.body
        : JSON.stringify(step.body);
  const headers = { ...step.headers };
  if (step.retryAfter !== undefined) headers['retry-after'] = String(step.retryAfter);
  return { fault: 'scripted', status, body, headers };
}

export class FaultInjector {
  readonly #initial: SyncApiFaults;
  #faults: SyncApiFaults = {};
  #script: ScriptedResponse[] = [];
  #resetNext = 0;
  #random = seededRandom(0);
  #active = false;

  /** Throws (a zod error) when `initial` is not valid. */
  constructor(initial: SyncApiFaults = {}) {
    this.#initial = faultsSchema.parse(initial);
    this.apply(this.#initial);
  }

  get current(): SyncApiFaults {
    return this.#faults;
  }

  /** Replaces the current faults (an empty object turns them all off); throws when invalid. */
  apply(f: SyncApiFaults): void {
    const faults = faultsSchema.parse(f);
    this.#faults = faults;
    this.#script = [...(faults.script ?? [])];
    this.#resetNext = faults.resetNext ?? 0;
    this.#random = seededRandom(faults.seed ?? 1);
    this.#active =
      this.#script.length > 0 ||
      this.#resetNext > 0 ||
      (faults.failureRate ?? 0) > 0 ||
      (faults.resetRate ?? 0) > 0 ||
      (faults.latencyMs ?? 0) > 0;
  }

  /** Back to the faults given at start. */
  restore(): void {
    this.apply(this.#initial);
  }

  /** Waits out any latency, then says whether a fault takes this request; null: handle it normally. */
  async next(msgid: string): Promise<FaultOutcome | null> {
    if (!this.#active) return null;
    const faults = this.#faults;
    if (faults.latencyMs) await sleep(faults.latencyMs);
    const step = this.#script.shift();
    if (step !== undefined) {
      const s = typeof step === 'number' ? { status: step } : step;
      if (s.delayMs) await sleep(s.delayMs);
      if (!s.passThrough) return scriptedAnswer(s, msgid);
    }
    if (this.#resetNext > 0) {
      this.#resetNext--;
      return { fault: 'reset' };
    }
    if (faults.resetRate && this.#random() < faults.resetRate) return { fault: 'reset' };
    if (faults.failureRate && this.#random() < faults.failureRate) {
      const status = faults.failureStatus ?? 500;
      return { fault: 'failure', status, body: defaultBodyFor(status, msgid), headers: {} };
    }
    return null;
  }
}
