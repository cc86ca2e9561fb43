import pg from 'pg';

export type PgPool = pg.Pool;

export interface PostgresOptions {
  url: string;
  password?: string;
  max?: number;
}

/** One pool per process; the password may come separately so it never sits in a logged URL. */
export function createPgPool(opts: PostgresOptions): PgPool {
  return new pg.Pool({
    connectionString: opts.url,
    ...(opts.password ? { password: opts.password } : {}),
    max: opts.max ?? 4,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 10_000,
    application_name: 'sunbird-dataops',
  });
}
