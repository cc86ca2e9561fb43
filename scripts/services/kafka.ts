/** Apache Kafka 4 in KRaft mode: one combined broker + controller, 127.0.0.1:9092 (controller 9093). */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Admin,
  Consumer,
  MessagesStreamModes,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import { HOST, javaArgs, mavenJavaService, probeWith, runLogged } from './common.ts';
import type { ServiceDefinition } from './types.ts';
import { VERSIONS } from './versions.ts';

export const KAFKA_PORT = 9092;
export const KAFKA_CONTROLLER_PORT = 9093;
export const KAFKA_BROKERS = [`${HOST}:${KAFKA_PORT}`];

const version = VERSIONS.kafka;
const HEAP = ['-Xms512m', '-Xmx512m'];

// A single node can't hold the default 3 replicas of the internal topics: with the defaults
// __consumer_offsets is never created and consumer groups never work. Every internal topic's
// replication factor and min ISR are therefore 1.
function serverProperties(logDirs: string): string {
  return `process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=${HOST}:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://${HOST}:${KAFKA_PORT},CONTROLLER://${HOST}:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${HOST}:${KAFKA_PORT},CONTROLLER://${HOST}:${KAFKA_CONTROLLER_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${logDirs}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests create consumer groups all the time: don't wait 3 s for more members before the first rebalance.
group.initial.rebalance.delay.ms=0
`;
}

// Kafka 4 logs through log4j2. AbstractConfig dumps every config (thousands of lines) at INFO.
const LOG4J2_PROPERTIES = `status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
`;

export const kafkaService: ServiceDefinition = mavenJavaService({
  name: 'kafka',
  version,
  classpath: [
    { groupId: 'org.apache.kafka', artifactId: 'kafka_2.13', version },
    // kafka_2.13 brings log4j-core but no SLF4J binding; without this the broker logs nothing.
    { groupId: 'org.apache.logging.log4j', artifactId: 'log4j-slf4j2-impl', version: VERSIONS.kafkaLog4j },
    // kafka_2.13 resolves slf4j-api 1.7 (from a transitive dependency), which can't see an SLF4J 2 provider.
    { groupId: 'org.slf4j', artifactId: 'slf4j-api', version: VERSIONS.kafkaSlf4j },
  ],
  ports: [
    { port: KAFKA_PORT, role: 'broker' },
    { port: KAFKA_CONTROLLER_PORT, role: 'controller' },
  ],
  startTimeoutMs: 180_000,
  stopTimeoutMs: 45_000,

  async configure(ctx, { lib, conf }) {
    const kraft = join(ctx.dataDir, 'kraft');
    await mkdir(kraft, { recursive: true });
    const props = join(conf, 'server.properties');
    await writeFile(props, serverProperties(kraft));
    await writeFile(join(conf, 'log4j2.properties'), LOG4J2_PROPERTIES);
    const jvm = [...HEAP, `-Dlog4j2.configurationFile=file:${join(conf, 'log4j2.properties')}`];

    // KRaft storage must be formatted once, with a cluster id, before the first start. The id is
    // kept beside the data so a re-format (--ignore-formatted makes it a no-op) never conflicts.
    if (!existsSync(join(kraft, 'meta.properties'))) {
      const idFile = join(ctx.dataDir, 'cluster-id');
      // A Kafka cluster id is a UUID in URL-safe base64 without padding: 22 characters.
      const clusterId = existsSync(idFile)
        ? (await readFile(idFile, 'utf8')).trim()
        : randomBytes(16).toString('base64url');
      await writeFile(idFile, `${clusterId}\n`);
      const format = ['kafka.tools.StorageTool', 'format', '--standalone', '-t', clusterId, '-c', props];
      await runLogged(
        ctx,
        'java',
        javaArgs({ jvm, main: [...format, '--ignore-formatted'] }, lib),
        'StorageTool format',
      );
    }
    return { jvm, main: ['kafka.Kafka', props] };
  },

  health: () =>
    probeWith(
      KAFKA_PORT,
      () =>
        new Admin({
          clientId: 'sunbird-dataops-services',
          bootstrapBrokers: KAFKA_BROKERS,
          retries: 0,
          timeout: 3000,
        }),
      async (admin) => {
        const metadata = await admin.metadata({ topics: [] });
        if (metadata.brokers.size === 0) throw new Error('broker reports no brokers');
        await admin.listTopics();
      },
      (admin) => admin.close(),
    ),

  // After a fresh start: produce and consume one message through a consumer group, which proves the
  // client speaks this broker's protocol and that __consumer_offsets could be created.
  async verify() {
    const topic = `sunbird-dataops-selfcheck-${Date.now()}`;
    const value = randomBytes(8).toString('hex');
    const producer = new Producer({
      clientId: 'sunbird-dataops-services',
      bootstrapBrokers: KAFKA_BROKERS,
      serializers: stringSerializers,
      autocreateTopics: true,
    });
    try {
      await producer.send({ messages: [{ topic, key: 'selfcheck', value }] });
    } finally {
      await producer.close().catch(() => undefined);
    }
    const consumer = new Consumer({
      groupId: topic,
      clientId: 'sunbird-dataops-services',
      bootstrapBrokers: KAFKA_BROKERS,
      deserializers: stringDeserializers,
    });
    try {
      const stream = await consumer.consume({
        topics: [topic],
        mode: MessagesStreamModes.EARLIEST,
        autocommit: true,
        sessionTimeout: 10_000,
        heartbeatInterval: 500,
      });
      const timer = setTimeout(() => stream.destroy(new Error('no message consumed within 60 s')), 60_000);
      let found = false;
      try {
        for await (const message of stream) {
          if (message.value === value) {
            found = true;
            break;
          }
        }
      } finally {
        clearTimeout(timer);
        await stream.close().catch(() => undefined);
      }
      if (!found) throw new Error(`self-check message not consumed back from ${topic}`);
    } finally {
      await consumer.close().catch(() => undefined);
    }
    const admin = new Admin({ clientId: 'sunbird-dataops-services', bootstrapBrokers: KAFKA_BROKERS });
    try {
      await admin.deleteGroups({ groups: [topic] }).catch(() => undefined);
      await admin.deleteTopics({ topics: [topic] });
    } finally {
      await admin.close().catch(() => undefined);
    }
  },
});
