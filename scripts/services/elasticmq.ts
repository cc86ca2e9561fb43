/** ElasticMQ: an SQS-compatible server on 127.0.0.1:9324 (JSON protocol of current @aws-sdk/client-sqs). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { HOST, mavenJavaService, probeWith } from './common.ts';
import type { ServiceDefinition } from './types.ts';
import { VERSIONS } from './versions.ts';

export const ELASTICMQ_PORT = 9324;
export const SQS_ENDPOINT = `http://${HOST}:${ELASTICMQ_PORT}`;
export const SQS_REGION = 'us-east-1';
export const SQS_ACCOUNT_ID = '000000000000';

export interface LocalQueue {
  name: string;
  deadLetterQueue: string;
  maxReceiveCount: number;
}

/** The project's queues, predeclared at startup, each with its dead-letter queue. */
export const LOCAL_QUEUES: readonly LocalQueue[] = ['scan', 'sync', 'delete'].map((job) => ({
  name: `sunbird-dataops-local-${job}`,
  deadLetterQueue: `sunbird-dataops-local-${job}-dlq`,
  maxReceiveCount: 5,
}));

/** Queue URL as ElasticMQ serves it: `<endpoint>/<accountId>/<name>`. */
export function localQueueUrl(name: string): string {
  return `${SQS_ENDPOINT}/${SQS_ACCOUNT_ID}/${name}`;
}

export function localSqsClient(): SQSClient {
  return new SQSClient({
    endpoint: SQS_ENDPOINT,
    region: SQS_REGION,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
}

const version = VERSIONS.elasticmq;

// HOCON. Including the jar's application.conf keeps its defaults for everything not set here.
// Queues live in memory: queues created at run time (CreateQueue) work but vanish on restart, while
// the predeclared ones come back. `aws` makes queue ARNs match arn:aws:sqs:us-east-1:000000000000:….
function elasticmqConf(): string {
  const queues = LOCAL_QUEUES.flatMap((q) => [
    `  "${q.name}" { deadLettersQueue { name = "${q.deadLetterQueue}", maxReceiveCount = ${q.maxReceiveCount} } }`,
    `  "${q.deadLetterQueue}" { }`,
  ]).join('\n');
  return `include classpath("application.conf")
node-address { protocol = http, host = "${HOST}", port = ${ELASTICMQ_PORT}, context-path = "" }
rest-sqs { enabled = true, bind-port = ${ELASTICMQ_PORT}, bind-hostname = "${HOST}", sqs-limits = strict }
# The statistics UI is not needed (and would take another port).
rest-stats { enabled = false, bind-port = 9325, bind-hostname = "${HOST}" }
generate-node-address = false
aws { region = "${SQS_REGION}", accountId = "${SQS_ACCOUNT_ID}" }
queues {
${queues}
}
`;
}

export const elasticmqService: ServiceDefinition = mavenJavaService({
  name: 'elasticmq',
  version,
  classpath: [{ groupId: 'org.elasticmq', artifactId: 'elasticmq-server_2.13', version }],
  ports: [{ port: ELASTICMQ_PORT, role: 'SQS' }],
  startTimeoutMs: 120_000,
  stopTimeoutMs: 20_000,

  async configure(_ctx, { conf }) {
    await writeFile(join(conf, 'elasticmq.conf'), elasticmqConf());
    return {
      jvm: ['-Xms256m', '-Xmx256m', `-Dconfig.file=${join(conf, 'elasticmq.conf')}`],
      main: ['org.elasticmq.server.Main'],
    };
  },

  health: () =>
    probeWith(
      ELASTICMQ_PORT,
      localSqsClient,
      (sqs) => sqs.send(new ListQueuesCommand({})),
      (sqs) => sqs.destroy(),
    ),

  async verify() {
    const sqs = localSqsClient();
    try {
      const { QueueUrls = [] } = await sqs.send(
        new ListQueuesCommand({ QueueNamePrefix: 'sunbird-dataops-local-' }),
      );
      const names = new Set(QueueUrls.map((u) => u.slice(u.lastIndexOf('/') + 1)));
      const missing = LOCAL_QUEUES.flatMap((q) => [q.name, q.deadLetterQueue]).filter((n) => !names.has(n));
      if (missing.length > 0) throw new Error(`predeclared queues missing: ${missing.join(', ')}`);
    } finally {
      sqs.destroy();
    }
  },
});
