/** Wires the merge core to real services from the validated configuration (Lambda, CLI, bridge, tests). */
import {
  type CassandraClient,
  cassandraOptionsFrom,
  createCassandraClient,
} from '#shared/clients/cassandra.ts';
import {
  createProducer,
  type KafkaOptions,
  kafkaOptionsFrom,
  produce,
  type StringProducer,
} from '#shared/clients/kafka.ts';
import { type FlatConfig, resolveEnvName } from '#shared/config.ts';
import { CassandraMergeStore } from '#shared/merge/cassandra-store.ts';
import type { EventPublisher } from '#shared/merge/merge.ts';
import type { MergeMetrics, ProcessDeps } from '#shared/merge/process.ts';

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

export function kafkaOptions(cfg: FlatConfig): KafkaOptions {
  return kafkaOptionsFrom(cfg);
}

export function kafkaPublisher(producer: StringProducer): EventPublisher {
  return {
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

export function createMergeRuntime(cfg: FlatConfig, metrics: MergeMetrics): MergeRuntime {
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
      publisher: kafkaPublisher(producer),
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
      await Promise.allSettled([producer.close(), cassandra.shutdown()]);
    },
  };
}
