import pg from 'pg';
import { scrubString } from '#shared/redact.ts';

export type PgPool = pg.Pool;

export interface PostgresOptions {
  url: string;
  password?: string;
  max?: number;
  /** An idle connection failed (server restart, failover, terminated backend). Default: one line on stderr. */
  onIdleError?: (err: Error) => void;
}

/** One pool per process; the password may come separately so it never sits in a logged URL. */
export function createPgPool(opts: PostgresOptions): PgPool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    ...(opts.password ? { password: opts.password } : {}),
    max: opts.max ?? 4,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 10_000,
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
