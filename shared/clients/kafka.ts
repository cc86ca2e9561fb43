/**
 * Kafka clients on `@platformatic/kafka` (pure JS, no native addon). Strings in, strings out.
 *
 * Security hook: `KafkaOptions.tls` and `KafkaOptions.sasl` pass straight to every connection. MSK IAM
 * is SASL OAUTHBEARER with a token provider (`sasl: { mechanism: 'OAUTHBEARER', token: () => … }`), SCRAM
 * is `sasl: { mechanism: 'SCRAM-SHA-512', username, password }`; both go with `tls: {}`.
 *
 * Every wait is bounded by `KafkaOptions.timeout` (KAFKA_TIMEOUT_MS, 30 s by default): connecting, the
 * producer's preflight (`connectProducer`), one produce, an admin call. Left to itself the idempotent
 * producer retries a broker it cannot reach forever (a merge with Kafka down hung with no output); here
 * it retries twice and the whole operation has a deadline. A failure is a ServiceUnavailableError naming
 * the brokers (exit 3), or a CredentialsRefusedError when SASL authentication is refused.
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
import { CredentialsRefusedError, DataOpsError, ServiceUnavailableError } from '#shared/core/errors.ts';

export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  tls?: TlsOptions;
  sasl?: SASLOptions;
  /** Bound on connecting, on one request and on a whole produce or preflight, in ms (default 30 s). */
  timeout?: number;
}

export const KAFKA_DEFAULT_TIMEOUT_MS = 30_000;

export function kafkaOptionsFrom(cfg: FlatConfig): KafkaOptions {
  return { brokers: cfg['kafka.brokers'], clientId: cfg['kafka.clientId'], timeout: cfg['kafka.timeoutMs'] };
}

const timeoutOf = (opts: KafkaOptions): number => opts.timeout ?? KAFKA_DEFAULT_TIMEOUT_MS;

function base(opts: KafkaOptions) {
  const timeout = timeoutOf(opts);
  return {
    clientId: opts.clientId,
    bootstrapBrokers: opts.brokers,
    ...(opts.tls ? { tls: opts.tls } : {}),
    ...(opts.sasl ? { sasl: opts.sasl } : {}),
    timeout,
    requestTimeout: timeout,
    connectTimeout: Math.min(timeout, 10_000),
  };
}

/** The innermost reason of a (possibly nested) client error, e.g. "connect ECONNREFUSED 127.0.0.1:9092". */
function innermost(err: unknown): string {
  let e = err as { message?: string; errors?: unknown[]; cause?: { message?: string } } | undefined;
  while (e?.errors?.length) e = e.errors[0] as typeof e;
  const message = e?.message ?? String(err);
  return e?.cause?.message && !message.includes(e.cause.message)
    ? `${message} (${e.cause.message})`
    : message;
}

function anyNested(err: unknown, test: (e: { code?: unknown }) => boolean, depth = 0): boolean {
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown } | undefined;
  if (!e || depth > 8) return false;
  return (
    test(e) ||
    (e.errors ?? []).some((x) => anyNested(x, test, depth + 1)) ||
    anyNested(e.cause, test, depth + 1)
  );
}

/** A client error on the taxonomy: refused SASL credentials, or Kafka unavailable — naming the brokers. */
export function kafkaError(err: unknown, opts: Pick<KafkaOptions, 'brokers'>): unknown {
  if (err instanceof DataOpsError) return err;
  const address = opts.brokers.join(',');
  if (anyNested(err, (e) => e.code === 'PLT_KFK_AUTHENTICATION'))
    return new CredentialsRefusedError(
      'Kafka',
      `Kafka at ${address} refused the SASL credentials: ${innermost(err)}`,
      {
        cause: err,
      },
    );
  return new ServiceUnavailableError('Kafka', `Kafka is not reachable at ${address}: ${innermost(err)}`, {
    address,
    cause: err,
  });
}

/**
 * Runs a client operation with an overall deadline (the client's own retries included); its failure on the
 * taxonomy. `what` names the operation in the timeout message.
 */
export async function boundedKafka<T>(opts: KafkaOptions, what: string, op: () => Promise<T>): Promise<T> {
  const ms = timeoutOf(opts);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ServiceUnavailableError(
            'Kafka',
            `Kafka at ${opts.brokers.join(',')} did not answer within ${Math.round(ms / 1000)} s (${what})`,
            { address: opts.brokers.join(',') },
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([op(), deadline]);
  } catch (err) {
    throw kafkaError(err, opts);
  } finally {
    clearTimeout(timer);
  }
}

export type StringProducer = Producer<string, string, string, string>;
export type StringConsumer = Consumer<string, string, string, string>;
export type StringStream = MessagesStream<string, string, string, string>;

export interface ProducedMessage {
  topic: string;
  key?: string;
  value: string;
}

const PRODUCER_OPTIONS = new WeakMap<StringProducer, KafkaOptions>();

/**
 * Producer with idempotent, all-replica acknowledged sends (no duplicates from the client's own retries).
 * Two retries, not the idempotent producer's default of retrying for ever: the deadline of each operation
 * is ours (`boundedKafka`).
 */
export function createProducer(opts: KafkaOptions): StringProducer {
  const producer: StringProducer = new Producer({
    ...base(opts),
    serializers: stringSerializers,
    acks: ProduceAcks.ALL,
    idempotent: true,
    autocreateTopics: true,
    retries: 2,
    retryDelay: 500,
  });
  PRODUCER_OPTIONS.set(producer, opts);
  return producer;
}

const optionsOf = (producer: StringProducer): KafkaOptions =>
  PRODUCER_OPTIONS.get(producer) ?? { brokers: ['(unknown brokers)'], clientId: '' };

/** Sends, bounded by the producer's timeout; a failure names the brokers (see `kafkaError`). */
export async function produce(producer: StringProducer, messages: ProducedMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await boundedKafka(optionsOf(producer), `producing ${messages.length} message(s)`, () =>
    producer.send({
      messages: messages.map((m) => ({ topic: m.topic, value: m.value, ...(m.key ? { key: m.key } : {}) })),
    }),
  );
}

/**
 * The producer's preflight: reach the brokers (TLS and SASL included), learn the topics (created when
 * missing, as sends would) and obtain the idempotent producer id — everything a send needs, so a merge
 * knows before its first write that it will be able to publish.
 */
export async function connectProducer(producer: StringProducer, topics: string[]): Promise<void> {
  await boundedKafka(optionsOf(producer), 'connecting the producer', async () => {
    if (topics.length > 0) await producer.metadata({ topics, autocreateTopics: true });
    await producer.initIdempotentProducer({});
  });
}

export function createConsumer(opts: KafkaOptions & { groupId: string }): StringConsumer {
  // A consumer's fetches wait for data on purpose: only connecting is bounded by the timeout here.
  const { timeout: _timeout, requestTimeout: _requestTimeout, ...connection } = base(opts);
  return new Consumer({
    ...connection,
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

/** Creates the topics that do not exist yet (idempotent), bounded by the timeout. */
export async function ensureTopics(opts: KafkaOptions, topics: string[], partitions = 1): Promise<void> {
  const admin = createAdmin(opts);
  try {
    await boundedKafka(opts, 'creating topics', async () => {
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length > 0) await admin.createTopics({ topics: missing, partitions, replicas: 1 });
    });
  } finally {
    await admin.close().catch(() => undefined);
  }
}
