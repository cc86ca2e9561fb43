import { randomBytes } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { createSqsClient } from '#shared/clients/sqs.ts';

export const SQS_ENDPOINT = 'http://127.0.0.1:9324';

export function testSqs(): SQSClient {
  return createSqsClient({ region: 'us-east-1', endpoint: SQS_ENDPOINT });
}

/** A queue of the test's own (with a dead-letter queue when asked), deleted by `drop`. */
export async function isolatedQueue(
  sqs: SQSClient,
  prefix: string,
  opts: { maxReceiveCount?: number; visibilityTimeout?: number } = {},
): Promise<{ url: string; dlqUrl?: string; drop: () => Promise<void> }> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  let dlqUrl: string | undefined;
  const attributes: Record<string, string> = { VisibilityTimeout: String(opts.visibilityTimeout ?? 30) };
  if (opts.maxReceiveCount) {
    dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }))).QueueUrl!;
    attributes.RedrivePolicy = JSON.stringify({
      deadLetterTargetArn: `arn:aws:sqs:us-east-1:000000000000:${name}-dlq`,
      maxReceiveCount: opts.maxReceiveCount,
    });
  }
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl!;
  return {
    url,
    ...(dlqUrl ? { dlqUrl } : {}),
    drop: async () => {
      for (const u of [url, dlqUrl])
        if (u) await sqs.send(new DeleteQueueCommand({ QueueUrl: u })).catch(() => {});
    },
  };
}

/** Receives (and deletes) everything in a queue until it stays empty. */
export async function drain(sqs: SQSClient, url: string): Promise<string[]> {
  const bodies: string[] = [];
  let emptyPolls = 0;
  while (emptyPolls < 2) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: emptyPolls ? 1 : 0,
      }),
    );
    const msgs = out.Messages ?? [];
    if (msgs.length === 0) {
      emptyPolls++;
      continue;
    }
    emptyPolls = 0;
    for (const m of msgs) bodies.push(m.Body ?? '');
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
  return bodies;
}
