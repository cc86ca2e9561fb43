/**
 * The Cassandra client factory and the one place that knows what the driver's errors mean.
 *
 * Every wait is bounded: connecting (`connectTimeoutMs`), each request (`readTimeoutMs`, after which the
 * connection is declared defunct and replaced, so a stalled node cannot hold a run), and riding out an
 * outage (`retryWindowMs`). Idempotent statements — reads, and the upserts of the ledger — go through
 * `executeIdempotent`: a blip (connection reset, node restarting, a stall, "unavailable") is retried with
 * backoff while the driver reconnects, for at most the window; a page is re-read from its own paging
 * state, so a scan continues where it was. A client that never connected fails at once (a wrong host or
 * port is not a blip). When the window runs out the error is the taxonomy's ServiceUnavailableError
 * naming Cassandra and its address; refused credentials or privileges are a CredentialsRefusedError.
 */
import { readFileSync } from 'node:fs';
import cassandra from 'cassandra-driver';
import type { FlatConfig } from '#shared/config.ts';
import {
  BadInputError,
  CredentialsRefusedError,
  DataOpsError,
  oneLine,
  ServiceUnavailableError,
} from '#shared/core/errors.ts';
import { type RetryPolicy, withRetry } from '#shared/core/retry.ts';
import { deadline } from '#shared/core/time.ts';

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
  /** Opening a connection (TCP, TLS and the CQL handshake), in ms. */
  connectTimeoutMs?: number;
  /** One request on an open connection, in ms; Cassandra's own range-read timeout is 10 s. */
  readTimeoutMs?: number;
  /** How long idempotent statements are retried across an outage before giving up (0 = no retry). */
  retryWindowMs?: number;
  /** Where outage and recovery notices go (default: one line on stderr each). */
  log?: (line: string) => void;
}

export const CASSANDRA_DEFAULTS = { connectTimeoutMs: 5_000, readTimeoutMs: 12_000, retryWindowMs: 60_000 };

export function cassandraOptionsFrom(cfg: FlatConfig): CassandraOptions {
  return {
    hosts: cfg['cassandra.hosts'],
    port: cfg['cassandra.port'],
    localDataCenter: cfg['cassandra.localDataCenter'],
    username: cfg['cassandra.username'],
    password: cfg['cassandra.password'],
    tls: cfg['cassandra.tls'],
    consistency: cfg['cassandra.consistency'],
    connectTimeoutMs: cfg['cassandra.connectTimeoutMs'],
    readTimeoutMs: cfg['cassandra.readTimeoutMs'],
    retryWindowMs: cfg['cassandra.retryWindowMs'],
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

/** What `executeIdempotent` and the error mapping need to know about a client. */
interface ClientInfo {
  address: string;
  username: string;
  retryWindowMs: number;
  log: (line: string) => void;
  /** When the current outage was first seen (undefined while all is well). */
  outageSince?: number;
}

const INFO = new WeakMap<CassandraClient, ClientInfo>();

function addressOf(opts: Pick<CassandraOptions, 'hosts' | 'port'>): string {
  return opts.hosts.map((h) => (h.includes(':') ? h : `${h}:${opts.port}`)).join(',');
}

function infoOf(client: CassandraClient): ClientInfo {
  let info = INFO.get(client);
  if (!info) {
    // A client built elsewhere: describe it from its own options, with the default window.
    const o = (client as unknown as { options?: { contactPoints?: string[] } }).options;
    info = {
      address: (o?.contactPoints ?? []).join(',') || 'unknown address',
      username: '',
      retryWindowMs: CASSANDRA_DEFAULTS.retryWindowMs,
      log: (line) => process.stderr.write(`${line}\n`),
    };
    INFO.set(client, info);
  }
  return info;
}

/** A client with prepared statements on by default and the configured consistency; connect() is lazy. */
export function createCassandraClient(opts: CassandraOptions): CassandraClient {
  const hosts = opts.hosts.map((h) => (h.includes(':') ? h : `${h}:${opts.port}`));
  const client = new cassandra.Client({
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
    socketOptions: {
      connectTimeout: opts.connectTimeoutMs ?? CASSANDRA_DEFAULTS.connectTimeoutMs,
      readTimeout: opts.readTimeoutMs ?? CASSANDRA_DEFAULTS.readTimeoutMs,
      // A request that timed out leaves its connection suspect (a stall, a half-open socket): replace
      // it at once instead of after the driver's default of 64 timeouts, which a stalled node never ends.
      defunctReadTimeoutThreshold: 1,
    },
    policies: {
      // Try a lost node again soon (0.5 s, doubling to 5 s), so a short outage ends within seconds.
      reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(500, 5_000, false),
    },
  });
  // Driver 4.x: when every host was down, the control connection re-adds the contact point as a new Host
  // and drops the old one from its map without shutting it down; the old pool then reconnects forever in
  // the background (an orphan that also keeps a finished process alive). A removed host is shut down here,
  // as the driver itself does for a node that left the cluster.
  client.on('hostRemove', (host: { shutdown?: (wait: boolean) => Promise<void> }) => {
    host.shutdown?.(false).catch(() => undefined);
  });
  INFO.set(client, {
    address: addressOf(opts),
    username: opts.username ?? '',
    retryWindowMs: opts.retryWindowMs ?? CASSANDRA_DEFAULTS.retryWindowMs,
    log: opts.log ?? ((line) => process.stderr.write(`${line}\n`)),
  });
  return client;
}

export type Row = cassandra.types.Row;
export type ResultSet = cassandra.types.ResultSet;

const { errors, types } = cassandra;
const codes = types.responseErrorCodes;
/** Server answers that say "not now" rather than "no". */
const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  codes.unavailableException,
  codes.overloaded,
  codes.isBootstrapping,
  codes.readTimeout,
  codes.writeTimeout,
]);

/**
 * Whether an error is a blip worth another try of an idempotent statement: no host reachable, a request
 * timed out, the connection dropped under it, or the node said it is unavailable or overloaded.
 */
export function isCassandraBlip(err: unknown): boolean {
  if (err instanceof errors.NoHostAvailableError) return !isAuthFailure(err);
  if (err instanceof errors.OperationTimedOutError) return true;
  if ((err as { isSocketError?: unknown } | null)?.isSocketError === true) return true;
  return err instanceof errors.ResponseError && TRANSIENT_CODES.has(err.code);
}

/** Every host refused our credentials (bad user or password). */
function isAuthFailure(err: InstanceType<typeof errors.NoHostAvailableError>): boolean {
  const inner = Object.values(err.innerErrors ?? {});
  return inner.length > 0 && inner.every((e) => e instanceof errors.AuthenticationError);
}

/** Retries fast enough to notice a recovery within a couple of seconds; the window bounds the total. */
const BLIP_RETRY: RetryPolicy = {
  maxRetries: Number.MAX_SAFE_INTEGER,
  minBackoffMs: 250,
  maxBackoffMs: 2_000,
  maxRetryAfterMs: 0,
};

const everConnected = (client: CassandraClient): boolean =>
  (client as unknown as { connected?: boolean }).connected === true;

/**
 * Runs an idempotent statement (a read, or an upsert of absolute values), riding out an outage of up to
 * the client's retry window. A paged read passes its `pageState` in `options`, so a retried page starts
 * where the failed one did. Errors come out on the taxonomy (see `cassandraError`).
 */
export function executeIdempotent(
  client: CassandraClient,
  query: string,
  params: unknown[] = [],
  options: cassandra.QueryOptions = {},
): Promise<ResultSet> {
  return rideOutBlips(client, () =>
    client.execute(query, params as cassandra.ArrayOrObject, {
      prepare: true,
      ...options,
      isIdempotent: true,
    }),
  );
}

/**
 * An unlogged batch of idempotent upserts, with the same outage handling. Meant for rows of one
 * partition: Cassandra applies them as one mutation, and such batches are exempt from its batch size
 * limits (CASSANDRA-10876).
 */
export function batchIdempotent(
  client: CassandraClient,
  queries: Array<{ query: string; params: unknown[] }>,
): Promise<ResultSet> {
  return rideOutBlips(client, () =>
    client.batch(queries as Array<{ query: string; params: cassandra.ArrayOrObject }>, {
      prepare: true,
      logged: false,
      isIdempotent: true,
    }),
  );
}

async function rideOutBlips(client: CassandraClient, call: () => Promise<ResultSet>): Promise<ResultSet> {
  const info = infoOf(client);
  const window = deadline(info.retryWindowMs);
  try {
    const rs = await withRetry(call, {
      policy: BLIP_RETRY,
      retryable: (err) => isCassandraBlip(err) && everConnected(client) && !window.passed(),
      onRetry: ({ error }) => {
        if (info.outageSince !== undefined) return;
        info.outageSince = Date.now();
        info.log(
          `cassandra: ${info.address} not answering (${oneLine(error)}); retrying for up to ${Math.round(info.retryWindowMs / 1000)} s`,
        );
      },
    });
    if (info.outageSince !== undefined) {
      info.log(
        `cassandra: ${info.address} answering again after ${Math.round((Date.now() - info.outageSince) / 1000)} s`,
      );
      info.outageSince = undefined;
    }
    return rs;
  } catch (err) {
    throw cassandraError(err, info);
  }
}

/** Rows of a query, page by page: memory holds one page however large the result. Pages ride out blips. */
export async function* pagedRows(
  client: CassandraClient,
  query: string,
  params: unknown[],
  fetchSize = 1000,
): AsyncGenerator<Row> {
  let pageState: string | undefined;
  do {
    const rs = await executeIdempotent(client, query, params, {
      fetchSize,
      ...(pageState ? { pageState } : {}),
    });
    for (const row of rs.rows) yield row;
    pageState = rs.pageState ?? undefined;
  } while (pageState);
}

/** Connects (bounded by the connect timeout), with a failure on the taxonomy. */
export async function connectCassandra(client: CassandraClient): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    throw cassandraError(err, infoOf(client));
  }
}

type Described = Pick<CassandraOptions, 'hosts' | 'port'> | Pick<ClientInfo, 'address' | 'username'>;

/**
 * The driver's errors on the taxonomy: not reachable or timed out → ServiceUnavailableError (exit 3),
 * credentials or privileges refused → CredentialsRefusedError (exit 3), a keyspace or table that does not
 * exist → BadInputError (exit 2). Anything else (and errors already classified) passes through.
 */
export function cassandraError(err: unknown, where: Described): unknown {
  if (err instanceof DataOpsError) return err;
  const address = 'address' in where ? where.address : addressOf(where);
  const user = 'username' in where && where.username ? ` as "${where.username}"` : '';
  const refused = (what: string) =>
    new CredentialsRefusedError(
      'Cassandra',
      `Cassandra at ${address} refused ${what}${user}: ${oneLine(err)}`,
      {
        cause: err,
      },
    );
  if (err instanceof errors.NoHostAvailableError && isAuthFailure(err)) return refused('the credentials');
  if (err instanceof errors.AuthenticationError) return refused('the credentials');
  if (err instanceof errors.ResponseError) {
    if (err.code === codes.badCredentials) return refused('the credentials');
    if (err.code === codes.unauthorized) return refused('the request');
    if (err.code === codes.invalid)
      return new BadInputError(`Cassandra at ${address} rejected the query: ${oneLine(err)}`, { cause: err });
  }
  if (!isCassandraBlip(err)) return err;
  return new ServiceUnavailableError(
    'Cassandra',
    `Cassandra is not reachable at ${address}: ${oneLine(err)}`,
    {
      address,
      cause: err,
    },
  );
}
