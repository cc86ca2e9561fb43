/**
 * Every network wait is bounded: each client, pointed at a server that accepts the connection and then
 * never answers (a TCP proxy cut in blackhole mode, test/helpers/tcp-proxy.ts), gives up on its own with
 * an error on the taxonomy naming the service — instead of waiting for ever. Cassandra (stalls, outages)
 * and Kafka (merge) have their own files; PostgreSQL's statement timeout is checked on the real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPgPool, postgresError } from '#shared/clients/postgres.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import { ServiceUnavailableError } from '#shared/core/errors.ts';
import { createKeycloakAdminApi } from '#shared/keycloak/admin-api.ts';
import { KeycloakUnreachableError } from '#shared/keycloak/errors.ts';
import { startTcpProxy, type TcpProxy } from '#test/helpers/tcp-proxy.ts';

let silent: TcpProxy;

before(async () => {
  // The target is never reached: every connection is held open and never answered.
  silent = await startTcpProxy({ port: 9 });
  silent.cut('blackhole');
});

after(async () => {
  await silent.close();
});

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail('a server that never answers cannot succeed'),
    (e: unknown) => e,
  );
}

describe('bounded waits against a server that never answers', () => {
  test('PostgreSQL: connecting gives up after the timeout; unavailable, naming the server', async () => {
    const url = `postgres://postgres@127.0.0.1:${silent.port}/keycloak`;
    const pool = createPgPool({ url, timeoutMs: 500, onIdleError: () => {} });
    try {
      const err = postgresError(await failure(pool.query('SELECT 1')), url, 'Keycloak database');
      assert.ok(err instanceof ServiceUnavailableError, String(err));
      assert.equal(err.service, 'Keycloak database');
      assert.match(
        err.message,
        new RegExp(`^Keycloak database at 127\\.0\\.0\\.1:${silent.port}/keycloak is not available: `),
      );
    } finally {
      await pool.end();
    }
  });

  test('PostgreSQL: a statement that runs too long is cancelled by the server (statement_timeout)', async () => {
    const url = 'postgres://postgres@127.0.0.1:5432/postgres';
    const pool = createPgPool({ url, timeoutMs: 300 });
    try {
      const raw = await failure(pool.query('SELECT pg_sleep(5)'));
      assert.equal((raw as { code?: string }).code, '57014', 'canceling statement due to statement timeout');
      const err = postgresError(raw, url);
      assert.ok(err instanceof ServiceUnavailableError, String(err));
      assert.deepEqual((await pool.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the pool is still usable');
    } finally {
      await pool.end();
    }
  });

  test('Keycloak Admin API: the token request gives up after the timeout; unreachable (exit 3)', async () => {
    const api = createKeycloakAdminApi({
      baseUrl: `http://127.0.0.1:${silent.port}`,
      adminRealm: 'master',
      clientId: 'admin-cli',
      username: 'admin',
      password: 'irrelevant',
      timeoutMs: 500,
      maxRetries: 1,
      retryBaseMs: 10,
    });
    try {
      const err = await failure(api.login());
      assert.ok(err instanceof KeycloakUnreachableError, String(err));
      assert.match(err.message, /cannot reach Keycloak token endpoint/);
    } finally {
      await api.close();
    }
  });

  test('Sync API: the preflight gives up after the timeout; unavailable (exit 3)', async () => {
    const client = new SyncApiClient({
      endpoint: `http://127.0.0.1:${silent.port}/v1/data/sync`,
      apiKey: 'k',
      headersTimeoutMs: 500,
      bodyTimeoutMs: 500,
      maxRetries: 1,
      minBackoffMs: 10,
    });
    try {
      const err = await failure(client.check());
      assert.ok(err instanceof ServiceUnavailableError, String(err));
      assert.match(err.message, /is not available: .*(Headers Timeout|UND_ERR_HEADERS_TIMEOUT)/i);
    } finally {
      await client.close();
    }
  });
});
