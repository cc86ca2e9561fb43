/**
 * Wiring of the sync job's adapters from configuration, shared by the Lambda handlers and the CLI.
 * Everything is created lazily and once, so a warm Lambda container reuses its connections. The SQS and
 * Sync API clients are also *loaded* on first use (`import()`): of the functions built on this runtime,
 * only `sync-block` calls the Sync API and only `fanout` always sends to a queue, so each entry loads
 * the one it always needs during its start-up (`loadSyncApi`, `loadQueues`) and the others never do.
 */
import type { DatabaseSync } from 'node:sqlite';
import type { SQSClient } from '@aws-sdk/client-sqs';
import {
  type CassandraClient,
  cassandraOptionsFrom,
  createCassandraClient,
} from '#shared/clients/cassandra.ts';
import { defaultStateDir, openStateDb } from '#shared/clients/sqlite.ts';
import type { SyncApiClient } from '#shared/clients/sync-api.ts';
import { ConfigError, type FlatConfig, SETTINGS, type SettingKey } from '#shared/config.ts';
import { once } from '#shared/core/once.ts';
import { LazyQueue, type ReceivingQueue } from '#shared/queue/queue.ts';
import { CassandraIdSource } from '#shared/sync/cassandra-ids.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import type { IdSource, RunLedger, SyncApi } from '#shared/sync/ports.ts';
import { SqliteRunLedger } from '#shared/sync/sqlite-ledger.ts';

/** The configuration key of a queue by its stage name (`sync`, `scan`, or a later stage's name). */
function queueKey(name: string): SettingKey | undefined {
  const key = `queues.${name}`;
  return key in SETTINGS ? (key as SettingKey) : undefined;
}

export interface SyncRuntimeOptions {
  /** Who runs: the CLI keeps its ledger embedded by default, AWS in Cassandra (`LEDGER=auto`). */
  role?: 'cli' | 'lambda';
}

export class SyncRuntime {
  readonly cfg: FlatConfig;
  readonly role: 'cli' | 'lambda';
  #cassandra?: CassandraClient;
  #stateDb?: DatabaseSync;
  #sqs?: SQSClient;
  #syncApi?: SyncApiClient;
  #syncApiPort?: SyncApi;
  #ledger?: RunLedger;
  #ids?: IdSource;
  readonly #queues = new Map<string, ReceivingQueue>();

  constructor(cfg: FlatConfig, opts: SyncRuntimeOptions = {}) {
    this.cfg = cfg;
    this.role = opts.role ?? 'lambda';
  }

  /** The run ledger is the embedded SQLite file (else the Cassandra ops keyspace). */
  get embedded(): boolean {
    const kind = this.cfg['ledger.kind'];
    return kind === 'embedded' || (kind === 'auto' && this.role === 'cli');
  }

  get stateDir(): string {
    return this.cfg['ledger.stateDir'] || defaultStateDir();
  }

  /** The embedded ledger's database (undefined when the ledger is in Cassandra). */
  get stateDb(): DatabaseSync | undefined {
    if (!this.embedded) return undefined;
    this.#stateDb ??= openStateDb(this.stateDir);
    return this.#stateDb;
  }

  get cassandra(): CassandraClient {
    this.#cassandra ??= createCassandraClient(cassandraOptionsFrom(this.cfg));
    return this.#cassandra;
  }

  get ids(): IdSource {
    this.#ids ??= new CassandraIdSource(this.cassandra);
    return this.#ids;
  }

  get ledger(): RunLedger {
    const db = this.stateDb;
    this.#ledger ??= db
      ? new SqliteRunLedger(db)
      : // A CLI run keeps its blocks in memory: record them as pending so it can be resumed.
        new CassandraRunLedger(this.cassandra, this.cfg['cassandra.opsKeyspace'], {
          trackPending: this.role === 'cli',
        });
    return this.#ledger;
  }

  /** Where the ledger is, for messages: the SQLite file or the keyspace. */
  get ledgerLocation(): string {
    return this.embedded ? `${this.stateDir}/ledger.sqlite` : `keyspace ${this.cfg['cassandra.opsKeyspace']}`;
  }

  /** Loads the SQS client and queue adapter (once); `fanout` does so at start-up, as it always sends. */
  readonly loadQueues = once(async () => {
    const [{ createSqsClient, sqsOptionsFrom }, { SqsQueue }] = await Promise.all([
      import('#shared/clients/sqs.ts'),
      import('#shared/queue/sqs.ts'),
    ]);
    this.#sqs ??= createSqsClient(sqsOptionsFrom(this.cfg));
    const sqs = this.#sqs;
    // A local consumer (CLI `--queue-url`) holds a block for up to two minutes before others may take it.
    return (url: string) => new SqsQueue(sqs, url, { visibilityTimeoutS: 120 });
  });

  /** Loads the Sync API client (once); `sync-block` does so at start-up, as it always calls the API. */
  readonly loadSyncApi = once(async () => {
    const { SyncApiClient } = await import('#shared/clients/sync-api.ts');
    this.#syncApi ??= new SyncApiClient({
      endpoint: this.cfg['syncApi.endpoint'],
      apiKey: this.cfg['syncApi.apiKey'],
      maxRetries: this.cfg['syncApi.maxRetries'],
      headersTimeoutMs: this.cfg['syncApi.timeoutMs'],
      bodyTimeoutMs: this.cfg['syncApi.timeoutMs'],
    });
    return this.#syncApi;
  });

  get syncApi(): SyncApi {
    this.#syncApiPort ??= {
      sync: async (objectType, ids, options) => (await this.loadSyncApi()).sync(objectType, ids, options),
      check: async (signal) => (await this.loadSyncApi()).check(signal),
    };
    return this.#syncApiPort;
  }

  /** The queue of a stage (`scan`, `sync`, `delete`, …) from its `<NAME>_QUEUE_URL` setting. */
  queue(name: string): ReceivingQueue {
    const key = queueKey(name);
    const url = key ? (this.cfg[key] as string) : '';
    if (!url) {
      const env = key ? SETTINGS[key].env : `${name.toUpperCase()}_QUEUE_URL`;
      throw new ConfigError(`no ${name} queue configured (set ${env})`);
    }
    let q = this.#queues.get(url);
    if (!q) {
      const queue = once(async () => (await this.loadQueues())(url));
      q = new LazyQueue(queue);
      this.#queues.set(url, q);
    }
    return q;
  }

  hasQueue(name: string): boolean {
    const key = queueKey(name);
    return Boolean(key && this.cfg[key]);
  }

  async close(): Promise<void> {
    await Promise.all([this.#cassandra?.shutdown(), this.#syncApi?.close()]);
    this.#sqs?.destroy();
    this.#stateDb?.close();
    this.#stateDb = undefined;
  }
}
