/**
 * Time, in one place: sleeping is `node:timers/promises` (abortable), and code that paces or measures
 * takes a `Clock` so the unit tests can run it on a manual clock in microseconds.
 */
import { setTimeout as wait } from 'node:timers/promises';

/**
 * Sleeps `ms`; with a signal, an abort ends the sleep early without throwing (callers check the signal
 * themselves and decide what an interruption means).
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  try {
    await wait(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep };

/**
 * A virtual clock for unit tests of pacing and budgets: time moves only when every sleeper is waiting.
 * `sleep(ms)` registers a timer; once the pending promise jobs have run (a macrotask later), the clock
 * jumps to the earliest timer and wakes it. Concurrent sleepers therefore wake in the order real timers
 * would, and no real time passes. `advance(ms)` moves the clock by hand (e.g. the duration of a call).
 */
export class ManualClock implements Clock {
  #now: number;
  #timers: Array<{ at: number; wake: () => void }> = [];
  #scheduled = false;
  /** Every sleep asked for, in ms. */
  readonly sleeps: number[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  advance(ms: number): void {
    this.#now += ms;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || signal?.aborted) return Promise.resolve();
    this.sleeps.push(ms);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        resolve();
      };
      const timer = {
        at: this.#now + ms,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#timers.push(timer);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers.shift();
      if (!next) return;
      this.#now = Math.max(this.#now, next.at);
      next.wake();
      if (this.#timers.length) this.#schedule();
    });
  }
}

/** A deadline `budgetMs` from now on `clock`; `left()` is never negative. */
export function deadline(
  budgetMs: number,
  clock: Clock = systemClock,
): { left(): number; passed(): boolean } {
  const at = clock.now() + budgetMs;
  return { left: () => Math.max(0, at - clock.now()), passed: () => clock.now() >= at };
}
