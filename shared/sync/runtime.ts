/**
 * Wiring of the sync job's adapters from configuration, shared by the Lambda handlers and the CLI.
 * Everything is created lazily and once, so a warm Lambda container reuses its connections.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import {
  type CassandraClient,
  cassandraOptionsFrom,
  createCassandraClient,
} from '#shared/clients/cassandra.ts';
import { createSqsClient, sqsOptionsFrom } from '#shared/clients/sqs.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import { ConfigError, type FlatConfig, SETTINGS, type SettingKey } from '#shared/config.ts';
import { SqsQueue } from '#shared/queue/sqs.ts';
import { CassandraIdSource } from '#shared/sync/cassandra-ids.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import type { IdSource, RunLedger, SyncApi } from '#shared/sync/ports.ts';

/** The configuration key of a queue by its stage name (`sync`, `scan`, or a later stage's name). */
function queueKey(name: string): SettingKey | undefined {
  const key = `queues.${name}`;
  return key in SETTINGS ? (key as SettingKey) : undefined;
}

export class SyncRuntime {
  readonly cfg: FlatConfig;
  #cassandra?: CassandraClient;
  #sqs?: SQSClient;
  #syncApi?: SyncApiClient;
  #ledger?: RunLedger;
  #ids?: IdSource;
  readonly #queues = new Map<string, SqsQueue>();

  constructor(cfg: FlatConfig) {
    this.cfg = cfg;
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
    this.#ledger ??= new CassandraRunLedger(this.cassandra, this.cfg['cassandra.opsKeyspace']);
    return this.#ledger;
  }

  get sqs(): SQSClient {
    this.#sqs ??= createSqsClient(sqsOptionsFrom(this.cfg));
    return this.#sqs;
  }

  get syncApi(): SyncApi {
    this.#syncApi ??= new SyncApiClient({
      endpoint: this.cfg['syncApi.endpoint'],
      apiKey: this.cfg['syncApi.apiKey'],
      maxRetries: this.cfg['syncApi.maxRetries'],
      headersTimeoutMs: this.cfg['syncApi.timeoutMs'],
      bodyTimeoutMs: this.cfg['syncApi.timeoutMs'],
    });
    return this.#syncApi;
  }

  /** The queue of a stage (`scan`, `sync`, `delete`, …) from its `<NAME>_QUEUE_URL` setting. */
  queue(name: string): SqsQueue {
    const key = queueKey(name);
    const url = key ? (this.cfg[key] as string) : '';
    if (!url) {
      const env = key ? SETTINGS[key].env : `${name.toUpperCase()}_QUEUE_URL`;
      throw new ConfigError(`no ${name} queue configured (set ${env})`);
    }
    let q = this.#queues.get(url);
    if (!q) {
      // A local consumer (CLI `--queue-url`) holds a block for up to two minutes before others may take it.
      q = new SqsQueue(this.sqs, url, { visibilityTimeoutS: 120 });
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
  }
}
