/**
 * An in-memory search engine (port in `ports.ts`) for the unit tests: indices of documents in maps,
 * listed in pages, with the same errors as the real adapter, and a switch that makes every call after
 * the n-th fail as an unreachable engine does.
 */
import { BadInputError, ServiceUnavailableError } from '#shared/core/errors.ts';
import type { IndexedDoc, ListOptions, LookupOptions, SearchIndex } from '#shared/search/ports.ts';

export class MemorySearchIndex implements SearchIndex {
  readonly indices = new Map<string, Map<string, string | null>>();
  /** Calls made so far (requireIndex, each listed page, each lookup). */
  calls = 0;
  /** Calls after this many fail with a ServiceUnavailableError (Infinity: never). */
  failAfter = Number.POSITIVE_INFINITY;
  /** Contexts opened by `list` and not yet released. */
  openContexts = 0;

  constructor(indices: Record<string, Record<string, string | null> | readonly string[]> = {}) {
    for (const [name, docs] of Object.entries(indices)) this.put(name, docs);
  }

  /** Adds documents (an id list: documents without an updated date). */
  put(index: string, docs: Record<string, string | null> | readonly string[]): void {
    const m = this.indices.get(index) ?? new Map<string, string | null>();
    if (Array.isArray(docs)) for (const id of docs) m.set(id, null);
    else for (const [id, updated] of Object.entries(docs)) m.set(id, updated);
    this.indices.set(index, m);
  }

  #tick(): void {
    if (++this.calls > this.failAfter)
      throw new ServiceUnavailableError('search engine', 'the search engine at memory: is unreachable');
  }

  #index(index: string): Map<string, string | null> {
    const m = this.indices.get(index);
    if (!m)
      throw new BadInputError(
        `index "${index}" not found at memory:; the indices there are: ${[...this.indices.keys()].sort().join(', ')}`,
      );
    return m;
  }

  async requireIndex(index: string): Promise<void> {
    this.#tick();
    this.#index(index);
  }

  async *list(index: string, opts: ListOptions = {}): AsyncGenerator<IndexedDoc[]> {
    this.#tick();
    // A snapshot, as a point in time or a scroll sees the index.
    const docs = [...this.#index(index)].map(([id, updated]) => ({
      id,
      updated: opts.withUpdated ? updated : null,
    }));
    const size = opts.pageSize ?? 5000;
    this.openContexts++;
    try {
      for (let i = 0; i < docs.length; i += size) {
        if (i > 0) this.#tick();
        yield docs.slice(i, i + size);
      }
    } finally {
      this.openContexts--;
    }
  }

  async count(index: string): Promise<number> {
    this.#tick();
    return this.#index(index).size;
  }

  /** Ids asked for through `lookup` so far. */
  lookedUp = 0;

  async lookup(
    index: string,
    ids: readonly string[],
    opts: LookupOptions = {},
  ): Promise<Map<string, IndexedDoc>> {
    this.#tick();
    this.lookedUp += ids.length;
    const m = this.#index(index);
    const found = new Map<string, IndexedDoc>();
    for (const id of ids) {
      if (m.has(id)) found.set(id, { id, updated: opts.withUpdated ? (m.get(id) ?? null) : null });
    }
    return found;
  }

  async close(): Promise<void> {}
}
