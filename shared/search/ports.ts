/**
 * What the drift jobs need from a search engine (Elasticsearch 6–8, OpenSearch): the ids an index
 * holds, page by page, and which of a batch of ids it holds — each with the document's "last updated"
 * value, so a caller can tell a stale document from a fresh one. The adapter is
 * `shared/clients/opensearch.ts` (undici); `memory.ts` holds an in-memory one for the unit tests.
 *
 * Errors follow the taxonomy: an unreachable or failing engine is a ServiceUnavailableError (exit 3),
 * refused credentials a CredentialsRefusedError (exit 3), a missing index a BadInputError (exit 2)
 * naming it and the indices there are.
 */

/** One indexed document as the drift checks see it. */
export interface IndexedDoc {
  id: string;
  /** The document's "last updated" field as stored (Sunbird's text date), null when absent. */
  updated: string | null;
}

export interface ListOptions {
  /** Documents per page (the engine's request size). */
  pageSize?: number;
  /** Also read each document's "last updated" field (otherwise `updated` is null). */
  withUpdated?: boolean;
}

export interface LookupOptions {
  withUpdated?: boolean;
}

export interface SearchIndex {
  /** Throws a BadInputError naming the index and listing the existing ones when it is not there. */
  requireIndex(index: string): Promise<void>;
  /**
   * Every document of the index, page by page, from one consistent view (point in time or scroll):
   * memory holds one page. Stopping early (break, throw) releases the engine's context.
   */
  list(index: string, opts?: ListOptions): AsyncIterable<IndexedDoc[]>;
  /** How many documents the index holds (as of its last refresh). */
  count(index: string): Promise<number>;
  /** The documents among `ids` the index holds (real time: a document just written counts). */
  lookup(index: string, ids: readonly string[], opts?: LookupOptions): Promise<Map<string, IndexedDoc>>;
  close(): Promise<void>;
}

/** The indices userorg-service writes to (its `user_index_alias` / `org_index_alias` settings). */
export const DEFAULT_INDEX: Readonly<Record<'user' | 'organisation', string>> = {
  user: 'user_alias',
  organisation: 'org_alias',
};
