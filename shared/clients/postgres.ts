/**
 * The PostgreSQL pool factory (Keycloak's database). Every wait is bounded by `timeoutMs`: connecting,
 * each statement on the server (`statement_timeout`, which also bounds lock waits) and each query on the
 * client side (`query_timeout`, for a server or link that stalls). `postgresError` puts the driver's errors
 * on the taxonomy: unreachable or timed out → unavailable, login or privilege refused → credentials
 * refused, both naming the server without the password.
 */
import pg from 'pg';
import {
  CredentialsRefusedError,
  DataOpsError,
  oneLine,
  ServiceUnavailableError,
} from '#shared/core/errors.ts';
import { isRetryableNetworkError } from '#shared/core/retry.ts';
import { scrubString } from '#shared/redact.ts';

export type PgPool = pg.Pool;

export interface PostgresOptions {
  url: string;
  password?: string;
  max?: number;
  /** Connecting and each statement, in ms (default 30 s; connecting at most 10 s). */
  timeoutMs?: number;
  /** An idle connection failed (server restart, failover, terminated backend). Default: one line on stderr. */
  onIdleError?: (err: Error) => void;
}

export const POSTGRES_DEFAULT_TIMEOUT_MS = 30_000;

/** One pool per process; the password may come separately so it never sits in a logged URL. */
export function createPgPool(opts: PostgresOptions): PgPool {
  const timeoutMs = opts.timeoutMs ?? POSTGRES_DEFAULT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: opts.url,
    ...(opts.password ? { password: opts.password } : {}),
    max: opts.max ?? 4,
    connectionTimeoutMillis: Math.min(timeoutMs, 10_000),
    idleTimeoutMillis: 10_000,
    statement_timeout: timeoutMs,
    // A little later than the server's own limit, so a statement the server cancels says so itself.
    query_timeout: timeoutMs + 1_000,
    application_name: 'sunbird-dataops',
  });
  // pg re-emits an idle client's error on the pool (the client is already discarded and the next query
  // opens a new one); without a listener that event would crash the process.
  pool.on(
    'error',
    opts.onIdleError ??
      ((err) =>
        process.stderr.write(`postgres: an idle connection was closed: ${scrubString(err.message)}\n`)),
  );
  return pool;
}

/** host:port/database of a connection URL, without user or password. */
export function pgAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}

/** SQLSTATE classes and codes that mean "not reachable / not now" and "refused". */
const UNAVAILABLE_STATES = /^(08|57P0[1-3]|53300$|57014$)/;
const REFUSED_STATES = /^(28|42501$)/;

/**
 * A driver error on the taxonomy (see the module comment); `service` names the database in the message
 * (e.g. "Keycloak database"). Anything else — a query bug, a constraint — passes through.
 */
export function postgresError(err: unknown, url: string | PgPool, service = 'PostgreSQL'): unknown {
  if (err instanceof DataOpsError) return err;
  const address = pgAddress(typeof url === 'string' ? url : (url.options.connectionString ?? ''));
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  const message = scrubString(oneLine(err));
  if (REFUSED_STATES.test(code))
    return new CredentialsRefusedError(service, `${service} at ${address} refused us: ${message}`, {
      cause: err,
    });
  // pg reports its own connect and query timeouts as plain Errors: their text is all there is to go by.
  const timedOut = /timeout|timed out|terminated/i.test(message);
  if (UNAVAILABLE_STATES.test(code) || isRetryableNetworkError(err) || timedOut)
    return new ServiceUnavailableError(service, `${service} at ${address} is not available: ${message}`, {
      address,
      cause: err,
    });
  return err;
}
