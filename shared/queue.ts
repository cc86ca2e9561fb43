/**
 * The queue port the jobs chain through, with two adapters: SQS (ElasticMQ locally) and an in-process
 * bounded queue for the CLI's embedded mode. Both apply backpressure: `send` resolves only when the
 * messages are accepted, so a producer never runs ahead of what the queue has taken.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

export interface MessageQueue {
  send(bodies: string[]): Promise<void>;
}

export class QueueSendError extends Error {
  override name = 'QueueSendError';
}

const SQS_BATCH = 10;
const SQS_BATCH_BYTES = 250_000; // 256 KiB per batch, less a margin for attributes

export class SqsQueue implements MessageQueue {
  readonly client: SQSClient;
  readonly url: string;
  readonly concurrency: number;

  constructor(client: SQSClient, url: string, opts: { concurrency?: number } = {}) {
    this.client = client;
    this.url = url;
    this.concurrency = opts.concurrency ?? 8;
  }

  async send(bodies: string[]): Promise<void> {
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
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length) await this.sendBatch(batches[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, batches.length) }, worker));
  }

  /** SendMessageBatch can accept some entries and refuse others; refused ones are re-sent. */
  private async sendBatch(bodies: string[]): Promise<void> {
    let pending = bodies.map((body, i) => ({ Id: String(i), MessageBody: body }));
    for (let attempt = 1; pending.length > 0; attempt++) {
      const out = await this.client.send(
        new SendMessageBatchCommand({ QueueUrl: this.url, Entries: pending }),
      );
      const failed = new Set((out.Failed ?? []).map((f) => f.Id));
      if (failed.size === 0) return;
      const reasons = (out.Failed ?? []).map((f) => `${f.Code}: ${f.Message}`).join('; ');
      if (attempt >= 5 || (out.Failed ?? []).some((f) => f.SenderFault)) {
        throw new QueueSendError(`SQS refused ${failed.size} message(s): ${reasons}`);
      }
      pending = pending.filter((e) => failed.has(e.Id));
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

/** A bounded in-process queue; `receive` resolves null once closed and drained. */
export class MemoryQueue implements MessageQueue {
  private items: string[] = [];
  private head = 0;
  private closed = false;
  private readonly capacity: number;
  private waitingReceivers: Array<(v: string | null) => void> = [];
  private waitingSenders: Array<() => void> = [];

  constructor(capacity = 1000) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  async send(bodies: string[]): Promise<void> {
    for (const body of bodies) {
      if (this.closed) throw new QueueSendError('queue is closed');
      const receiver = this.waitingReceivers.shift();
      if (receiver) {
        receiver(body);
        continue;
      }
      while (this.size >= this.capacity) await new Promise<void>((r) => this.waitingSenders.push(r));
      this.items.push(body);
    }
  }

  async receive(): Promise<string | null> {
    if (this.size > 0) {
      const body = this.items[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      this.waitingSenders.shift()?.();
      return body;
    }
    if (this.closed) return null;
    return new Promise((r) => this.waitingReceivers.push(r));
  }

  close(): void {
    this.closed = true;
    for (const r of this.waitingReceivers.splice(0)) r(null);
  }
}
