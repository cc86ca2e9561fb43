/**
 * Client of Sunbird's Sync API (`POST {endpoint}` with `{"params":{},"request":{objectType, operationFor:"es",
 * objectIds}}`), built on one keep-alive undici Pool that is created once and reused.
 *
 * Retries go through undici's own retry interceptor (it re-dispatches the request, discards the failed
 * response body and cancels a pending backoff when the caller aborts). Its default policy is not used:
 * it skips POST unless told, caps a server's Retry-After at the same `maxTimeout` that bounds the
 * exponential backoff, adds no jitter, reports nothing per retry and does not count attempts. So the
 * policy below (`retry` callback) is ours, while the mechanics stay undici's.
 *
 * Only HTTP 200 counts as success. HTTP and network failures never throw: after the retries are spent
 * the result carries ok=false and the last status/body/error. The API key never appears in a result.
 *
 * `check()` is the preflight a run makes before any side effect: one request that the gateway must let
 * through (key and ACL) to a route that must exist, and that the service must refuse without doing
 * anything. An empty `objectIds` list would not do: older learner-service versions answer it by
 * re-indexing every row of the type ("Sync all data for type … as no IDs provided"). An unknown
 * `objectType` is refused by the service's request validator (400 UOS_0072 "Invalid Object Type.")
 * before any actor runs, in every version; the one id in the body keeps even a hypothetical validator
 * that let it through from meaning "everything".
 */
import { interceptors, Pool } from 'undici';
import { ConfigError } from '#shared/config.ts';
import { CredentialsRefusedError, ServiceUnavailableError } from '#shared/core/errors.ts';
import {
  decideRetry,
  isRetryableNetworkError,
  isRetryableStatus,
  parseRetryAfter,
} from '#shared/core/retry.ts';
import { registerSecret, scrubString } from '#shared/redact.ts';
import type { SyncApi, SyncCallResult, SyncOptions } from '#shared/sync/ports.ts';

export interface SyncApiClientOptions {
  /** Full URL of the sync route, e.g. `http://localhost:9000/v1/data/sync`. */
  endpoint: string;
  /** Sent as `Authorization: Bearer <key>`; empty or absent = no Authorization header. */
  apiKey?: string;
  connectTimeoutMs?: number;
  /** Verified mode makes the service wait up to 10 s before answering; keep this well above it. */
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Retries after the first attempt (so at most maxRetries + 1 attempts). */
  maxRetries?: number;
  /** Backoff before the first retry; doubles per retry, with jitter, up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** A server's Retry-After is honoured up to this; a longer one ends the retries at once. */
  maxRetryAfterMs?: number;
  /** Concurrent keep-alive connections to the API. */
  connections?: number;
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  /** The attempt that just failed (1 = the first request). */
  attempt: number;
  status?: number;
  error?: string;
  waitMs: number;
}

/**
 * The request body, byte for byte as the original job built it:
 * `{"params":{},"request":{"objectType":"user","operationFor":"es","objectIds":[...]}}`,
 * plus `"operationType":"sync"` at the end of `request` in verified mode.
 */
export function buildSyncRequestBody(objectType: string, ids: string[], verify = false): string {
  const request: Record<string, unknown> = { objectType, operationFor: 'es', objectIds: ids };
  if (verify) request.operationType = 'sync';
  return JSON.stringify({ params: {}, request });
}

/** The preflight's objectType: one no version of the service accepts. */
export const PREFLIGHT_TYPE = 'sunbird-dataops-preflight';

/** The preflight's request: that objectType, and one harmless id. */
export const PREFLIGHT_BODY = JSON.stringify({
  params: {},
  request: { objectType: PREFLIGHT_TYPE, operationFor: 'es', objectIds: [PREFLIGHT_TYPE] },
});
/** Retries of the preflight on network errors, 429 and 5xx (a run that cannot start should say so soon). */
const PREFLIGHT_RETRIES = 2;

/** The endpoint as it may be shown: no user info, no query string. */
export function shownEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}

/**
 * What the preflight's answer means. 200 or 400 (the service's own validation answer): the key and route
 * were accepted. 401/403: the gateway refused the key (exit 3). 404/405: no sync route there — the
 * endpoint setting is wrong (exit 2). No answer, or 429/5xx after the retries: not available (exit 3).
 */
export function preflightVerdict(
  answer: { status: number | null; error?: string | undefined },
  endpoint: string,
  keyGiven: boolean,
): void {
  const at = shownEndpoint(endpoint);
  const { status } = answer;
  if (status === 200 || status === 400) return;
  if (status === 401)
    throw new CredentialsRefusedError(
      'Sync API',
      `the Sync API at ${at} refused the API key (HTTP 401)${keyGiven ? '' : '; no key was given: set SYNC_API_KEY or sunbird_sync_api_key'}`,
    );
  if (status === 403)
    throw new CredentialsRefusedError(
      'Sync API',
      `the Sync API at ${at} refused this API key access to the sync route (HTTP 403: not in the route's ACL)`,
    );
  if (status === 404 || status === 405)
    throw new ConfigError(
      `no Sync API route at ${at} (HTTP ${status}): check sunbird_sync_api_endpoint / --sync-api-endpoint / SYNC_API_ENDPOINT (e.g. https://<domain>/api/data/v1/index/sync)`,
    );
  const why = status === null ? (answer.error ?? 'no answer') : `HTTP ${status}`;
  throw new ServiceUnavailableError('Sync API', `the Sync API at ${at} is not available: ${why}`, {
    address: at,
  });
}

const DEFAULTS = {
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  maxRetries: 4,
  minBackoffMs: 500,
  maxBackoffMs: 30_000,
  maxRetryAfterMs: 60_000,
  connections: 8,
};

interface RetryErrorLike extends Error {
  code?: string;
  statusCode?: number;
  headers?: Record<string, string | string[] | undefined>;
}

/** Per-call state the retry policy fills in; read back once the call settles. */
interface CallState {
  retries: number;
  stopReason?: string;
  /** When the current attempt was sent (performance.now()). */
  attemptStart: number;
  onAttempt?: SyncOptions['onAttempt'];
  beforeRetry?: SyncOptions['beforeRetry'];
}

export class SyncApiClient implements SyncApi {
  readonly #origin: string;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #apiKey: string;
  readonly #opts: typeof DEFAULTS & Pick<SyncApiClientOptions, 'onRetry'>;
  readonly #pool: Pool;
  readonly #dispatcher: ReturnType<Pool['compose']>;

  constructor(options: SyncApiClientOptions) {
    let url: URL;
    try {
      url = new URL(options.endpoint);
    } catch {
      throw new Error('SyncApiClient: endpoint is not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`SyncApiClient: endpoint must be http(s), got ${url.protocol}`);
    }
    const opts = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
      const v = options[key];
      if (v === undefined) continue;
      if (!Number.isFinite(v) || v < 0) throw new Error(`SyncApiClient: ${key} must be a number ≥ 0`);
      opts[key] = v;
    }
    if (opts.connections < 1) throw new Error('SyncApiClient: connections must be ≥ 1');
    // Connecting never takes longer than a whole answer may.
    if (options.connectTimeoutMs === undefined)
      opts.connectTimeoutMs = Math.min(opts.connectTimeoutMs, opts.headersTimeoutMs);
    this.#opts = { ...opts, onRetry: options.onRetry };
    this.#origin = url.origin;
    this.#path = url.pathname + url.search;
    this.#apiKey = options.apiKey ?? '';
    registerSecret(this.#apiKey);
    this.#headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.#apiKey) this.#headers.authorization = `Bearer ${this.#apiKey}`;

    this.#pool = new Pool(this.#origin, {
      connections: opts.connections,
      connectTimeout: opts.connectTimeoutMs,
      headersTimeout: opts.headersTimeoutMs,
      bodyTimeout: opts.bodyTimeoutMs,
    });
    this.#dispatcher = this.#pool.compose(
      interceptors.retry({
        // Without this the interceptor would throw away the last failed response's body, which the
        // failure log needs; with it, the final response is delivered whatever its status.
        throwOnError: false,
        methods: ['POST'],
        maxRetries: opts.maxRetries,
      }),
    );
  }

  async sync(objectType: string, ids: string[], options: SyncOptions = {}): Promise<SyncCallResult> {
    if (typeof objectType !== 'string' || objectType === '') {
      throw new TypeError('SyncApiClient.sync: objectType must be a non-empty string');
    }
    if (!Array.isArray(ids)) throw new TypeError('SyncApiClient.sync: ids must be an array');
    const verify = options.verify === true;
    const result = await this.#post(
      buildSyncRequestBody(objectType, ids, verify),
      options.signal,
      undefined,
      {
        onAttempt: options.onAttempt,
        beforeRetry: options.beforeRetry,
      },
    );
    if (verify && result.status === 200) {
      const confirmed = confirmedIdsOf(result.responseBody);
      result.confirmedIds = confirmed;
      result.unconfirmedIds = ids.filter((id) => !confirmed.has(id));
    }
    return result;
  }

  /** The preflight (see the module comment): resolves when the key and route are accepted, else throws. */
  async check(signal?: AbortSignal): Promise<void> {
    const answer = await this.#post(
      PREFLIGHT_BODY,
      signal,
      Math.min(PREFLIGHT_RETRIES, this.#opts.maxRetries),
    );
    preflightVerdict(answer, this.#origin + this.#path, this.#apiKey !== '');
  }

  /** One POST of `requestBody` with the retry policy; HTTP and network failures come back as results. */
  async #post(
    requestBody: string,
    signal: AbortSignal | undefined,
    maxRetries?: number,
    hooks: Pick<CallState, 'onAttempt' | 'beforeRetry'> = {},
  ): Promise<SyncCallResult> {
    const state: CallState = { retries: 0, attemptStart: performance.now(), ...hooks };
    const base = { requestBody, attempts: 0 };

    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let responseBody: string;
    let answeredAt: number;
    try {
      const res = await this.#dispatcher.request({
        path: this.#path,
        method: 'POST',
        headers: this.#headers,
        body: requestBody,
        signal: signal ?? null,
        // Merged by the retry interceptor over its defaults: the per-call policy.
        retryOptions: { retry: this.#policy(state, maxRetries) },
      } as Parameters<Pool['request']>[0]);
      status = res.statusCode;
      headers = res.headers;
      answeredAt = performance.now();
      // A server that echoes the key back must not smuggle it into the failure log.
      const text = await res.body.text();
      responseBody = this.#apiKey ? text.split(this.#apiKey).join('***') : text;
    } catch (err) {
      state.onAttempt?.({ status: null, latencyMs: performance.now() - state.attemptStart });
      return {
        ...base,
        ok: false,
        status: null,
        responseBody: '',
        attempts: state.retries + 1,
        error: this.#clean(describeError(err)),
      };
    }

    const result: SyncCallResult = {
      ...base,
      ok: status === 200,
      status,
      responseBody,
      attempts: state.retries + 1,
    };
    const retryAfterMs = parseRetryAfter(headers['retry-after']);
    if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
    state.onAttempt?.({
      status,
      latencyMs: answeredAt - state.attemptStart,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
    if (state.stopReason) result.error = state.stopReason;
    return result;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  /** The retry decision for one call; undici's handler re-dispatches when it calls back without an error. */
  #policy(state: CallState, maxRetries = this.#opts.maxRetries) {
    const o = { ...this.#opts, maxRetries };
    return (
      err: Error,
      _context: unknown,
      callback: (err?: Error | null) => void,
    ): ReturnType<typeof setTimeout> | undefined => {
      const e = err as RetryErrorLike;
      const attempt = state.retries + 1;
      const status = e.code === 'UND_ERR_REQ_RETRY' ? e.statusCode : undefined;
      let error: string | undefined;
      if (status === undefined) {
        error = this.#clean(describeError(e));
        if (!isRetryableNetworkError(e)) return void callback(err);
      } else if (!isRetryableStatus(status)) {
        return void callback(err);
      }
      const retryAfterMs = status === undefined ? undefined : parseRetryAfter(e.headers?.['retry-after']);
      const decision = decideRetry(state.retries, o, retryAfterMs);
      if (!decision.retry) {
        if (decision.reason) state.stopReason = decision.reason;
        return void callback(err);
      }
      const waitMs = decision.waitMs;
      state.retries++;
      // The attempt that is retried is reported here; the last one when the call settles.
      state.onAttempt?.({
        status: status ?? null,
        latencyMs: performance.now() - state.attemptStart,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
      o.onRetry?.({
        attempt,
        ...(status !== undefined ? { status } : {}),
        ...(error ? { error } : {}),
        waitMs,
      });
      // undici clears this timer when the caller aborts during the wait (and ignores a late callback).
      return setTimeout(async () => {
        await state.beforeRetry?.();
        state.attemptStart = performance.now();
        callback(null);
      }, waitMs);
    };
  }

  #clean(message: string): string {
    const masked = this.#apiKey ? message.split(this.#apiKey).join('***') : message;
    return scrubString(masked);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

function confirmedIdsOf(responseBody: string): Set<string> {
  const confirmed = new Set<string>();
  try {
    const parsed = JSON.parse(responseBody) as { result?: { esSyncResponse?: unknown } };
    const es = parsed?.result?.esSyncResponse;
    if (es && typeof es === 'object') {
      for (const [id, indexed] of Object.entries(es)) if (indexed === true) confirmed.add(id);
    }
  } catch {
    // A 200 without a readable per-id answer confirms nothing.
  }
  return confirmed;
}
