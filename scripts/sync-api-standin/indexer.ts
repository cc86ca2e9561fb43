/**
 * What userorg-service does with an accepted sync request: read each id's row from Cassandra and
 * index it into Elasticsearch (here OpenSearch) under the id; in verified mode, report which ids the
 * index holds. (Sunbird-Lern/userorg-service: service/.../actor/sync/EsSyncBackgroundActor.java reads
 * and saves each object; core/es-utils/.../ElasticSearchRestHighImpl.java#save adds `identifier` and
 * uses the id as the document `_id`.)
 */
import { cassandraDocuments, type DocumentSource } from './documents.ts';
import {
  type BulkOutcome,
  OpenSearchClient,
  type OpenSearchOptions,
  requireIndexName,
} from './opensearch.ts';

/**
 * The indexes userorg-service writes to: `ProjectUtil.EsType.user` / `.organisation` name the config
 * keys `user_index_alias` / `org_index_alias`, which its externalresource.properties set to
 * `user_alias` / `org_alias` (Sunbird-Lern/userorg-service: core/platform-common/src/main/java/org/
 * sunbird/util/ProjectUtil.java and core/platform-common/src/main/resources/externalresource.properties).
 */
export const DEFAULT_INDEX_NAMES: Readonly<IndexNames> = { user: 'user_alias', organisation: 'org_alias' };

export interface IndexNames {
  user: string;
  organisation: string;
}

export interface IndexingOptions {
  /** Where the rows are read from: a connected (or lazily connecting) cassandra-driver Client. */
  cassandra: Parameters<typeof cassandraDocuments>[0]['client'];
  /** Keyspace of the user and organisation tables (default sunbird). */
  keyspace?: string;
  opensearch: OpenSearchOptions;
  indexNames?: Partial<IndexNames>;
}

/** How one block went: indexed, without a row in Cassandra, or refused by the index. */
export interface BlockIndexed extends BulkOutcome {
  notFound: string[];
}

export class Indexer {
  readonly #source: DocumentSource;
  readonly #client: OpenSearchClient;
  readonly #names: Readonly<Record<string, string>>;

  constructor(source: DocumentSource, client: OpenSearchClient, names: IndexNames) {
    this.#source = source;
    this.#client = client;
    this.#names = { user: requireIndexName(names.user), organisation: requireIndexName(names.organisation) };
  }

  get url(): string {
    return this.#client.url;
  }

  /** The index an object type goes to; undefined for types not indexed here (location). */
  indexOf(objectType: string): string | undefined {
    return this.#names[objectType];
  }

  /** Reads the block's rows and indexes them (Bulk API); throws an OpenSearchError when unreachable. */
  async indexBlock(objectType: string, ids: readonly string[]): Promise<BlockIndexed> {
    const index = this.indexOf(objectType);
    if (!index) return { indexed: [], failed: new Map(), notFound: [...ids] };
    const docs = await this.#source(objectType, ids);
    const outcome =
      docs.size > 0 ? await this.#client.bulkIndex(index, docs) : { indexed: [], failed: new Map() };
    return { ...outcome, notFound: ids.filter((id) => !docs.has(id)) };
  }

  /** Which of `ids` the object type's index really holds. */
  async held(objectType: string, ids: readonly string[]): Promise<Set<string>> {
    const index = this.indexOf(objectType);
    return index ? this.#client.existing(index, ids) : new Set();
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

export function createIndexer(opts: IndexingOptions): Indexer {
  const source = cassandraDocuments({
    client: opts.cassandra,
    ...(opts.keyspace ? { keyspace: opts.keyspace } : {}),
  });
  return new Indexer(source, new OpenSearchClient(opts.opensearch), {
    ...DEFAULT_INDEX_NAMES,
    ...opts.indexNames,
  });
}
