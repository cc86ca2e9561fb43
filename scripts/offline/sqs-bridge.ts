/**
 * SQS → Lambda bridge with the semantics of an event source mapping with
 * `ReportBatchItemFailures` (which serverless-offline lacks): receive a batch, invoke the function
 * with an SQS-shaped event, then delete every message except the reported failures. Failures (or the
 * whole batch, when the function throws) become visible again after the queue's visibility timeout,
 * and the queue's own redrive policy moves a message to the DLQ after maxReceiveCount receives.
 * `maximumConcurrency` pollers run side by side, as the mapping's ScalingConfig would.
 */
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Invoke } from '#shared/clients/lambda.ts';
import { sleep } from '#shared/core/time.ts';
import { SqsQueue, type SqsReceivedMessage } from '#shared/queue/sqs.ts';

export interface SqsBridgeOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Function to invoke (short name, e.g. `sync-block`). */
  fn: string;
  invoke: Invoke;
  batchSize?: number;
  maximumConcurrency?: number;
  region?: string;
  signal: AbortSignal;
  onError?: (err: unknown) => void;
}

export interface SqsBridgeStats {
  invocations: number;
  deleted: number;
  failed: number;
}

function queueArn(url: string, region: string): string {
  const [account, name] = new URL(url).pathname.split('/').filter(Boolean);
  return `arn:aws:sqs:${region}:${account}:${name}`;
}

export function toSqsEvent(messages: Message[], arn: string, region: string): SQSEvent {
  return {
    Records: messages.map(
      (m): SQSRecord => ({
        messageId: m.MessageId ?? '',
        receiptHandle: m.ReceiptHandle ?? '',
        body: m.Body ?? '',
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: m.Attributes?.SenderId ?? 'offline',
          ApproximateFirstReceiveTimestamp:
            m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody ?? '',
        eventSource: 'aws:sqs',
        eventSourceARN: arn,
        awsRegion: region,
      }),
    ),
  };
}

export async function runSqsBridge(opts: SqsBridgeOptions): Promise<SqsBridgeStats> {
  const region = opts.region ?? 'us-east-1';
  const arn = queueArn(opts.queueUrl, region);
  // The queue's own visibility timeout: a failure comes back after it, as with an event source mapping.
  const queue = new SqsQueue(opts.sqs, opts.queueUrl);
  const stats: SqsBridgeStats = { invocations: 0, deleted: 0, failed: 0 };
  const poller = async () => {
    while (!opts.signal.aborted) {
      let received: SqsReceivedMessage[] = [];
      try {
        received = await queue.receive({ max: opts.batchSize ?? 10, waitMs: 1000, signal: opts.signal });
        if (received.length === 0) continue;
        stats.invocations++;
        const event = toSqsEvent(
          received.map((r) => r.message),
          arn,
          region,
        );
        const response = (await opts.invoke(opts.fn, event)) as SQSBatchResponse | undefined;
        const failedIds = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        const done = received.filter((m) => !failedIds.has(m.id));
        stats.failed += received.length - done.length;
        await Promise.all(done.map((m) => m.ack()));
        stats.deleted += done.length;
      } catch (err) {
        if (opts.signal.aborted) break;
        // The whole batch comes back after its visibility timeout, as with a throwing function.
        stats.failed += received.length;
        opts.onError?.(err);
        await sleep(1000, opts.signal);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.maximumConcurrency ?? 2) }, poller));
  return stats;
}
