/**
 * Wiring of the drift repairs' adapters from configuration: the search engine client (`es.*` settings)
 * and the Cassandra row look-up, on a Cassandra client owned by the caller (the sync runtime's). Created
 * lazily and once, like the other runtimes.
 */
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { SearchEngineClient, type SearchEngineOptions } from '#shared/clients/opensearch.ts';
import { ConfigError, type FlatConfig } from '#shared/config.ts';
import { type CheckDeps, indexFor } from '#shared/drift/check.ts';
import { driftFilters } from '#shared/drift/filter.ts';
import type { SearchIndex } from '#shared/search/ports.ts';
import { CassandraRowLookup } from '#shared/sync/cassandra-rows.ts';
import type { IdFilter, RowLookup } from '#shared/sync/ports.ts';

export function searchOptionsFrom(cfg: FlatConfig): SearchEngineOptions {
  if (!cfg['es.url'])
    throw new ConfigError(
      'say where the search index is: --es-url (ES_URL), e.g. https://es.example.org:9200',
    );
  return {
    url: cfg['es.url'],
    username: cfg['es.username'],
    password: cfg['es.password'],
    apiKey: cfg['es.apiKey'],
    ...(cfg['es.caFile'] ? { caFile: cfg['es.caFile'] } : {}),
    timeoutMs: cfg['es.timeoutMs'],
    maxRetries: cfg['es.maxRetries'],
    updatedField: cfg['es.updatedField'],
    paging: cfg['es.paging'],
  };
}

export class DriftRuntime {
  readonly cfg: FlatConfig;
  readonly #cassandra: () => CassandraClient;
  #search?: SearchEngineClient;
  #rows?: RowLookup;
  #filters?: (name: string) => IdFilter;

  constructor(cfg: FlatConfig, cassandra: () => CassandraClient) {
    this.cfg = cfg;
    this.#cassandra = cassandra;
  }

  get search(): SearchIndex {
    this.#search ??= new SearchEngineClient(searchOptionsFrom(this.cfg));
    return this.#search;
  }

  get rows(): RowLookup {
    this.#rows ??= new CassandraRowLookup(this.#cassandra());
    return this.#rows;
  }

  /** The index of a table's documents (`es.index`, or userorg-service's alias). */
  indexOf(table: string): string {
    return indexFor(table, this.cfg['es.index']);
  }

  get check(): CheckDeps {
    return { search: this.search, rows: this.rows, indexOf: (t) => this.indexOf(t) };
  }

  /** The scan's `filters` dependency: resolves a run's drift filter. */
  filters(): (name: string) => IdFilter {
    // The search client is only created once a run actually names a filter.
    return (name) => {
      this.#filters ??= driftFilters(this.check);
      return this.#filters(name);
    };
  }

  async close(): Promise<void> {
    await this.#search?.close();
  }
}
