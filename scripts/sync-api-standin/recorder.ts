/** Every request on the sync routes, as it arrived and how it was answered, for tests to assert on. */
import type { IncomingMessage } from 'node:http';
import type { AuthOutcome } from './gateway.ts';

export interface RecordedRequest {
  seq: number;
  /** Epoch ms when the request arrived. */
  receivedAt: number;
  method: string;
  path: string;
  /** Client address and port: distinct values = distinct connections. */
  remote: string;
  /** Request headers without `authorization`; see `auth` for how it compared. */
  headers: Record<string, string | string[] | undefined>;
  auth: AuthOutcome;
  /** Exactly the bytes received (UTF-8), or null when the body went over the limit. */
  rawBody: string | null;
  /** The parsed JSON body; undefined when absent, over the limit or not JSON. */
  body: unknown;
  /** Status sent; null when the connection was destroyed instead. */
  status: number | null;
  fault?: 'scripted' | 'failure' | 'reset';
  durationMs?: number;
}

export class Recorder {
  readonly #enabled: boolean;
  readonly #max: number;
  #recorded: RecordedRequest[] = [];
  #seq = 0;

  /** `max`: requests kept; beyond it the oldest half is dropped. */
  constructor(enabled: boolean, max: number) {
    this.#enabled = enabled;
    this.#max = Math.max(2, max);
  }

  /** Starts the record of a request (undefined when recording is off). */
  start(req: IncomingMessage, path: string, auth: AuthOutcome): RecordedRequest | undefined {
    if (!this.#enabled) return undefined;
    const { authorization: _omit, ...headers } = req.headers;
    const rec: RecordedRequest = {
      seq: ++this.#seq,
      receivedAt: Date.now(),
      method: req.method ?? '',
      path,
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      headers,
      auth,
      rawBody: null,
      body: undefined,
      status: null,
    };
    if (this.#recorded.length >= this.#max) this.#recorded.splice(0, Math.ceil(this.#max / 2));
    this.#recorded.push(rec);
    return rec;
  }

  /** The records so far, oldest first (the list is a copy; the records are live). */
  list(): RecordedRequest[] {
    return this.#recorded.slice();
  }

  reset(): void {
    this.#recorded = [];
    this.#seq = 0;
  }
}

/** Notes how a recorded request ended: the status sent, or null with `fault: 'reset'` when dropped. */
export function finish(rec: RecordedRequest | undefined, status: number | null): void {
  if (!rec) return;
  if (status === null) rec.fault = 'reset';
  else rec.status = status;
  rec.durationMs = Date.now() - rec.receivedAt;
}
