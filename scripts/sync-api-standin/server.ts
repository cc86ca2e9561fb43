/**
 * The stand-in's HTTP server: the sync routes (fault layer → gateway → the service's validation →
 * accept, or in verified mode answer from the existence view) and the `/__admin/*` routes. With
 * `index` configured it also indexes for real: in the background after a 200, or before answering in
 * verified mode, which then reports from the index.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { Capacity, type CapacityCounts, type CapacityOptions, capacitySchema } from './capacity.ts';
import {
  defaultBodyFor,
  MAX_BODY_BYTES,
  msgidOf,
  notFoundBody,
  parseBody,
  SYNC_ROUTES,
  type SyncRequest,
  serverError,
  successBody,
  VERIFY_TIMEOUT_MS,
  validateSyncRequest,
} from './contract.ts';
import { allExist, type ExistsFn } from './existence.ts';
import { FaultInjector, type FaultOutcome, faultsSchema, type SyncApiFaults } from './faults.ts';
import { Gateway, type GatewayOptions } from './gateway.ts';
import { discardRest, drop, readBody, send } from './http.ts';
import { createIndexer, type Indexer, type IndexingOptions } from './indexer.ts';
import { type RecordedRequest, Recorder } from './recorder.ts';

/** After a 413, at most this much more of the body is read (and thrown away) before the socket is cut. */
const DISCARD_LIMIT_BYTES = 16 * MAX_BODY_BYTES;

export interface SyncApiStandinOptions extends GatewayOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Verified mode's view of what exists (not with `index`). Default: every id exists. */
  exists?: ExistsFn;
  /**
   * Index accepted ids for real, as userorg-service does: rows from Cassandra into OpenSearch. The
   * default mode answers 200 at once and indexes right after; verified mode indexes first and reports
   * `esSyncResponse` from what the index holds (500 when OpenSearch fails or is unreachable).
   */
  index?: IndexingOptions;
  /**
   * Told, in one line, about indexing that failed after a 200 had been sent, or documents OpenSearch
   * refused (default: written to stderr).
   */
  onIndexProblem?: (message: string) => void;
  verifyTimeoutMs?: number;
  maxBodyBytes?: number;
  /** Initial faults; reset() returns to these. */
  faults?: SyncApiFaults;
  /** Record requests (default true). Benchmarks may turn this off. */
  record?: boolean;
  /** Told about failures of `exists` (answered with a 500). */
  onExistsError?: (err: unknown) => void;
  /** Recorded requests kept; beyond it the oldest half is dropped (default 100,000). */
  maxRecorded?: number;
  /** A capacity behind the gateway: a token bucket of requests/s, 429 beyond it, latency growing with load. */
  capacity?: CapacityOptions;
}

export interface SyncApiStandin {
  url: string;
  port: number;
  requests(): RecordedRequest[];
  faults(): SyncApiFaults;
  /** Replaces the current faults (an empty object turns them all off). */
  setFaults(f: SyncApiFaults): void;
  /** Clears recorded requests and rate-limit windows and restores the initial faults. */
  reset(): void;
  /** The capacity in force and what it admitted and throttled so far; null when there is none. */
  capacity(): { options: Required<CapacityOptions>; counts: CapacityCounts } | null;
  /** Sets (or with null removes) the capacity from now on; its counts go on. */
  setCapacity(c: CapacityOptions | null): void;
  /** Resolves when no indexing is under way (the default mode indexes after answering). */
  idle(): Promise<void>;
  /** Waits for indexing under way, then stops the server (and its OpenSearch connections). */
  close(): Promise<void>;
}

interface Parts {
  opts: SyncApiStandinOptions;
  gateway: Gateway;
  faults: FaultInjector;
  recorder: Recorder;
  indexer: Indexer | undefined;
  capacity: Capacity | undefined;
  /** Work that goes on after its answer was sent (background indexing, a verified block past 10 s). */
  background: Set<Promise<unknown>>;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

function reportIndexProblem(parts: Parts, message: string): void {
  if (parts.opts.onIndexProblem) parts.opts.onIndexProblem(message);
  else console.error(`sync-api-standin: ${message}`);
}

/** Keeps `work` in the background set until it settles; its failure is handled by the caller. */
function track<T>(parts: Parts, work: Promise<T>): Promise<T> {
  const forget = (): void => {
    parts.background.delete(settled);
  };
  const settled: Promise<void> = work.then(forget, forget);
  parts.background.add(settled);
  return work;
}

/** Indexes a block and says, in one line, which documents OpenSearch refused. */
async function indexBlock(parts: Parts, indexer: Indexer, request: SyncRequest): Promise<void> {
  const outcome = await indexer.indexBlock(request.objectType, request.objectIds);
  if (outcome.failed.size > 0) {
    const [id, reason] = outcome.failed.entries().next().value!;
    reportIndexProblem(
      parts,
      `OpenSearch refused ${outcome.failed.size} of ${request.objectIds.length} ${request.objectType} documents (first: ${id}: ${reason})`,
    );
  }
}

/** The default mode with indexing: the 200 is sent; index right after, reporting a failure. */
function indexInBackground(parts: Parts, indexer: Indexer, request: SyncRequest): void {
  track(parts, indexBlock(parts, indexer, request)).catch((err: unknown) =>
    reportIndexProblem(
      parts,
      `indexing ${request.objectIds.length} ${request.objectType} ids failed after the 200: ${messageOf(err)}`,
    ),
  );
}

/** What verified mode confirms: with indexing, what the index holds after indexing the block. */
function confirmed(parts: Parts, request: SyncRequest): Promise<Set<string>> {
  const { indexer } = parts;
  if (!indexer) return (parts.opts.exists ?? allExist)(request.objectType, request.objectIds);
  return track(
    parts,
    indexBlock(parts, indexer, request).then(() => indexer.held(request.objectType, request.objectIds)),
  );
}

function answerFault(
  req: IncomingMessage,
  res: ServerResponse,
  rec: RecordedRequest | undefined,
  f: FaultOutcome,
) {
  if (f.fault === 'reset') return drop(req, rec);
  if (rec) rec.fault = f.fault;
  send(res, rec, f.status, f.body, f.headers);
}

/** Verified mode: the ids confirmed within the service's 10 s; a 500 when that fails or takes longer. */
async function verifiedAnswer(parts: Parts, request: SyncRequest, msgid: string): Promise<[number, string]> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), parts.opts.verifyTimeoutMs ?? VERIFY_TIMEOUT_MS);
  });
  const work = confirmed(parts, request);
  try {
    const found = await Promise.race([work, timedOut]);
    if (found === 'timeout') {
      // As the service: the block's work goes on after the 500.
      work.catch(() => undefined);
      return [500, serverError(msgid)];
    }
    const esSyncResponse: Record<string, boolean> = {};
    for (const id of request.objectIds) if (found.has(id)) esSyncResponse[id] = true;
    return [200, successBody(msgid, esSyncResponse)];
  } catch (err) {
    if (parts.indexer) reportIndexProblem(parts, `verified ${request.objectType} block: ${messageOf(err)}`);
    else parts.opts.onExistsError?.(err);
    return [500, serverError(msgid)];
  } finally {
    clearTimeout(timer);
  }
}

async function handleSync(parts: Parts, req: IncomingMessage, res: ServerResponse, path: string) {
  const { token, auth } = parts.gateway.authenticate(req.headers.authorization);
  const rec = parts.recorder.start(req, path, auth);
  const read = await readBody(req, parts.opts.maxBodyBytes ?? MAX_BODY_BYTES);
  if (!read.ok) {
    // Stop buffering and answer now. Closing at once would make the kernel reset the connection
    // while the client is still sending, and the client would see ECONNRESET instead of the 413.
    send(res, rec, 413, defaultBodyFor(413, null), { connection: 'close' });
    discardRest(req, DISCARD_LIMIT_BYTES);
    return;
  }
  const raw = read.buf.toString('utf8');
  const body = parseBody(raw);
  if (rec) {
    rec.rawBody = raw;
    if (body.ok) rec.body = body.value;
  }
  const msgid = msgidOf(req.headers, body);

  // Faults sit in front of everything, like a flaky network or gateway.
  const fault = await parts.faults.next(msgid);
  if (fault) return answerFault(req, res, rec, fault);
  const rejection = parts.gateway.check(token, auth, req.socket.remoteAddress);
  if (rejection)
    return send(res, rec, rejection.status, defaultBodyFor(rejection.status, msgid), rejection.headers);
  const admission = parts.capacity?.admit();
  if (admission && !admission.admitted) {
    return send(res, rec, 429, defaultBodyFor(429, msgid), { 'retry-after': String(admission.retryAfterS) });
  }
  if (admission?.latencyMs) await sleep(admission.latencyMs);

  const valid = validateSyncRequest(body, msgid);
  if (!valid.ok) return send(res, rec, valid.status, valid.body);
  if (!valid.request.verify) {
    send(res, rec, 200, successBody(msgid));
    if (parts.indexer) indexInBackground(parts, parts.indexer, valid.request);
    return;
  }
  const [status, answer] = await verifiedAnswer(parts, valid.request, msgid);
  send(res, rec, status, answer);
}

async function handleAdmin(parts: Parts, req: IncomingMessage, res: ServerResponse, path: string) {
  const json = (status: number, value: unknown) => send(res, undefined, status, JSON.stringify(value));
  if (req.method === 'GET' && path === '/__admin/requests')
    return json(200, { requests: parts.recorder.list() });
  if (req.method === 'GET' && path === '/__admin/faults') return json(200, { faults: parts.faults.current });
  if (path === '/__admin/capacity') return capacityAdmin(parts, req, json);
  if (req.method === 'POST' && path === '/__admin/reset') {
    resetParts(parts);
    return json(200, { ok: true });
  }
  if (req.method === 'POST' && path === '/__admin/faults') {
    const read = await readBody(req, parts.opts.maxBodyBytes ?? MAX_BODY_BYTES);
    if (!read.ok) return json(413, { error: 'body too large' });
    const input = parseBody(read.buf.toString('utf8') || '{}');
    if (!input.ok) return json(400, { error: 'invalid JSON' });
    const parsedFaults = faultsSchema.safeParse(input.value);
    if (!parsedFaults.success) return json(400, { error: z.prettifyError(parsedFaults.error) });
    parts.faults.apply(parsedFaults.data);
    return json(200, { faults: parts.faults.current });
  }
  return json(404, { error: 'unknown admin route' });
}

/** `GET` the capacity and its counts; `POST` a new one (`{"requestsPerSecond": 50}`); `DELETE` it. */
async function capacityAdmin(parts: Parts, req: IncomingMessage, json: (status: number, v: unknown) => void) {
  if (req.method === 'GET') return json(200, capacityView(parts));
  if (req.method === 'DELETE') {
    setCapacity(parts, null);
    return json(200, capacityView(parts));
  }
  if (req.method !== 'POST') return json(405, { error: 'GET, POST or DELETE' });
  const read = await readBody(req, 64 * 1024);
  if (!read.ok) return json(413, { error: 'body too large' });
  const input = parseBody(read.buf.toString('utf8') || '{}');
  if (!input.ok) return json(400, { error: 'invalid JSON' });
  const parsed = capacitySchema.safeParse(input.value);
  if (!parsed.success) return json(400, { error: z.prettifyError(parsed.error) });
  setCapacity(parts, parsed.data);
  return json(200, capacityView(parts));
}

function capacityView(parts: Parts) {
  const c = parts.capacity;
  return c ? { options: c.options, counts: { ...c.counts } } : null;
}

function setCapacity(parts: Parts, opts: CapacityOptions | null): void {
  if (!opts) parts.capacity = undefined;
  else if (parts.capacity) parts.capacity.set(opts);
  else parts.capacity = new Capacity(opts);
}

function resetParts(parts: Parts): void {
  parts.recorder.reset();
  parts.gateway.reset();
  parts.faults.restore();
  parts.capacity = parts.opts.capacity ? new Capacity(parts.opts.capacity) : undefined;
}

/** Resolves once the background set is empty (work tracked meanwhile is waited for too). */
async function idle(parts: Parts): Promise<void> {
  while (parts.background.size > 0) await Promise.allSettled([...parts.background]);
}

export async function startSyncApiStandin(opts: SyncApiStandinOptions = {}): Promise<SyncApiStandin> {
  if (opts.index && opts.exists) throw new Error('give the stand-in `exists` or `index`, not both');
  const parts: Parts = {
    opts,
    gateway: new Gateway(opts),
    faults: new FaultInjector(opts.faults ?? {}),
    recorder: new Recorder(opts.record ?? true, opts.maxRecorded ?? 100_000),
    indexer: opts.index ? createIndexer(opts.index) : undefined,
    capacity: opts.capacity ? new Capacity(opts.capacity) : undefined,
    background: new Set(),
  };
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let work: Promise<unknown>;
    if (req.method === 'POST' && SYNC_ROUTES.includes(path)) work = handleSync(parts, req, res, path);
    else if (path.startsWith('/__admin/')) work = handleAdmin(parts, req, res, path);
    else return send(res, undefined, 404, notFoundBody());
    work.catch(() => {
      if (!res.headersSent && !res.destroyed) send(res, undefined, 500, serverError(null));
    });
  });
  // Outlive the client's keep-alive so a reused socket is not closed under an in-flight request.
  server.keepAliveTimeout = 10_000;
  server.headersTimeout = 15_000;

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    requests: () => parts.recorder.list(),
    faults: () => parts.faults.current,
    setFaults: (f) => parts.faults.apply(f),
    reset: () => resetParts(parts),
    capacity: () => capacityView(parts),
    setCapacity: (c) => setCapacity(parts, c),
    idle: () => idle(parts),
    close: async () => {
      const closed = new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
      });
      await idle(parts);
      server.closeAllConnections();
      await closed;
      await parts.indexer?.close();
    },
  };
}
