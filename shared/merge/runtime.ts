/** Wires the merge core to real services from the validated configuration (Lambda, CLI, bridge, tests). */
import {
  type CassandraClient,
  cassandraOptionsFrom,
  createCassandraClient,
} from '#shared/clients/cassandra.ts';
import {
  connectProducer,
  createProducer,
  type KafkaOptions,
  kafkaOptionsFrom,
  produce,
  type StringProducer,
} from '#shared/clients/kafka.ts';
import { ConfigError, type FlatConfig, resolveEnvName } from '#shared/config.ts';
import type { Metrics } from '#shared/core/metrics.ts';
import { CassandraMergeStore } from '#shared/merge/cassandra-store.ts';
import type { EventPublisher } from '#shared/merge/merge.ts';
import type { ProcessDeps } from '#shared/merge/process.ts';

export interface MergeTopics {
  input: string;
  failed: string;
  courseBatch: string;
  groupId: string;
}

export function mergeTopicsFrom(cfg: FlatConfig): MergeTopics {
  const env = cfg['kafka.env'];
  return {
    input: resolveEnvName(cfg['merge.inputTopic'], env),
    failed: resolveEnvName(cfg['merge.failedTopic'], env),
    courseBatch: resolveEnvName(cfg['merge.courseBatchTopic'], env),
    groupId: resolveEnvName(cfg['merge.groupId'], env),
  };
}

/** Signs an MSK IAM auth token (aws-msk-iam-sasl-signer-js `generateAuthToken`); replaceable in tests. */
export type MskTokenSigner = (opts: { region: string }) => Promise<{ token: string; expiryTime: number }>;

const defaultSigner: MskTokenSigner = async (opts) => {
  // Loaded on first use: only an `iam` stage pays for the signer's AWS SDK credential chain.
  const { generateAuthToken } = await import('aws-msk-iam-sasl-signer-js');
  return generateAuthToken(opts);
};

/**
 * MSK IAM token provider for SASL/OAUTHBEARER: @platformatic/kafka calls it for every new connection;
 * a signed token is reused until a minute before it expires (the signer's tokens last 15 minutes).
 */
export function mskIamTokenProvider(region: string, signer: MskTokenSigner = defaultSigner) {
  let cached: { token: string; expiryTime: number } | undefined;
  return async (): Promise<string> => {
    if (!cached || cached.expiryTime - 60_000 <= Date.now()) cached = await signer({ region });
    return cached.token;
  };
}

/**
 * Client options from the configuration, with MSK security: `scram` is SASL/SCRAM-SHA-512 and `iam` is
 * SASL/OAUTHBEARER with a signed IAM token, both over TLS; `none` uses TLS only if KAFKA_TLS says so.
 */
export function kafkaOptions(cfg: FlatConfig, signer?: MskTokenSigner): KafkaOptions {
  const opts = kafkaOptionsFrom(cfg);
  const auth = cfg['kafka.auth'];
  if (auth === 'scram') {
    const username = cfg['kafka.saslUsername'];
    const password = cfg['kafka.saslPassword'];
    if (!username || !password)
      throw new ConfigError(
        'KAFKA_AUTH=scram needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_SSM)',
      );
    return { ...opts, tls: {}, sasl: { mechanism: 'SCRAM-SHA-512', username, password } };
  }
  if (auth === 'iam')
    return {
      ...opts,
      tls: {},
      sasl: { mechanism: 'OAUTHBEARER', token: mskIamTokenProvider(cfg['aws.region'], signer) },
    };
  return cfg['kafka.tls'] ? { ...opts, tls: {} } : opts;
}

/**
 * The merge's publisher on a producer. `connect` (the preflight) reaches the brokers and learns `topics`
 * once; after a failure the next call tries again. Every publish is bounded by KAFKA_TIMEOUT_MS.
 */
export function kafkaPublisher(producer: StringProducer, topics: string[] = []): EventPublisher {
  let connected: Promise<void> | undefined;
  return {
    connect() {
      connected ??= connectProducer(producer, topics).catch((err: unknown) => {
        connected = undefined;
        throw err;
      });
      return connected;
    },
    publish: (topic, messages) =>
      produce(
        producer,
        messages.map((m) => ({ topic, ...m })),
      ),
  };
}

export interface MergeRuntime {
  deps: ProcessDeps;
  store: CassandraMergeStore;
  cassandra: CassandraClient;
  producer: StringProducer;
  topics: MergeTopics;
  close(): Promise<void>;
}

export function createMergeRuntime(cfg: FlatConfig, metrics: Metrics): MergeRuntime {
  const cassandra = createCassandraClient({
    ...cassandraOptionsFrom(cfg),
    coreConnectionsPerHost: 2,
  });
  const store = new CassandraMergeStore(cassandra, {
    tables: {
      coursesKeyspace: cfg['cassandra.coursesKeyspace'],
      opsKeyspace: cfg['cassandra.opsKeyspace'],
      consumption: cfg['merge.consumptionTable'],
      enrolments: cfg['merge.enrolmentsTable'],
      activityAgg: cfg['merge.activityAggTable'],
    },
  });
  const producer = createProducer(kafkaOptions(cfg));
  const topics = mergeTopicsFrom(cfg);
  return {
    deps: {
      store,
      publisher: kafkaPublisher(producer, [topics.courseBatch, topics.failed]),
      courseBatchTopic: topics.courseBatch,
      failedTopic: topics.failed,
      writeConcurrency: cfg['merge.writeConcurrency'],
      metrics,
    },
    store,
    cassandra,
    producer,
    topics,
    async close() {
      // Forced: a producer that could not reach Kafka has nothing to flush, and must not wait for it.
      await Promise.allSettled([producer.close(true), cassandra.shutdown()]);
    },
  };
}
