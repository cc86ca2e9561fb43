/**
 * Group commit: writes submitted while earlier ones are in flight are collected and written together by
 * the next write, so a store pays one round trip per group instead of one per item. Nothing waits for a
 * timer: an idle writer writes at once, and each submitter's promise settles with the write that carried
 * its item (a failed write rejects every item in it, so none is lost silently).
 */
export interface GroupCommitOptions {
  /** Items per write at most. */
  maxBatch: number;
  /** Writes in flight at once. */
  maxInFlight: number;
}

interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<T> {
  readonly #write: (items: T[]) => Promise<void>;
  readonly #opts: GroupCommitOptions;
  #queue: Array<Waiting<T>> = [];
  #inFlight = 0;

  constructor(write: (items: T[]) => Promise<void>, opts: GroupCommitOptions) {
    this.#write = write;
    this.#opts = opts;
  }

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#opts.maxInFlight && this.#queue.length > 0) {
      const group = this.#queue.splice(0, this.#opts.maxBatch);
      this.#inFlight++;
      (async () => this.#write(group.map((w) => w.item)))()
        .then(
          () => {
            for (const w of group) w.resolve();
          },
          (err: unknown) => {
            for (const w of group) w.reject(err);
          },
        )
        .finally(() => {
          this.#inFlight--;
          this.#pump();
        });
    }
  }
}
