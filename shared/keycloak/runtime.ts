/**
 * Wiring of the Keycloak job's adapters from configuration (Lambda and CLI alike): Keycloak's PostgreSQL
 * (read side and SQL store), the Admin API (only when a base URL is configured, and only created when
 * first needed, so a dry run never logs in), the Cassandra user directory and deletion records. Created
 * lazily and once per container.
 */
import type { DatabaseSync } from 'node:sqlite';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { createPgPool, type PgPool } from '#shared/clients/postgres.ts';
import type { FlatConfig } from '#shared/config.ts';
import {
  adminApiOptionsFrom,
  createKeycloakAdminApi,
  type KeycloakAdminApi,
} from '#shared/keycloak/admin-api.ts';
import { AdminApiUserStore } from '#shared/keycloak/admin-api-store.ts';
import { cassandraUserDirectory } from '#shared/keycloak/cassandra-directory.ts';
import { CassandraDeletionRecords } from '#shared/keycloak/cassandra-records.ts';
import type { DeleteBlockDeps } from '#shared/keycloak/delete-block.ts';
import type { DeleteStageDeps } from '#shared/keycloak/delete-stage.ts';
import { KeycloakDataError } from '#shared/keycloak/errors.ts';
import { PgKeycloakUsers } from '#shared/keycloak/pg-users.ts';
import type {
  DeleteMode,
  DeletionRecords,
  KeycloakUsers,
  UserDirectory,
  UserStore,
} from '#shared/keycloak/ports.ts';
import { SqlUserStore } from '#shared/keycloak/sql-store.ts';
import { SqliteDeletionRecords } from '#shared/keycloak/sqlite-records.ts';
import type { Logger } from '#shared/logger.ts';
import type { RunLedger } from '#shared/sync/ports.ts';

/** The store of a deletion mode: SQL on Keycloak's database, or the Admin API (which must be configured). */
export function createUserStore(
  mode: DeleteMode,
  pool: PgPool,
  adminApi: () => KeycloakAdminApi | undefined,
): UserStore {
  if (mode === 'sql') return new SqlUserStore(pool, adminApi);
  const api = adminApi();
  if (!api) {
    throw new KeycloakDataError(
      'admin-api mode needs the Keycloak Admin API configured (KEYCLOAK_BASE_URL and credentials)',
    );
  }
  return new AdminApiUserStore(api);
}

/** Delete-block dependencies on Keycloak's PostgreSQL and (optionally) its Admin API. */
export function pgDeleteDeps(opts: {
  pool: PgPool;
  directory: UserDirectory;
  mode: DeleteMode;
  adminApi?: KeycloakAdminApi | undefined;
  protectedRoles: readonly string[];
  logger?: Logger;
}): DeleteBlockDeps {
  return {
    users: new PgKeycloakUsers(opts.pool),
    directory: opts.directory,
    store: () => createUserStore(opts.mode, opts.pool, () => opts.adminApi),
    protectedRoles: opts.protectedRoles,
    ...(opts.logger ? { logger: opts.logger } : {}),
  };
}

export class KeycloakRuntime {
  readonly cfg: FlatConfig;
  readonly #cassandra: () => CassandraClient;
  readonly #logger: Logger | undefined;
  #pool?: PgPool;
  #users?: KeycloakUsers;
  #adminApi?: KeycloakAdminApi;
  #directory?: UserDirectory;
  #store?: UserStore;
  #records?: DeletionRecords;

  readonly #stateDb: () => DatabaseSync | undefined;

  /** `stateDb`: the CLI's embedded ledger, when the run ledger is there (the records go beside it). */
  constructor(
    cfg: FlatConfig,
    cassandra: () => CassandraClient,
    logger?: Logger,
    stateDb: () => DatabaseSync | undefined = () => undefined,
  ) {
    this.cfg = cfg;
    this.#cassandra = cassandra;
    this.#logger = logger;
    this.#stateDb = stateDb;
  }

  get pool(): PgPool {
    this.#pool ??= createPgPool({
      url: this.cfg['postgres.url'],
      password: this.cfg['postgres.password'],
      max: 4,
      timeoutMs: this.cfg['postgres.timeoutMs'],
    });
    return this.#pool;
  }

  get users(): KeycloakUsers {
    this.#users ??= new PgKeycloakUsers(this.pool);
    return this.#users;
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

  /** Where users are deleted, by KEYCLOAK_DELETE_MODE; admin-api mode needs the Admin API configured. */
  store(): UserStore {
    this.#store ??= createUserStore(this.cfg['keycloak.deleteMode'], this.pool, () => this.adminApi());
    return this.#store;
  }

  get directory(): UserDirectory {
    this.#directory ??= cassandraUserDirectory(this.#cassandra(), {
      keyspace: this.cfg['cassandra.keyspace'],
      concurrency: this.cfg['keycloak.concurrency'],
    });
    return this.#directory;
  }

  get records(): DeletionRecords {
    if (!this.#records) {
      const db = this.#stateDb();
      this.#records = db
        ? new SqliteDeletionRecords(db)
        : new CassandraDeletionRecords(this.#cassandra(), this.cfg['cassandra.opsKeyspace']);
    }
    return this.#records;
  }

  stageDeps(ledger: RunLedger): DeleteStageDeps {
    return {
      users: this.users,
      directory: this.directory,
      store: () => this.store(),
      protectedRoles: this.cfg['keycloak.protectedRoles'],
      ledger,
      records: this.records,
      ...(this.#logger ? { logger: this.#logger } : {}),
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.#pool?.end(), this.#adminApi?.close()]);
  }
}
