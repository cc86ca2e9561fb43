/**
 * The one retry policy: which HTTP statuses are worth another try, how long to wait (exponential backoff
 * with jitter, or the server's `Retry-After` in seconds or as an HTTP date), and how many attempts.
 * Used by every adapter that retries: the Sync API client, the Keycloak Admin API, SQS sends.
 */
import { sleep } from '#shared/core/time.ts';

export interface RetryPolicy {
  /** Retries after the first attempt (so at most `maxRetries + 1` attempts). */
  maxRetries: number;
  /** Backoff before the first retry; doubles per retry up to `maxBackoffMs`. */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** A server's Retry-After is honoured up to this; a longer one ends the retries. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxRetries: 4,
  minBackoffMs: 500,
  maxBackoffMs: 30_000,
  maxRetryAfterMs: 60_000,
};

/** Statuses worth another try: request timeout, throttling and transient server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Network error codes worth another try (Node, undici). */
export const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETDOWN',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export function isRetryableNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code);
}

/** `Retry-After` in ms (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Exponential backoff with "equal jitter": at least half the step, at most the whole step. */
export function backoffMs(
  retry: number,
  policy: Pick<RetryPolicy, 'minBackoffMs' | 'maxBackoffMs'>,
  random = Math.random,
): number {
  const step = Math.min(policy.maxBackoffMs, policy.minBackoffMs * 2 ** retry);
  return Math.ceil(step / 2 + (random() * step) / 2);
}

export type RetryDecision = { retry: true; waitMs: number } | { retry: false; reason?: string };

/**
 * Whether to retry after a failed attempt and how long to wait. `retriesSoFar` counts the retries already
 * made; `retryAfterMs` is the server's answer, if it gave one (never retried earlier than asked, with a
 * little jitter so throttled clients do not return in step).
 */
export function decideRetry(
  retriesSoFar: number,
  policy: RetryPolicy,
  retryAfterMs?: number,
  random = Math.random,
): RetryDecision {
  if (retriesSoFar >= policy.maxRetries) return { retry: false };
  if (retryAfterMs !== undefined) {
    if (retryAfterMs > policy.maxRetryAfterMs) {
      return {
        retry: false,
        reason: `Retry-After of ${Math.ceil(retryAfterMs / 1000)} s exceeds the ${Math.ceil(policy.maxRetryAfterMs / 1000)} s cap; not retried`,
      };
    }
    return {
      retry: true,
      waitMs: Math.ceil(retryAfterMs + random() * Math.min(1000, retryAfterMs * 0.1 + 50)),
    };
  }
  return { retry: true, waitMs: backoffMs(retriesSoFar, policy, random) };
}

export interface RetryOptions<T> {
  policy: RetryPolicy;
  /** Whether the thrown error is worth another attempt. */
  retryable: (err: unknown) => boolean;
  /** A result that should be retried although nothing was thrown (e.g. an HTTP 503 answer). */
  retryResult?: (result: T) => { retryAfterMs?: number } | undefined;
  onRetry?: (info: { attempt: number; waitMs: number; error?: unknown }) => void;
  signal?: AbortSignal;
  /** Replaceable for tests. */
  wait?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
}

/** Runs `fn` until it succeeds, the policy says stop, or a non-retryable error is thrown. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions<T>): Promise<T> {
  const wait = opts.wait ?? sleep;
  for (let retries = 0; ; retries++) {
    let result: T;
    try {
      result = await fn(retries + 1);
    } catch (err) {
      if (!opts.retryable(err)) throw err;
      const d = decideRetry(retries, opts.policy);
      if (!d.retry || opts.signal?.aborted) throw err;
      opts.onRetry?.({ attempt: retries + 1, waitMs: d.waitMs, error: err });
      await wait(d.waitMs, opts.signal);
      continue;
    }
    const again = opts.retryResult?.(result);
    if (!again) return result;
    const d = decideRetry(retries, opts.policy, again.retryAfterMs);
    if (!d.retry || opts.signal?.aborted) return result;
    opts.onRetry?.({ attempt: retries + 1, waitMs: d.waitMs });
    await wait(d.waitMs, opts.signal);
  }
}
