/**
 * What the API gateway in front of the Sync API does before the service sees a request: the API key
 * (401), the route's ACL (403) and the rate limit per key (429 with Retry-After).
 */

export interface RateLimitOptions {
  /** Requests allowed per window per API key (the gateway's default is 5000 per hour). */
  limit: number;
  windowMs: number;
}

export interface GatewayOptions {
  /** Accepted `Authorization: Bearer <key>` values; none configured = no auth check. */
  apiKey?: string | string[];
  /** Keys that authenticate (they need not be repeated in apiKey) but are not in the route's ACL → 403. */
  aclDeniedKeys?: string[];
  rateLimit?: RateLimitOptions;
}

/** How the request's key compared with the configured ones. */
export type AuthOutcome = 'not-checked' | 'absent' | 'matched' | 'mismatched';

export interface GatewayRejection {
  status: 401 | 403 | 429;
  headers?: Record<string, string>;
}

function bearerOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m ? m[1] : undefined;
}

export class Gateway {
  readonly #keys: Set<string>;
  readonly #aclDenied: Set<string>;
  readonly #rateLimit: RateLimitOptions | undefined;
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(opts: GatewayOptions) {
    this.#keys = new Set(
      opts.apiKey === undefined ? [] : Array.isArray(opts.apiKey) ? opts.apiKey : [opts.apiKey],
    );
    this.#aclDenied = new Set(opts.aclDeniedKeys ?? []);
    if (this.#keys.size > 0) for (const k of this.#aclDenied) this.#keys.add(k);
    this.#rateLimit = opts.rateLimit;
  }

  /** The bearer token of a request and how it compares with the configured keys. */
  authenticate(authorization: string | undefined): { token: string | undefined; auth: AuthOutcome } {
    const token = bearerOf(authorization);
    if (this.#keys.size === 0) return { token, auth: 'not-checked' };
    if (token === undefined) return { token, auth: 'absent' };
    return { token, auth: this.#keys.has(token) ? 'matched' : 'mismatched' };
  }

  /** The gateway's rejection of a request, or null when it passes (and counts against the limit). */
  check(token: string | undefined, auth: AuthOutcome, remote: string | undefined): GatewayRejection | null {
    if (auth === 'absent' || auth === 'mismatched') return { status: 401 };
    if (token !== undefined && this.#aclDenied.has(token)) return { status: 403 };
    const limit = this.#rateLimit;
    if (!limit) return null;
    const key = token ?? remote ?? 'anonymous';
    const now = Date.now();
    let w = this.#windows.get(key);
    if (!w || now - w.start >= limit.windowMs) {
      w = { start: now, count: 0 };
      this.#windows.set(key, w);
    }
    if (++w.count <= limit.limit) return null;
    const retryAfter = Math.max(1, Math.ceil((w.start + limit.windowMs - now) / 1000));
    return { status: 429, headers: { 'retry-after': String(retryAfter) } };
  }

  /** Forget the rate-limit windows. */
  reset(): void {
    this.#windows.clear();
  }
}
