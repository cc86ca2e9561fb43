/**
 * The Cassandra adapter of the id source: the ring from the driver's token-range metadata, row estimates
 * from `system.size_estimates`, and pages of `SELECT id … WHERE token(id) > ? AND token(id) <= ?` (only
 * the partition key is read). Every read rides out a Cassandra outage of up to the client's retry window
 * (`executeIdempotent`); a page is re-read from its own paging state, so a scan loses and repeats nothing.
 */
import cassandra from 'cassandra-driver';
import { type CassandraClient, connectCassandra, executeIdempotent } from '#shared/clients/cassandra.ts';
import type { IdPage, IdSource, TokenRange } from '#shared/sync/ports.ts';
import { MIN_TOKEN } from '#shared/sync/tokens.ts';

function rangeQuery(keyspace: string, table: string, range: TokenRange): { cql: string; params: unknown[] } {
  const base = `SELECT id FROM ${keyspace}.${table} WHERE token(id) > ?`;
  const start = cassandra.types.Long.fromString(range.start);
  if (range.end === MIN_TOKEN) return { cql: base, params: [start] };
  return { cql: `${base} AND token(id) <= ?`, params: [start, cassandra.types.Long.fromString(range.end)] };
}

export class CassandraIdSource implements IdSource {
  readonly #client: CassandraClient;

  constructor(client: CassandraClient) {
    this.#client = client;
  }

  async tokenRanges(): Promise<TokenRange[]> {
    await connectCassandra(this.#client);
    return [...this.#client.metadata.getTokenRanges()]
      .flatMap((r) => r.unwrap())
      .sort((a, b) => a.compare(b))
      .map((r) => ({ start: r.start.toString(), end: r.end.toString() }));
  }

  async estimateRows(keyspace: string, table: string): Promise<number> {
    const rs = await executeIdempotent(
      this.#client,
      'SELECT partitions_count FROM system.size_estimates WHERE keyspace_name = ? AND table_name = ?',
      [keyspace, table],
    );
    return rs.rows.reduce((n, r) => n + Number(r.partitions_count ?? 0), 0);
  }

  async countIds(keyspace: string, table: string, range: TokenRange, limit: number): Promise<number> {
    const { cql, params } = rangeQuery(keyspace, table, range);
    const rs = await executeIdempotent(this.#client, `${cql} LIMIT ${limit}`, params, { fetchSize: limit });
    return rs.rows.length;
  }

  async page(
    keyspace: string,
    table: string,
    range: TokenRange,
    pageState: string | null,
    fetchSize: number,
  ): Promise<IdPage> {
    const { cql, params } = rangeQuery(keyspace, table, range);
    const rs = await executeIdempotent(this.#client, cql, params, {
      fetchSize,
      ...(pageState ? { pageState } : {}),
    });
    return { ids: rs.rows.map((r) => r.id as string), next: rs.pageState ?? null };
  }
}
