/**
 * A local stand-in for Sunbird's Sync API (userorg-service `POST /v1/data/sync`, and the gateway route
 * `POST /api/data/v1/index/sync`), faithful to the contract in docs/spec jobs.md §1 "The Sync API":
 * gateway checks (API key 401, ACL 403, rate limit 429 with Retry-After, 1 MB body limit 413), the
 * service's validation envelopes (UOS_0003, UOS_0072), the success envelope, and the verified mode
 * (`"operationType":"sync"` → `result.esSyncResponse`, 500 after 10 s).
 *
 * On top of the contract it has fault knobs (failure rate, latency, scripted responses, connection
 * resets), settable at start, programmatically and over `/__admin/*`, and it records every request so
 * tests can assert what actually arrived.
 *
 * Standalone: `npm run sync-api-standin -- --port 9000 --api-key-env SYNC_API_KEY --cassandra 127.0.0.1:9042`
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';

export const SYNC_ROUTES: readonly string[] = ['/v1/data/sync', '/api/data/v1/index/sync'];
/** The gateway's request-size limit: 1 MB. */
export const MAX_BODY_BYTES = 1_048_576;
/** The service answers a verified block that takes longer than this with a 500 (the work goes on). */
export const VERIFY_TIMEOUT_MS = 10_000;
/** After a 413, at most this much more of the body is read (and thrown away) before the socket is cut. */
const DISCARD_LIMIT_BYTES = 16 * MAX_BODY_BYTES;
export const VALID_OBJECT_TYPES: readonly string[] = ['user', 'organisation', 'location'];

/** Which of `ids` exist (are "indexed") for `objectType`. */
export type ExistsFn = (objectType: string, ids: string[]) => Promise<Set<string>>;

const scriptedResponseSchema = z.union([
  z.number().int().min(100).max(599),
  z.object({
    status: z.number().int().min(100).max(599).optional(),
    /** Seconds, sent as the Retry-After header. */
    retryAfter: z.number().nonnegative().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    /** A string is sent as is; anything else as JSON. Omitted: the envelope that fits the status. */
    body: z.unknown().optional(),
    /** Destroy the connection instead of answering. */
    reset: z.boolean().optional(),
    delayMs: z.number().int().nonnegative().optional(),
    /** Handle the request normally (after delayMs) — a placeholder in a script. */
    passThrough: z.boolean().optional(),
  }),
]);

export const faultsSchema = z.strictObject({
  /** Fraction (0–1) of requests answered with `failureStatus` instead of being handled. */
  failureRate: z.number().min(0).max(1).optional(),
  failureStatus: z.number().int().min(100).max(599).optional(),
  /** Seed of the generator behind failureRate/resetRate, so a run is reproducible. */
  seed: z.number().int().optional(),
  /** Added before every answer on the sync routes. */
  latencyMs: z.number().int().nonnegative().optional(),
  /** Consumed one per request, before any other fault. */
  script: z.array(scriptedResponseSchema).optional(),
  /** Destroy the connection of the next N requests. */
  resetNext: z.number().int().nonnegative().optional(),
  /** Fraction (0–1) of requests whose connection is destroyed. */
  resetRate: z.number().min(0).max(1).optional(),
});

export type ScriptedResponse = z.infer<typeof scriptedResponseSchema>;
export type SyncApiFaults = z.infer<typeof faultsSchema>;

export interface RateLimitOptions {
  /** Requests allowed per window per API key (the gateway's default is 5000 per hour). */
  limit: number;
  windowMs: number;
}

export interface SyncApiStandinOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Accepted `Authorization: Bearer <key>` values; none configured = no auth check. */
  apiKey?: string | string[];
  /** Keys that authenticate (they need not be repeated in apiKey) but are not in the route's ACL → 403. */
  aclDeniedKeys?: string[];
  rateLimit?: RateLimitOptions;
  /** Verified mode's view of what exists. Default: every id exists. */
  exists?: ExistsFn;
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
}

export type AuthOutcome = 'not-checked' | 'absent' | 'matched' | 'mismatched';

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

export interface SyncApiStandin {
  url: string;
  port: number;
  requests(): RecordedRequest[];
  faults(): SyncApiFaults;
  /** Replaces the current faults (an empty object turns them all off). */
  setFaults(f: SyncApiFaults): void;
  /** Clears recorded requests and rate-limit windows and restores the initial faults. */
  reset(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------
// Envelopes

/** Sunbird's `ts` format: `2024-01-01 10:00:00:000+0000` (UTC). */
export function sunbirdTimestamp(d: Date = new Date()): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}:${iso.slice(20, 23)}+0000`;
}

function envelope(
  msgid: string | null,
  responseCode: string,
  result: unknown,
  err: string | null,
  errmsg: string | null,
): string {
  return JSON.stringify({
    id: 'api.data.sync',
    ver: 'v1',
    ts: sunbirdTimestamp(),
    params: { resmsgid: randomUUID(), msgid, err, status: err ? 'FAILED' : 'SUCCESS', errmsg },
    responseCode,
    result,
  });
}

const clientError = (msgid: string | null, err: string, errmsg: string) =>
  envelope(msgid, 'CLIENT_ERROR', {}, err, errmsg);
const serverError = (msgid: string | null) =>
  envelope(msgid, 'SERVER_ERROR', {}, 'INTERNAL_ERROR', 'Process failed,please try again later.');

// The gateway (Kong) answers its own rejections with a bare message, not a Sunbird envelope.
const GATEWAY_MESSAGES: Record<number, string> = {
  401: 'Unauthorized',
  403: 'You cannot consume this service',
  413: 'Request size limit exceeded',
  429: 'API rate limit exceeded',
  502: 'An invalid response was received from the upstream server',
  503: 'Service unavailable',
  504: 'The upstream server is timing out',
};

/** The body a status gets when a fault or script does not say otherwise. */
function defaultBodyFor(status: number, msgid: string | null): string {
  if (status >= 200 && status < 300) return envelope(msgid, 'OK', { response: 'SUCCESS' }, null, null);
  const gateway = GATEWAY_MESSAGES[status];
  if (gateway) return JSON.stringify({ message: gateway });
  if (status >= 500) return serverError(msgid);
  return clientError(msgid, 'INVALID_REQUESTED_DATA', 'Requested data for this operation is not valid.');
}

// ---------------------------------------------------------------------------------------------------
// Existence

/** Every id exists: the service accepted and indexed all of them. */
export const allExist: ExistsFn = async (_objectType, ids) => new Set(ids);

export interface CassandraExistsOptions {
  /** A connected (or lazily connecting) cassandra-driver Client. */
  client: { execute(query: string, params: unknown[], options: { prepare: boolean }): Promise<unknown> };
  keyspace?: string;
  /** Ids per `IN` query (default 100). */
  chunkSize?: number;
}

const TABLE_OF: Record<string, string> = { user: 'user', organisation: 'organisation', location: 'location' };
const CQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

/** Existence from Cassandra: `SELECT id FROM <keyspace>.<user|organisation|location> WHERE id IN ?`. */
export function cassandraExists(opts: CassandraExistsOptions): ExistsFn {
  const keyspace = opts.keyspace ?? 'sunbird';
  if (!CQL_IDENTIFIER.test(keyspace)) throw new Error(`invalid keyspace name ${JSON.stringify(keyspace)}`);
  const chunkSize = opts.chunkSize ?? 100;
  return async (objectType, ids) => {
    const table = TABLE_OF[objectType];
    if (!table) return new Set();
    const query = `SELECT id FROM ${keyspace}."${table}" WHERE id IN ?`;
    const unique = [...new Set(ids)];
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += chunkSize) chunks.push(unique.slice(i, i + chunkSize));
    const found = new Set<string>();
    await Promise.all(
      chunks.map(async (chunk) => {
        const rs = (await opts.client.execute(query, [chunk], { prepare: true })) as {
          rows: Array<{ get(name: string): unknown }>;
        };
        for (const row of rs.rows) found.add(String(row.get('id')));
      }),
    );
    return found;
  };
}

// ---------------------------------------------------------------------------------------------------
// Server

/** mulberry32: tiny, fast, seedable; good enough for fault injection. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type BodyRead = { ok: true; buf: Buffer } | { ok: false };

/** Buffers at most `limit` bytes; beyond that it stops buffering and reports the overflow at once. */
function readBody(req: IncomingMessage, limit: number): Promise<BodyRead> {
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

function bearerOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m ? m[1] : undefined;
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export async function startSyncApiStandin(opts: SyncApiStandinOptions = {}): Promise<SyncApiStandin> {
  const keys = new Set(
    opts.apiKey === undefined ? [] : Array.isArray(opts.apiKey) ? opts.apiKey : [opts.apiKey],
  );
  const aclDenied = new Set(opts.aclDeniedKeys ?? []);
  if (keys.size > 0) for (const k of aclDenied) keys.add(k);
  const maxRecorded = Math.max(2, opts.maxRecorded ?? 100_000);
  const exists = opts.exists ?? allExist;
  const verifyTimeoutMs = opts.verifyTimeoutMs ?? VERIFY_TIMEOUT_MS;
  const maxBodyBytes = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const recordOn = opts.record ?? true;
  const initialFaults = faultsSchema.parse(opts.faults ?? {});

  let faults: SyncApiFaults = {};
  let script: ScriptedResponse[] = [];
  let resetNext = 0;
  let random = seededRandom(0);
  let faultsActive = false;
  const applyFaults = (f: SyncApiFaults) => {
    faults = faultsSchema.parse(f);
    script = [...(faults.script ?? [])];
    resetNext = faults.resetNext ?? 0;
    random = seededRandom(faults.seed ?? 1);
    faultsActive =
      script.length > 0 ||
      resetNext > 0 ||
      (faults.failureRate ?? 0) > 0 ||
      (faults.resetRate ?? 0) > 0 ||
      (faults.latencyMs ?? 0) > 0;
  };
  applyFaults(initialFaults);

  let recorded: RecordedRequest[] = [];
  let seq = 0;
  const windows = new Map<string, { start: number; count: number }>();

  const send = (
    res: ServerResponse,
    rec: RecordedRequest | undefined,
    status: number,
    body: string,
    headers?: Record<string, string>,
  ) => {
    if (rec) {
      rec.status = status;
      rec.durationMs = Date.now() - rec.receivedAt;
    }
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  };

  const destroy = (req: IncomingMessage, rec: RecordedRequest | undefined) => {
    if (rec) {
      rec.fault = 'reset';
      rec.durationMs = Date.now() - rec.receivedAt;
    }
    req.socket.destroy();
  };

  /** Runs the fault layer; true when it answered (or dropped) the request. */
  const injectFault = async (
    req: IncomingMessage,
    res: ServerResponse,
    rec: RecordedRequest | undefined,
    msgid: string | null,
  ): Promise<boolean> => {
    if (faults.latencyMs) await sleep(faults.latencyMs);
    const step = script.shift();
    if (step !== undefined) {
      const s = typeof step === 'number' ? { status: step } : step;
      if (s.delayMs) await sleep(s.delayMs);
      if (!s.passThrough) {
        if (rec) rec.fault = 'scripted';
        if (s.reset) {
          destroy(req, rec);
          return true;
        }
        const status = s.status ?? 200;
        const body =
          s.body === undefined
            ? defaultBodyFor(status, msgid)
            : typeof s.body === 'string'
              ? s.body
              : JSON.stringify(s.body);
        const headers = { ...s.headers };
        if (s.retryAfter !== undefined) headers['retry-after'] = String(s.retryAfter);
        send(res, rec, status, body, headers);
        return true;
      }
    }
    if (resetNext > 0) {
      resetNext--;
      destroy(req, rec);
      return true;
    }
    if (faults.resetRate && random() < faults.resetRate) {
      destroy(req, rec);
      return true;
    }
    if (faults.failureRate && random() < faults.failureRate) {
      if (rec) rec.fault = 'failure';
      const status = faults.failureStatus ?? 500;
      send(res, rec, status, defaultBodyFor(status, msgid));
      return true;
    }
    return false;
  };

  const handleSync = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const token = bearerOf(req.headers.authorization);
    const auth: AuthOutcome =
      keys.size === 0
        ? 'not-checked'
        : token === undefined
          ? 'absent'
          : keys.has(token)
            ? 'matched'
            : 'mismatched';
    let rec: RecordedRequest | undefined;
    if (recordOn) {
      const { authorization: _omit, ...headers } = req.headers;
      rec = {
        seq: ++seq,
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
      if (recorded.length >= maxRecorded) recorded.splice(0, Math.ceil(maxRecorded / 2));
      recorded.push(rec);
    }
    let msgid: string | null = firstHeader(req.headers['x-request-id']) ?? null;

    const read = await readBody(req, maxBodyBytes);
    if (!read.ok) {
      // Stop buffering and answer now. Closing at once would make the kernel reset the connection
      // while the client is still sending, and the client would see ECONNRESET instead of the 413;
      // so the rest is read and discarded (a lingering close), up to a bound, then the socket is cut.
      send(res, rec, 413, defaultBodyFor(413, msgid), { connection: 'close' });
      let discarded = 0;
      req.on('data', (chunk: Buffer) => {
        discarded += chunk.length;
        if (discarded > DISCARD_LIMIT_BYTES) req.socket.destroy();
      });
      req.resume();
      return;
    }
    const raw = read.buf.toString('utf8');
    let parsed: unknown;
    let parseOk = false;
    try {
      parsed = JSON.parse(raw);
      parseOk = true;
    } catch {
      // answered below, after the gateway checks
    }
    if (rec) {
      rec.rawBody = raw;
      if (parseOk) rec.body = parsed;
    }
    const body =
      parseOk && parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
    const params = body.params as { msgid?: unknown } | undefined;
    if (msgid === null && typeof params?.msgid === 'string') msgid = params.msgid;
    msgid ??= randomUUID();

    // Faults sit in front of everything, like a flaky network or gateway.
    if (faultsActive && (await injectFault(req, res, rec, msgid))) return;

    // Gateway: key, ACL, rate limit.
    if (auth === 'absent' || auth === 'mismatched') return send(res, rec, 401, defaultBodyFor(401, msgid));
    if (token !== undefined && aclDenied.has(token)) return send(res, rec, 403, defaultBodyFor(403, msgid));
    if (opts.rateLimit) {
      const key = token ?? req.socket.remoteAddress ?? 'anonymous';
      const now = Date.now();
      let w = windows.get(key);
      if (!w || now - w.start >= opts.rateLimit.windowMs) {
        w = { start: now, count: 0 };
        windows.set(key, w);
      }
      if (++w.count > opts.rateLimit.limit) {
        const retryAfter = Math.max(1, Math.ceil((w.start + opts.rateLimit.windowMs - now) / 1000));
        return send(res, rec, 429, defaultBodyFor(429, msgid), { 'retry-after': String(retryAfter) });
      }
    }

    // Service.
    if (!parseOk) {
      return send(
        res,
        rec,
        400,
        clientError(msgid, 'INVALID_REQUESTED_DATA', 'Requested data for this operation is not valid.'),
      );
    }
    const request = (body.request ?? {}) as Record<string, unknown>;
    const objectType = request.objectType;
    if (objectType === undefined || objectType === null || objectType === '') {
      return send(
        res,
        rec,
        400,
        clientError(msgid, 'UOS_0003', 'Mandatory parameter objectType is missing.'),
      );
    }
    if (typeof objectType !== 'string' || !VALID_OBJECT_TYPES.includes(objectType)) {
      return send(res, rec, 400, clientError(msgid, 'UOS_0072', 'Invalid Object Type.'));
    }
    if (request.operationType !== 'sync') {
      return send(res, rec, 200, envelope(msgid, 'OK', { response: 'SUCCESS' }, null, null));
    }

    const ids = Array.isArray(request.objectIds) ? request.objectIds.map(String) : [];
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), verifyTimeoutMs);
    });
    try {
      const found = await Promise.race([exists(objectType, ids), timedOut]);
      if (found === 'timeout') return send(res, rec, 500, serverError(msgid));
      const esSyncResponse: Record<string, boolean> = {};
      for (const id of ids) if (found.has(id)) esSyncResponse[id] = true;
      return send(res, rec, 200, envelope(msgid, 'OK', { response: 'SUCCESS', esSyncResponse }, null, null));
    } catch (err) {
      opts.onExistsError?.(err);
      return send(res, rec, 500, serverError(msgid));
    } finally {
      clearTimeout(timer);
    }
  };

  const handleAdmin = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const json = (status: number, value: unknown) => send(res, undefined, status, JSON.stringify(value));
    if (req.method === 'GET' && path === '/__admin/requests') return json(200, { requests: recorded });
    if (req.method === 'GET' && path === '/__admin/faults') return json(200, { faults });
    if (req.method === 'POST' && path === '/__admin/reset') {
      reset();
      return json(200, { ok: true });
    }
    if (req.method === 'POST' && path === '/__admin/faults') {
      const read = await readBody(req, maxBodyBytes);
      if (!read.ok) return json(413, { error: 'body too large' });
      let input: unknown;
      try {
        input = JSON.parse(read.buf.toString('utf8') || '{}');
      } catch {
        return json(400, { error: 'invalid JSON' });
      }
      const parsedFaults = faultsSchema.safeParse(input);
      if (!parsedFaults.success) return json(400, { error: z.prettifyError(parsedFaults.error) });
      applyFaults(parsedFaults.data);
      return json(200, { faults });
    }
    return json(404, { error: 'unknown admin route' });
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let work: Promise<unknown>;
    if (req.method === 'POST' && SYNC_ROUTES.includes(path)) work = handleSync(req, res, path);
    else if (path.startsWith('/__admin/')) work = handleAdmin(req, res, path);
    else {
      send(res, undefined, 404, clientError(null, 'RESOURCE_NOT_FOUND', 'Requested resource not found.'));
      return;
    }
    work.catch(() => {
      if (!res.headersSent && !res.destroyed) send(res, undefined, 500, serverError(null));
    });
  });
  // Outlive the client's keep-alive so a reused socket is not closed under an in-flight request.
  server.keepAliveTimeout = 10_000;
  server.headersTimeout = 15_000;

  const reset = () => {
    recorded = [];
    seq = 0;
    windows.clear();
    applyFaults(initialFaults);
  };

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
    requests: () => recorded.slice(),
    faults: () => faults,
    setFaults: applyFaults,
    reset,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// CLI

async function main(): Promise<void> {
  const { Command, InvalidArgumentError } = await import('commander');
  const num = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError('not a number');
    return n;
  };
  const program = new Command('sync-api-standin')
    .description('Local stand-in for the Sunbird Sync API (POST /v1/data/sync, /api/data/v1/index/sync)')
    .option('--port <n>', 'port (0 = any free port)', num, 9000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--api-key <key>', 'required Bearer key (prefer --api-key-env: argv is visible to other users)')
    .option('--api-key-env <name>', 'read the required Bearer key from this environment variable')
    .option('--acl-deny <key...>', 'keys that authenticate but are refused with 403')
    .option('--rate-limit <n>', 'requests allowed per window per key (gateway: 5000/hour)', num)
    .option('--rate-window-ms <ms>', 'rate-limit window', num, 3_600_000)
    .option('--verify-timeout-ms <ms>', 'verified mode answers 500 after this long', num, VERIFY_TIMEOUT_MS)
    .option('--failure-rate <f>', 'fraction of requests answered with --failure-status', num)
    .option('--failure-status <n>', 'status for --failure-rate', num, 500)
    .option('--reset-rate <f>', 'fraction of connections destroyed', num)
    .option('--latency-ms <ms>', 'added to every answer', num)
    .option('--seed <n>', 'seed for --failure-rate/--reset-rate', num)
    .option('--cassandra [host:port]', 'verified mode checks ids against Cassandra (default 127.0.0.1:9042)')
    .option('--keyspace <name>', 'keyspace of the user/organisation tables', 'sunbird')
    .option('--local-dc <name>', 'Cassandra local data centre', 'datacenter1')
    .option('--no-record', 'do not record requests (for long benchmarks)')
    .parse();
  const o = program.opts<{
    port: number;
    host: string;
    apiKey?: string;
    apiKeyEnv?: string;
    aclDeny?: string[];
    rateLimit?: number;
    rateWindowMs: number;
    verifyTimeoutMs: number;
    failureRate?: number;
    failureStatus: number;
    resetRate?: number;
    latencyMs?: number;
    seed?: number;
    cassandra?: string | true;
    keyspace: string;
    localDc: string;
    record: boolean;
  }>();

  const apiKey = o.apiKeyEnv ? process.env[o.apiKeyEnv] : o.apiKey;
  if (o.apiKeyEnv && !apiKey) program.error(`environment variable ${o.apiKeyEnv} is empty`);

  let cassandraClient: { shutdown(): Promise<void> } | undefined;
  let exists: ExistsFn | undefined;
  if (o.cassandra) {
    const { createCassandraClient } = await import('#shared/clients/cassandra.ts');
    const [h, p] = (o.cassandra === true ? '127.0.0.1:9042' : o.cassandra).split(':');
    const client = createCassandraClient({
      hosts: [h || '127.0.0.1'],
      port: Number(p || 9042),
      localDataCenter: o.localDc,
      consistency: 'LOCAL_ONE',
    });
    await client.connect();
    cassandraClient = client;
    exists = cassandraExists({ client, keyspace: o.keyspace });
  }

  const standin = await startSyncApiStandin({
    port: o.port,
    host: o.host,
    ...(apiKey ? { apiKey } : {}),
    ...(o.aclDeny ? { aclDeniedKeys: o.aclDeny } : {}),
    ...(o.rateLimit ? { rateLimit: { limit: o.rateLimit, windowMs: o.rateWindowMs } } : {}),
    ...(exists ? { exists } : {}),
    onExistsError: (err) =>
      console.error(`existence lookup failed: ${err instanceof Error ? err.message : err}`),
    verifyTimeoutMs: o.verifyTimeoutMs,
    record: o.record,
    faults: {
      ...(o.failureRate !== undefined ? { failureRate: o.failureRate, failureStatus: o.failureStatus } : {}),
      ...(o.resetRate !== undefined ? { resetRate: o.resetRate } : {}),
      ...(o.latencyMs !== undefined ? { latencyMs: o.latencyMs } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
    },
  });
  console.error(
    `Sync API stand-in listening on ${standin.url} (routes ${SYNC_ROUTES.join(', ')}; ` +
      `auth ${apiKey ? 'on' : 'off'}; existence ${exists ? `Cassandra keyspace ${o.keyspace}` : 'all ids exist'})`,
  );
  const stop = async () => {
    await standin.close();
    await cassandraClient?.shutdown();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
