/**
 * The Sunbird user directory on Cassandra: "which of these ids exist in sunbird.user?", answered by point
 * look-ups on the partition key (never a scan), a bounded number in flight. Each look-up rides out a
 * Cassandra outage of up to the client's retry window.
 */
import { type CassandraClient, executeIdempotent } from '#shared/clients/cassandra.ts';
import { mapLimit } from '#shared/core/concurrency.ts';
import type { UserDirectory } from '#shared/keycloak/ports.ts';

export interface CassandraUserDirectoryOptions {
  keyspace: string;
  /** Look-ups in flight at once. */
  concurrency?: number;
}

export function cassandraUserDirectory(
  client: CassandraClient,
  opts: CassandraUserDirectoryOptions,
): UserDirectory {
  if (!/^\w+$/.test(opts.keyspace)) throw new Error(`invalid keyspace name "${opts.keyspace}"`);
  const cql = `SELECT id FROM ${opts.keyspace}.user WHERE id = ?`;
  return {
    async existing(ids) {
      const unique = [...new Set(ids)];
      const found = await mapLimit(unique, opts.concurrency ?? 32, async (id) => {
        const rs = await executeIdempotent(client, cql, [id]);
        return rs.rowLength > 0 ? id : undefined;
      });
      return new Set(found.filter((id): id is string => id !== undefined));
    },
  };
}
