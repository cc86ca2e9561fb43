/** Small HTTP helpers of the stand-in: bounded body reads and answers that are also recorded. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { finish, type RecordedRequest } from './recorder.ts';

export type BodyRead = { ok: true; buf: Buffer } | { ok: false };

/** Buffers at most `limit` bytes; beyond that it stops buffering and reports the overflow at once. */
export function readBody(req: IncomingMessage, limit: number): Promise<BodyRead> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.resolve({ ok: false });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        chunks.length = 0;
        resolve({ ok: false });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve({ ok: true, buf: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
}

/**
 * After an over-limit body has been answered: read and throw away the rest, so the client sees the
 * answer rather than a reset, but cut the socket after `limit` more bytes.
 */
export function discardRest(req: IncomingMessage, limit: number): void {
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > limit) req.socket.destroy();
  });
  req.resume();
}

/** Answers with a JSON body (and records the status). */
export function send(
  res: ServerResponse,
  rec: RecordedRequest | undefined,
  status: number,
  body: string,
  headers?: Record<string, string>,
): void {
  finish(rec, status);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/** Destroys the connection instead of answering (and records that). */
export function drop(req: IncomingMessage, rec: RecordedRequest | undefined): void {
  finish(rec, null);
  req.socket.destroy();
}
