/**
 * Pacing of Sync API calls, the original job's way: it slept `sleep` ms after each call before the next.
 * Across several workers (CLI `--concurrency`, or the blocks of one Lambda batch) the same spacing holds:
 * a call may start only `sleep` ms after the previous call started, and `sleep` ms after it ended.
 * Dry runs and a sleep of 0 are not paced.
 */
import { type Clock, systemClock } from '#shared/core/time.ts';
import type { RunSettings } from '#shared/sync/messages.ts';

export interface Pacer {
  /** Waits until a call of this run may start (returns early when `signal` aborts). */
  before(run: RunSettings, signal?: AbortSignal): Promise<void>;
  /** A call of this run has ended. */
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

  async before(run: RunSettings, signal?: AbortSignal): Promise<void> {
    if (!FixedPacer.paced(run)) return;
    for (
      let wait = this.#nextCallAt - this.#clock.now();
      wait > 0;
      wait = this.#nextCallAt - this.#clock.now()
    ) {
      if (signal?.aborted) return;
      await this.#clock.sleep(wait, signal);
    }
    this.#nextCallAt = this.#clock.now() + run.sleepMs;
  }

  after(run: RunSettings): void {
    if (FixedPacer.paced(run)) this.#nextCallAt = Math.max(this.#nextCallAt, this.#clock.now() + run.sleepMs);
  }
}
