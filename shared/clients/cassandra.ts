import { readFileSync } from 'node:fs';
import cassandra from 'cassandra-driver';
import type { FlatConfig } from '#shared/config.ts';
import { ServiceUnavailableError } from '#shared/core/errors.ts';

export type CassandraClient = cassandra.Client;
export const { types: cassandraTypes } = cassandra;

export interface CassandraOptions {
  hosts: string[];
  port: number;
  localDataCenter: string;
  username?: string;
  password?: string;
  tls?: boolean;
  /** PEM file of a CA to trust, for TLS to clusters with a private CA. */
  caFile?: string;
  consistency?: string;
  keyspace?: string;
  fetchSize?: number;
  /** Connections per host; raise for heavy concurrent writers (seeding, merge). */
  coreConnectionsPerHost?: number;
}

export function cassandraOptionsFrom(cfg: FlatConfig): CassandraOptions {
  return {
    hosts: cfg['cassandra.hosts'],
    port: cfg['cassandra.port'],
    localDataCenter: cfg['cassandra.localDataCenter'],
    username: cfg['cassandra.username'],
    password: cfg['cassandra.password'],
    tls: cfg['cassandra.tls'],
    consistency: cfg['cassandra.consistency'],
  };
}

const CONSISTENCY: Record<string, number> = {
  ANY: cassandra.types.consistencies.any,
  ONE: cassandra.types.consistencies.one,
  TWO: cassandra.types.consistencies.two,
  THREE: cassandra.types.consistencies.three,
  QUORUM: cassandra.types.consistencies.quorum,
  ALL: cassandra.types.consistencies.all,
  LOCAL_QUORUM: cassandra.types.consistencies.localQuorum,
  EACH_QUORUM: cassandra.types.consistencies.eachQuorum,
  LOCAL_ONE: cassandra.types.consistencies.localOne,
};

export function consistencyOf(name: string): number {
  const value = CONSISTENCY[name.toUpperCase()];
  if (value === undefined) throw new Error(`unknown consistency level ${name}`);
  return value;
}

/** A client with prepared statements on by default and the configured consistency; connect() is lazy. */
export function createCassandraClient(opts: CassandraOptions): CassandraClient {
  const hosts = opts.hosts.map((h) => (h.includes(':') ? h : `${h}:${opts.port}`));
  return new cassandra.Client({
    contactPoints: hosts,
    localDataCenter: opts.localDataCenter,
    ...(opts.keyspace ? { keyspace: opts.keyspace } : {}),
    ...(opts.username
      ? { authProvider: new cassandra.auth.PlainTextAuthProvider(opts.username, opts.password ?? '') }
      : {}),
    ...(opts.tls
      ? {
          sslOptions: {
            rejectUnauthorized: true,
            ...(opts.caFile ? { ca: [readFileSync(opts.caFile)] } : {}),
          },
        }
      : {}),
    queryOptions: {
      prepare: true,
      consistency: consistencyOf(opts.consistency ?? 'LOCAL_QUORUM'),
      fetchSize: opts.fetchSize ?? 5000,
    },
    pooling: opts.coreConnectionsPerHost
      ? { coreConnectionsPerHost: { [cassandra.types.distance.local]: opts.coreConnectionsPerHost } }
      : undefined,
    socketOptions: { connectTimeout: 10_000, readTimeout: 30_000 },
  });
}

export type Row = cassandra.types.Row;

/** Rows of a query, page by page: memory holds one page however large the result. */
export async function* pagedRows(
  client: CassandraClient,
  query: string,
  params: unknown[],
  fetchSize = 1000,
): AsyncGenerator<Row> {
  let pageState: string | undefined;
  do {
    const rs = await client.execute(query, params, {
      prepare: true,
      fetchSize,
      ...(pageState ? { pageState } : {}),
    });
    for (const row of rs.rows) yield row;
    pageState = rs.pageState ?? undefined;
  } while (pageState);
}

/** The driver's errors that mean "Cassandra is not there", as the taxonomy's ServiceUnavailableError. */
export function cassandraError(err: unknown, opts: Pick<CassandraOptions, 'hosts' | 'port'>): unknown {
  const { errors } = cassandra;
  if (!(err instanceof errors.NoHostAvailableError || err instanceof errors.OperationTimedOutError))
    return err;
  const address = `${opts.hosts.join(',')}:${opts.port}`;
  return new ServiceUnavailableError('Cassandra', `Cassandra is not reachable at ${address}`, {
    address,
    cause: err,
  });
}
