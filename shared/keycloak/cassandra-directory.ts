/**
 * The Sunbird user directory on Cassandra: "which of these ids exist in sunbird.user?", answered by the
 * shared row look-up (partition-key look-ups of up to IN_SLICE ids each, never a scan, a bounded number in
 * flight, riding out a Cassandra outage of up to the client's retry window).
 */
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import type { UserDirectory } from '#shared/keycloak/ports.ts';
import { CassandraRowLookup } from '#shared/sync/cassandra-rows.ts';

export interface CassandraUserDirectoryOptions {
  keyspace: string;
  /** Look-ups (slices of up to IN_SLICE ids) in flight at once. */
  concurrency?: number;
}

export function cassandraUserDirectory(
  client: CassandraClient,
  opts: CassandraUserDirectoryOptions,
): UserDirectory {
  if (!/^\w+$/.test(opts.keyspace)) throw new Error(`invalid keyspace name "${opts.keyspace}"`);
  const rows = new CassandraRowLookup(client, opts.concurrency ? { concurrency: opts.concurrency } : {});
  return {
    async existing(ids) {
      return new Set((await rows.rows(opts.keyspace, 'user', ids)).keys());
    },
  };
}
