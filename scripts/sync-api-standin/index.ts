/**
 * A local stand-in for Sunbird's Sync API (userorg-service `POST /v1/data/sync`, and the gateway route
 * `POST /api/data/v1/index/sync`), faithful to the contract in the jobs spec §1 "The Sync API":
 * gateway checks (API key 401, ACL 403, rate limit 429 with Retry-After, 1 MB body limit 413), the
 * service's validation envelopes (UOS_0003, UOS_0072), the success envelope, and the verified mode
 * (`"operationType":"sync"` → `result.esSyncResponse`, 500 after 10 s).
 *
 * On top of the contract it has fault knobs (failure rate, latency, scripted responses, connection
 * resets), settable at start, programmatically and over `/__admin/*`, and it records every request so
 * tests can assert what actually arrived.
 *
 *   contract.ts  routes, limits, envelopes, validation      gateway.ts  key, ACL, rate limit
 *   faults.ts    fault knobs, seeded random, scripts         recorder.ts recorded requests
 *   existence.ts what verified mode reports as indexed       server.ts   the HTTP server composing them
 *   documents.ts Cassandra rows → documents                  opensearch.ts bulk index, mget, create index
 *   indexer.ts   what userorg-service does with a block      cli.ts      `npm run sync-api-standin -- …`
 *   capacity.ts  a token bucket of requests/s, latency growing with load (adaptive pacing's benchmark)
 *
 * With `index` (CLI: `--opensearch`) it indexes for real, as userorg-service does on a sync request:
 * each accepted id's row from Cassandra into OpenSearch, `_id` = the id, in `user_alias` / `org_alias`.
 */

export { Capacity, type CapacityCounts, type CapacityOptions, capacitySchema } from './capacity.ts';
export {
  MAX_BODY_BYTES,
  SYNC_ROUTES,
  sunbirdTimestamp,
  VALID_OBJECT_TYPES,
  VERIFY_TIMEOUT_MS,
} from './contract.ts';
export type { Document } from './documents.ts';
export { allExist, type CassandraExistsOptions, cassandraExists, type ExistsFn } from './existence.ts';
export { faultsSchema, type ScriptedResponse, type SyncApiFaults } from './faults.ts';
export type { AuthOutcome, RateLimitOptions } from './gateway.ts';
export { DEFAULT_INDEX_NAMES, type IndexingOptions, type IndexNames } from './indexer.ts';
export { OpenSearchClient, OpenSearchError, type OpenSearchOptions } from './opensearch.ts';
export type { RecordedRequest } from './recorder.ts';
export { type SyncApiStandin, type SyncApiStandinOptions, startSyncApiStandin } from './server.ts';
