/**
 * The Sunbird user directory on Cassandra: "which of these ids exist in sunbird.user?", answered by
 * partition-key look-ups (never a scan): `WHERE id IN (…)` for up to IN_SLICE ids at a time, so a block of
 * 100 ids is one round trip instead of a hundred, with a bounded number of slices in flight. Each look-up
 * rides out a Cassandra outage of up to the client's retry window.
 */
import { type CassandraClient, executeIdempotent } from '#shared/clients/cassandra.ts';
import { mapLimit } from '#shared/core/concurrency.ts';
import type { UserDirectory } from '#shared/keycloak/ports.ts';

/** Ids per look-up: one partition each, read by the coordinator in one request. */
export const IN_SLICE = 100;

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
  const cql = `SELECT id FROM ${opts.keyspace}.user WHERE id IN ?`;
  return {
    async existing(ids) {
      const unique = [...new Set(ids)];
      const slices: string[][] = [];
      for (let i = 0; i < unique.length; i += IN_SLICE) slices.push(unique.slice(i, i + IN_SLICE));
      const found = new Set<string>();
      await mapLimit(slices, opts.concurrency ?? 4, async (slice) => {
        const rs = await executeIdempotent(client, cql, [slice], { fetchSize: IN_SLICE });
        for (const row of rs.rows) found.add(row.get('id') as string);
      });
      return found;
    },
  };
}
