/**
 * PostgreSQL, installed and run by the machine (Debian's postgresql package, trust auth for
 * `postgres` on 127.0.0.1:5432). We only check it, and start the cluster if it is down; we never stop
 * it, since we did not start it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { HOST, probeWith } from './common.ts';
import { type ServiceDefinition, ServiceError } from './types.ts';

export const POSTGRES_PORT = 5432;

export const postgresService: ServiceDefinition = {
  name: 'postgres',
  version: null,
  ports: [{ port: POSTGRES_PORT, role: 'SQL' }],
  kind: 'external',
  startTimeoutMs: 60_000,

  async start() {
    let versions: string[];
    try {
      versions = readdirSync('/etc/postgresql');
    } catch {
      throw new ServiceError(
        `postgres does not answer on ${HOST}:${POSTGRES_PORT} and no local cluster is installed (/etc/postgresql)`,
      );
    }
    const version = versions.sort().at(-1);
    // --skip-systemctl-redirect: there is no systemd here; start the cluster directly.
    const out = spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', String(version), 'main', 'start'], {
      encoding: 'utf8',
    });
    // Exit 2 means "already running", which is fine (the health wait decides).
    if (out.error || (out.status !== 0 && out.status !== 2)) {
      const line = `${out.stderr ?? ''}${out.stdout ?? ''}`.trim().split('\n')[0] || out.error?.message;
      throw new ServiceError(`starting postgres ${version} failed: ${line}`);
    }
    return null;
  },

  logFile() {
    try {
      const version = readdirSync('/etc/postgresql').sort().at(-1);
      return `/var/log/postgresql/postgresql-${version}-main.log`;
    } catch {
      return null;
    }
  },

  health: () =>
    probeWith(
      POSTGRES_PORT,
      () =>
        new pg.Client({
          host: HOST,
          port: POSTGRES_PORT,
          user: 'postgres',
          database: 'postgres',
          connectionTimeoutMillis: 3000,
        }),
      async (client) => {
        await client.connect();
        await client.query('SELECT 1');
      },
      (client) => client.end(),
    ),
};
