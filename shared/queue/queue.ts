/**
 * The queue port the jobs chain through (scan tasks, sync blocks, delete blocks), and its in-memory
 * adapter. The SQS adapter is `sqs.ts`. Both apply backpressure: `send` resolves only when the messages
 * are accepted, so a producer never runs ahead of what the queue has taken.
 */
import { BadInputError, ServiceUnavailableError } from '#shared/core/errors.ts';

export interface MessageQueue {
  send(bodies: string[]): Promise<void>;
}

/** A message taken from a queue: acknowledge it when done, or release it for someone else. */
export interface ReceivedMessage {
  readonly id: string;
  readonly body: string;
  /** How many times the queue has handed this message out (1 the first time). */
  readonly receiveCount: number;
  /** Done: the queue forgets it. */
  ack(): Promise<void>;
  /** Not ours or not now: visible again at once, for any consumer. */
  release(): Promise<void>;
}

export interface ReceiveOptions {
  max?: number;
  /** How long to wait for a message when none is there (long polling). */
  waitMs?: number;
  signal?: AbortSignal;
}

/** A queue that local runs also consume (the Lambda functions are fed by their event sources instead). */
export interface ReceivingQueue extends MessageQueue {
  /** Up to `max` messages; empty when none came within `waitMs`; null once closed and drained. */
  receive(opts?: ReceiveOptions): Promise<ReceivedMessage[] | null>;
}

/**
 * A queue whose adapter is made when it is first sent to or received from, so a function that may never
 * use the queue does not load its client library at start-up.
 */
export class LazyQueue implements ReceivingQueue {
  readonly #queue: () => Promise<ReceivingQueue>;

  constructor(queue: () => Promise<ReceivingQueue>) {
    this.#queue = queue;
  }

  async send(bodies: string[]): Promise<void> {
    await (await this.#queue()).send(bodies);
  }

  async receive(opts?: ReceiveOptions): Promise<ReceivedMessage[] | null> {
    return (await this.#queue()).receive(opts);
  }
}

/** The queue refused messages (SQS send failures after retries). */
export class QueueSendError extends ServiceUnavailableError {
  override name = 'QueueSendError';
  constructor(message: string, options?: ErrorOptions & { address?: string }) {
    super('SQS', message, options);
  }
}

/** A message on a queue that cannot be read as what the queue carries. */
export class MessageError extends BadInputError {
  override name = 'MessageError';
}

/** A bounded in-process queue; `receive` resolves null once closed and drained. */
export class MemoryQueue implements ReceivingQueue {
  private items: string[] = [];
  private head = 0;
  private closed = false;
  private seq = 0;
  private readonly capacity: number;
  private waitingReceivers: Array<(v: string | null) => void> = [];
  private waitingSenders: Array<() => void> = [];

  constructor(capacity = 1000) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  get isClosed(): boolean {
    return this.closed;
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

  /** One body, waiting as long as it takes; null once closed and drained. */
  async take(): Promise<string | null> {
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

  async receive(_opts: ReceiveOptions = {}): Promise<ReceivedMessage[] | null> {
    const body = await this.take();
    if (body === null) return null;
    const id = String(++this.seq);
    return [
      {
        id,
        body,
        receiveCount: 1,
        ack: async () => {},
        // Back at the end of the queue, even once closed: a released message is never lost.
        release: async () => (this.closed ? void this.items.push(body) : this.send([body])),
      },
    ];
  }

  close(): void {
    this.closed = true;
    for (const r of this.waitingReceivers.splice(0)) r(null);
  }
}
