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
import { createSqsClient } from '#shared/clients/sqs.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import { ConfigError, type FlatConfig } from '#shared/config.ts';
import { type MessageQueue, SqsQueue } from '#shared/queue.ts';
import { Ledger } from '#shared/sync/ledger.ts';

export class SyncRuntime {
  readonly cfg: FlatConfig;
  #cassandra?: CassandraClient;
  #sqs?: SQSClient;
  #syncApi?: SyncApiClient;
  #ledger?: Ledger;

  constructor(cfg: FlatConfig) {
    this.cfg = cfg;
  }

  get cassandra(): CassandraClient {
    this.#cassandra ??= createCassandraClient(cassandraOptionsFrom(this.cfg));
    return this.#cassandra;
  }

  get ledger(): Ledger {
    this.#ledger ??= new Ledger(this.cassandra, this.cfg['cassandra.opsKeyspace']);
    return this.#ledger;
  }

  get sqs(): SQSClient {
    this.#sqs ??= createSqsClient({ region: this.cfg['aws.region'], endpoint: this.cfg['sqs.endpoint'] });
    return this.#sqs;
  }

  get syncApi(): SyncApiClient {
    this.#syncApi ??= new SyncApiClient({
      endpoint: this.cfg['syncApi.endpoint'],
      apiKey: this.cfg['syncApi.apiKey'],
      maxRetries: this.cfg['syncApi.maxRetries'],
      headersTimeoutMs: this.cfg['syncApi.timeoutMs'],
      bodyTimeoutMs: this.cfg['syncApi.timeoutMs'],
    });
    return this.#syncApi;
  }

  queue(name: 'scan' | 'sync' | 'delete'): MessageQueue {
    const url = this.cfg[`queues.${name}`];
    if (!url) throw new ConfigError(`no ${name} queue configured (set ${name.toUpperCase()}_QUEUE_URL)`);
    return new SqsQueue(this.sqs, url);
  }

  hasQueue(name: 'scan' | 'sync' | 'delete'): boolean {
    return Boolean(this.cfg[`queues.${name}`]);
  }

  async close(): Promise<void> {
    await Promise.all([this.#cassandra?.shutdown(), this.#syncApi?.close()]);
    this.#sqs?.destroy();
  }
}
