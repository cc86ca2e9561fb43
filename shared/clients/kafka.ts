/**
 * Kafka clients on `@platformatic/kafka` (pure JS, no native addon). Strings in, strings out.
 *
 * Security hook: `KafkaOptions.tls` and `KafkaOptions.sasl` pass straight to every connection. MSK IAM
 * is SASL OAUTHBEARER with a token provider (`sasl: { mechanism: 'OAUTHBEARER', token: () => … }`), SCRAM
 * is `sasl: { mechanism: 'SCRAM-SHA-512', username, password }`; both go with `tls: {}`.
 */

import type { ConnectionOptions as TlsOptions } from 'node:tls';
import {
  Admin,
  type ConsumeOptions,
  Consumer,
  type MessagesStream,
  ProduceAcks,
  Producer,
  type SASLOptions,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import type { FlatConfig } from '#shared/config.ts';

export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  tls?: TlsOptions;
  sasl?: SASLOptions;
  /** Per-request timeout in ms. */
  timeout?: number;
}

export function kafkaOptionsFrom(cfg: FlatConfig): KafkaOptions {
  return { brokers: cfg['kafka.brokers'], clientId: cfg['kafka.clientId'] };
}

function base(opts: KafkaOptions) {
  return {
    clientId: opts.clientId,
    bootstrapBrokers: opts.brokers,
    ...(opts.tls ? { tls: opts.tls } : {}),
    ...(opts.sasl ? { sasl: opts.sasl } : {}),
    ...(opts.timeout ? { timeout: opts.timeout, requestTimeout: opts.timeout } : {}),
  };
}

export type StringProducer = Producer<string, string, string, string>;
export type StringConsumer = Consumer<string, string, string, string>;
export type StringStream = MessagesStream<string, string, string, string>;

export interface ProducedMessage {
  topic: string;
  key?: string;
  value: string;
}

/** Producer with idempotent, all-replica acknowledged sends (no duplicates from the client's own retries). */
export function createProducer(opts: KafkaOptions): StringProducer {
  return new Producer({
    ...base(opts),
    serializers: stringSerializers,
    acks: ProduceAcks.ALL,
    idempotent: true,
    autocreateTopics: true,
  });
}

export async function produce(producer: StringProducer, messages: ProducedMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await producer.send({
    messages: messages.map((m) => ({ topic: m.topic, value: m.value, ...(m.key ? { key: m.key } : {}) })),
  });
}

export function createConsumer(opts: KafkaOptions & { groupId: string }): StringConsumer {
  return new Consumer({
    ...base(opts),
    groupId: opts.groupId,
    deserializers: stringDeserializers,
    autocommit: false,
    maxWaitTime: 500,
  });
}

export type ConsumeFrom = Pick<ConsumeOptions<string, string, string, string>, 'mode' | 'fallbackMode'>;

export function createAdmin(opts: KafkaOptions): Admin {
  return new Admin(base(opts));
}

/** Creates the topics that do not exist yet (idempotent). */
export async function ensureTopics(opts: KafkaOptions, topics: string[], partitions = 1): Promise<void> {
  const admin = createAdmin(opts);
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) await admin.createTopics({ topics: missing, partitions, replicas: 1 });
  } finally {
    await admin.close();
  }
}
