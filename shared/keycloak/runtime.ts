/**
 * Wiring of the Keycloak job's adapters from configuration (Lambda and CLI alike): Keycloak's PostgreSQL,
 * the Admin API (only when a base URL is configured, and only created when first needed, so a dry run
 * never logs in) and the Cassandra user directory. Created lazily and once per container.
 */
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { createPgPool, type PgPool } from '#shared/clients/postgres.ts';
import type { FlatConfig } from '#shared/config.ts';
import {
  adminApiOptionsFrom,
  createKeycloakAdminApi,
  type KeycloakAdminApi,
} from '#shared/keycloak/admin-api.ts';
import type { DeleteStageDeps } from '#shared/keycloak/delete-stage.ts';
import { DeletionLedger } from '#shared/keycloak/deletion-ledger.ts';
import { cassandraUserDirectory, type UserDirectory } from '#shared/keycloak/user-directory.ts';
import type { Logger } from '#shared/logger.ts';
import type { Ledger } from '#shared/sync/ledger.ts';

export class KeycloakRuntime {
  readonly cfg: FlatConfig;
  readonly #cassandra: () => CassandraClient;
  readonly #logger: Logger | undefined;
  #pool?: PgPool;
  #adminApi?: KeycloakAdminApi;
  #directory?: UserDirectory;

  constructor(cfg: FlatConfig, cassandra: () => CassandraClient, logger?: Logger) {
    this.cfg = cfg;
    this.#cassandra = cassandra;
    this.#logger = logger;
  }

  get pool(): PgPool {
    this.#pool ??= createPgPool({
      url: this.cfg['postgres.url'],
      password: this.cfg['postgres.password'],
      max: 4,
    });
    return this.#pool;
  }

  get hasAdminApi(): boolean {
    return Boolean(this.cfg['keycloak.baseUrl']);
  }

  /** The Admin API client, or undefined when no Keycloak base URL is configured. */
  adminApi(): KeycloakAdminApi | undefined {
    if (!this.hasAdminApi) return undefined;
    this.#adminApi ??= createKeycloakAdminApi(adminApiOptionsFrom(this.cfg, this.#logger));
    return this.#adminApi;
  }

  get directory(): UserDirectory {
    this.#directory ??= cassandraUserDirectory(this.#cassandra(), {
      keyspace: this.cfg['cassandra.keyspace'],
      concurrency: this.cfg['keycloak.concurrency'] * 8,
    });
    return this.#directory;
  }

  stageDeps(ledger: Ledger): DeleteStageDeps {
    return {
      pool: this.pool,
      directory: this.directory,
      adminApi: () => this.adminApi(),
      protectedRoles: this.cfg['keycloak.protectedRoles'],
      mode: this.cfg['keycloak.deleteMode'],
      ledger: new DeletionLedger(ledger),
      ...(this.#logger ? { logger: this.#logger } : {}),
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.#pool?.end(), this.#adminApi?.close()]);
  }
}
