/**
 * The SQS adapter of the queue port: batched sends (10 messages or 256 KiB per call, refused entries
 * re-sent with backoff) and the one SQS poller (long polling, ack = delete, release = visibility 0), used
 * by local runs with `--queue-url` and by the offline bridges.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { forEachLimit } from '#shared/core/concurrency.ts';
import { backoffMs } from '#shared/core/retry.ts';
import { sleep } from '#shared/core/time.ts';
import {
  QueueSendError,
  type ReceivedMessage,
  type ReceiveOptions,
  type ReceivingQueue,
} from '#shared/queue/queue.ts';

const SQS_BATCH = 10;
const SQS_BATCH_BYTES = 250_000; // 256 KiB per batch, less a margin for attributes
const SEND_ATTEMPTS = 5;

export interface SqsQueueOptions {
  /** Batches sent at once. */
  concurrency?: number;
  /** How long a received message stays invisible to others while we work on it; default: the queue's. */
  visibilityTimeoutS?: number;
}

/** Cuts bodies into SendMessageBatch calls of at most 10 messages and 256 KiB. */
export function sqsBatches(bodies: readonly string[]): string[][] {
  const batches: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const b of bodies) {
    const size = Buffer.byteLength(b);
    if (cur.length === SQS_BATCH || (cur.length > 0 && bytes + size > SQS_BATCH_BYTES)) {
      batches.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(b);
    bytes += size;
  }
  if (cur.length) batches.push(cur);
  return batches;
}

/** A received SQS message; `message` is the raw one (the offline bridge builds Lambda events from it). */
export interface SqsReceivedMessage extends ReceivedMessage {
  readonly message: Message;
}

export class SqsQueue implements ReceivingQueue {
  readonly client: SQSClient;
  readonly url: string;
  readonly #concurrency: number;
  readonly #visibility: number | undefined;

  constructor(client: SQSClient, url: string, opts: SqsQueueOptions = {}) {
    this.client = client;
    this.url = url;
    this.#concurrency = opts.concurrency ?? 8;
    this.#visibility = opts.visibilityTimeoutS;
  }

  async send(bodies: string[]): Promise<void> {
    await forEachLimit(sqsBatches(bodies), this.#concurrency, (batch) => this.#sendBatch(batch));
  }

  /** SendMessageBatch can accept some entries and refuse others; refused ones are re-sent. */
  async #sendBatch(bodies: string[]): Promise<void> {
    let pending = bodies.map((body, i) => ({ Id: String(i), MessageBody: body }));
    for (let attempt = 1; pending.length > 0; attempt++) {
      const out = await this.client.send(
        new SendMessageBatchCommand({ QueueUrl: this.url, Entries: pending }),
      );
      const failed = new Set((out.Failed ?? []).map((f) => f.Id));
      if (failed.size === 0) return;
      const reasons = (out.Failed ?? []).map((f) => `${f.Code}: ${f.Message}`).join('; ');
      if (attempt >= SEND_ATTEMPTS || (out.Failed ?? []).some((f) => f.SenderFault)) {
        throw new QueueSendError(`SQS refused ${failed.size} message(s): ${reasons}`, { address: this.url });
      }
      pending = pending.filter((e) => failed.has(e.Id));
      await sleep(backoffMs(attempt, { minBackoffMs: 100, maxBackoffMs: 5_000 }));
    }
  }

  async receive(opts: ReceiveOptions = {}): Promise<SqsReceivedMessage[]> {
    const out = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.url,
        MaxNumberOfMessages: Math.min(10, Math.max(1, opts.max ?? 10)),
        WaitTimeSeconds: Math.min(20, Math.round((opts.waitMs ?? 1000) / 1000)),
        ...(this.#visibility === undefined ? {} : { VisibilityTimeout: this.#visibility }),
        MessageSystemAttributeNames: ['All'],
      }),
      opts.signal ? { abortSignal: opts.signal } : {},
    );
    return (out.Messages ?? []).map((m) => ({
      message: m,
      id: m.MessageId ?? '',
      body: m.Body ?? '',
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
      ack: async () => {
        await this.client.send(
          new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: m.ReceiptHandle }),
        );
      },
      release: async () => {
        await this.client.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: this.url,
            ReceiptHandle: m.ReceiptHandle,
            VisibilityTimeout: 0,
          }),
        );
      },
    }));
  }
}
