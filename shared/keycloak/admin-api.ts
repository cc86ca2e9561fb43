/**
 * Keycloak Admin REST API adapter (undici): admin token, user deletion with the original job's answers
 * to each status, and the realm's user-cache flush.
 *
 * DELETE {base}/admin/realms/{realm}/users/{id}:
 *   204 → deleted · 404 → not found · 401 → new token, same id again (more than 10 in a row stops the run)
 *   403 → the admin lacks the privilege: the whole run stops · 5xx, 429, network → retried with backoff,
 *   then recorded as failed · any other status → recorded as failed at once (retrying cannot help).
 */
import { Agent, type Dispatcher } from 'undici';
import type { FlatConfig } from '#shared/config.ts';
import { mapLimit } from '#shared/core/concurrency.ts';
import { backoffMs, isRetryableStatus, parseRetryAfter } from '#shared/core/retry.ts';
import { sleep } from '#shared/core/time.ts';
import {
  DeletionStopped,
  KeycloakDataError,
  KeycloakRefusedError,
  KeycloakUnreachableError,
} from '#shared/keycloak/errors.ts';
import type { FailedId } from '#shared/keycloak/ports.ts';
import type { Logger } from '#shared/logger.ts';
import { registerSecret, scrubString } from '#shared/redact.ts';

export interface AdminApiOptions {
  /** e.g. http://127.0.0.1:8180 (or https://host/auth for Keycloak < 17). */
  baseUrl: string;
  /** Realm the admin logs in to (usually master). */
  adminRealm: string;
  clientId: string;
  /** Password grant when no client secret is given. */
  username?: string;
  password?: string;
  /** Client-credentials grant when given. */
  clientSecret?: string;
  timeoutMs?: number;
  /** Retries of one call on 5xx, 429 and network errors. */
  maxRetries?: number;
  /** First backoff pause in ms (doubles each retry, capped at 5 s). */
  retryBaseMs?: number;
  /** Parallel deletions in deleteUsers. */
  concurrency?: number;
  /** More than this many 401 answers in a row stop the run. */
  max401InARow?: number;
  logger?: Logger;
}

export function adminApiOptionsFrom(cfg: FlatConfig, logger?: Logger): AdminApiOptions {
  return {
    baseUrl: cfg['keycloak.baseUrl'],
    adminRealm: cfg['keycloak.adminRealm'],
    clientId: cfg['keycloak.clientId'],
    username: cfg['keycloak.adminUser'],
    password: cfg['keycloak.adminPassword'],
    clientSecret: cfg['keycloak.clientSecret'],
    timeoutMs: cfg['keycloak.timeoutMs'],
    maxRetries: cfg['keycloak.maxRetries'],
    concurrency: cfg['keycloak.concurrency'],
    ...(logger ? { logger } : {}),
  };
}

export interface DeleteUsersResult {
  deleted: string[];
  notFound: string[];
  failed: FailedId[];
}

export type DeleteOutcome =
  | { status: 'deleted' }
  | { status: 'not-found' }
  | { status: 'failed'; error: string; retryable: boolean };

export interface KeycloakAdminApi {
  /** Obtains an admin token (throws when the login is refused or Keycloak is unreachable). */
  login(): Promise<void>;
  /**
   * Whether Keycloak lets this admin manage (delete) the user: its own answer in the user's `access`
   * (which covers realm-management roles and fine-grained permissions alike). Undefined when Keycloak
   * cannot tell (the user is gone, or a version without `access`); a 403 throws KeycloakRefusedError.
   */
  mayManageUser(realm: string, id: string): Promise<boolean | undefined>;
  deleteUser(realm: string, id: string): Promise<DeleteOutcome>;
  deleteUsers(realm: string, ids: readonly string[]): Promise<DeleteUsersResult>;
  clearUserCache(realm: string): Promise<void>;
  /** Any other Admin API call (test fixtures, diagnostics); no retries. */
  adminRequest(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<AdminResponse>;
  close(): Promise<void>;
}

export interface AdminResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = unknown>(): T;
}

function snippet(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return scrubString(one.length > 200 ? `${one.slice(0, 200)}…` : one);
}

function errorText(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return scrubString([e.code, e.message ?? String(err)].filter(Boolean).join(' '));
}

export function validateAdminApiOptions(opts: AdminApiOptions): void {
  if (!opts.baseUrl) throw new KeycloakDataError('no Keycloak base URL configured (KEYCLOAK_BASE_URL)');
  if (!opts.clientSecret && !(opts.username && opts.password)) {
    throw new KeycloakDataError(
      'Keycloak admin credentials missing: set KEYCLOAK_ADMIN_USER and KEYCLOAK_ADMIN_PASSWORD, or KEYCLOAK_CLIENT_SECRET',
    );
  }
}

/**
 * A request to `url` through `dispatcher`'s own `request` method (undici's top-level `request` does the
 * same with a `dispatcher` option; the Lambda bundles carry only undici's dispatchers, config/esbuild.cjs).
 */
function requestOn(
  dispatcher: Dispatcher,
  url: string,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
): Promise<Dispatcher.ResponseData> {
  const { origin, pathname, search } = new URL(url);
  return dispatcher.request({ ...options, origin, path: `${pathname}${search}` });
}

export function createKeycloakAdminApi(opts: AdminApiOptions): KeycloakAdminApi {
  return new AdminApiClient(opts);
}

type PolicyOutcome = { res: AdminResponse } | { error: string; retryable: boolean };

class AdminApiClient implements KeycloakAdminApi {
  readonly #opts: AdminApiOptions;
  readonly #base: string;
  readonly #maxRetries: number;
  readonly #retryBaseMs: number;
  readonly #max401: number;
  readonly #concurrency: number;
  readonly #dispatcher: Agent;
  #token: string | undefined;
  #tokenExpiresAt = 0;
  #tokenInFlight: Promise<string> | undefined;
  #unauthorizedInARow = 0;

  constructor(opts: AdminApiOptions) {
    validateAdminApiOptions(opts);
    registerSecret(opts.password);
    registerSecret(opts.clientSecret);
    this.#opts = opts;
    this.#base = opts.baseUrl.replace(/\/+$/, '');
    const timeoutMs = opts.timeoutMs ?? 30_000;
    this.#maxRetries = opts.maxRetries ?? 3;
    this.#retryBaseMs = opts.retryBaseMs ?? 200;
    this.#max401 = opts.max401InARow ?? 10;
    this.#concurrency = opts.concurrency ?? 4;
    this.#dispatcher = new Agent({
      connections: Math.max(this.#concurrency, 2) + 2,
      connect: { timeout: Math.min(timeoutMs, 10_000) },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  /** Exponential backoff with jitter, never earlier than a Retry-After (seconds or HTTP date), ≤ 30 s. */
  #backoff(attempt: number, retryAfter?: string | string[]): number {
    const exp = backoffMs(attempt, { minBackoffMs: this.#retryBaseMs, maxBackoffMs: 5_000 });
    return Math.min(Math.max(parseRetryAfter(retryAfter) ?? 0, exp), 30_000);
  }

  #tokenForm(): URLSearchParams {
    const opts = this.#opts;
    const form = new URLSearchParams({ client_id: opts.clientId });
    if (opts.clientSecret) {
      form.set('grant_type', 'client_credentials');
      form.set('client_secret', opts.clientSecret);
    } else {
      form.set('grant_type', 'password');
      form.set('username', opts.username ?? '');
      form.set('password', opts.password ?? '');
    }
    return form;
  }

  async #fetchToken(): Promise<string> {
    const opts = this.#opts;
    const base = this.#base;
    const body = this.#tokenForm().toString();
    const url = `${base}/realms/${encodeURIComponent(opts.adminRealm)}/protocol/openid-connect/token`;
    for (let attempt = 0; ; attempt++) {
      let res: Dispatcher.ResponseData;
      let text: string;
      try {
        res = await requestOn(this.#dispatcher, url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body,
        });
        text = await res.body.text();
      } catch (err) {
        if (attempt < this.#maxRetries) {
          await sleep(this.#backoff(attempt));
          continue;
        }
        throw new KeycloakUnreachableError(`cannot reach Keycloak token endpoint ${url}: ${errorText(err)}`, {
          address: base,
        });
      }
      const status = res.statusCode;
      if (status === 200) return this.#acceptToken(text);
      if (isRetryableStatus(status) && attempt < this.#maxRetries) {
        await sleep(this.#backoff(attempt, res.headers['retry-after']));
        continue;
      }
      if (isRetryableStatus(status)) {
        throw new KeycloakUnreachableError(`Keycloak token endpoint ${url} kept failing: HTTP ${status}`, {
          address: base,
        });
      }
      throw new KeycloakRefusedError(
        `Keycloak refused the admin login (${opts.clientSecret ? 'client credentials' : 'password grant'} for client "${opts.clientId}" in realm "${opts.adminRealm}"): HTTP ${status} ${snippet(text)}`,
      );
    }
  }

  #acceptToken(text: string): string {
    const body = JSON.parse(text) as { access_token?: string; expires_in?: number };
    if (!body.access_token) throw new KeycloakRefusedError('Keycloak token response has no access_token');
    registerSecret(body.access_token);
    // Renew a little early so a long block does not run into expiry mid-way.
    this.#tokenExpiresAt = Date.now() + Math.max(5, (body.expires_in ?? 60) - 10) * 1000;
    return body.access_token;
  }

  /** One token fetch at a time; callers that saw a 401 with an older token share the new one. */
  async #currentToken(stale?: string): Promise<string> {
    if (this.#token && this.#token !== stale && Date.now() < this.#tokenExpiresAt) return this.#token;
    this.#tokenInFlight ??= this.#fetchToken()
      .then((t) => {
        this.#token = t;
        return t;
      })
      .finally(() => {
        this.#tokenInFlight = undefined;
      });
    return this.#tokenInFlight;
  }

  async #send(
    method: Dispatcher.HttpMethod,
    path: string,
    bearer: string,
    body?: unknown,
  ): Promise<AdminResponse> {
    const res = await requestOn(this.#dispatcher, `${this.#base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${bearer}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      headers: res.headers,
      text,
      json: <T>() => JSON.parse(text) as T,
    };
  }

  /** Counts a 401 and stops the run when there were too many in a row (fresh tokens did not help). */
  #unauthorized(): void {
    this.#unauthorizedInARow++;
    if (this.#unauthorizedInARow > this.#max401) {
      throw new KeycloakRefusedError(
        `Keycloak answered 401 Unauthorized ${this.#unauthorizedInARow} times in a row, even with fresh tokens; stopping`,
      );
    }
  }

  /**
   * The status handling shared by every mutating call. Returns the final response for 2xx/404/other 4xx,
   * throws KeycloakRefusedError for 403 and for too many 401s; a retryable failure that outlasts the
   * retries is returned as an error string.
   */
  async #callWithPolicy(method: Dispatcher.HttpMethod, path: string): Promise<PolicyOutcome> {
    const log = this.#opts.logger;
    let attempt = 0;
    let bearer = await this.#currentToken();
    for (;;) {
      let res: AdminResponse;
      try {
        res = await this.#send(method, path, bearer);
      } catch (err) {
        if (attempt < this.#maxRetries) {
          await sleep(this.#backoff(attempt++));
          continue;
        }
        return { error: errorText(err), retryable: true };
      }
      if (res.status === 401) {
        this.#unauthorized();
        log?.warn('Keycloak answered 401; fetching a new admin token', { path: `${method} ${path}` });
        bearer = await this.#currentToken(bearer);
        continue;
      }
      this.#unauthorizedInARow = 0;
      if (res.status === 403) {
        throw new KeycloakRefusedError(
          `Keycloak answered 403 Forbidden to ${method} ${path}: the admin account lacks the privilege (e.g. realm-management manage-users); stopping the run`,
        );
      }
      if (isRetryableStatus(res.status) && attempt < this.#maxRetries) {
        log?.warn('Keycloak call failed; retrying', {
          path: `${method} ${path}`,
          status: res.status,
          attempt,
        });
        await sleep(this.#backoff(attempt++, res.headers['retry-after']));
        continue;
      }
      return { res };
    }
  }

  async login(): Promise<void> {
    await this.#currentToken();
  }

  async mayManageUser(realm: string, id: string): Promise<boolean | undefined> {
    const out = await this.#callWithPolicy('GET', usersPath(realm, id));
    if ('error' in out)
      throw new KeycloakUnreachableError(
        `cannot reach the Keycloak Admin API at ${this.#base}: ${out.error}`,
        {
          address: this.#base,
        },
      );
    if (out.res.status !== 200) return undefined;
    const access = (out.res.json() as { access?: { manage?: unknown } }).access;
    return typeof access?.manage === 'boolean' ? access.manage : undefined;
  }

  async deleteUser(realm: string, id: string): Promise<DeleteOutcome> {
    const out = await this.#callWithPolicy('DELETE', usersPath(realm, id));
    if ('error' in out) return { status: 'failed', error: out.error, retryable: out.retryable };
    const { res } = out;
    if (res.status === 204 || res.status === 200) return { status: 'deleted' };
    if (res.status === 404) return { status: 'not-found' };
    const error = `HTTP ${res.status} ${snippet(res.text)}`.trim();
    return { status: 'failed', error, retryable: isRetryableStatus(res.status) };
  }

  async deleteUsers(realm: string, ids: readonly string[]): Promise<DeleteUsersResult> {
    const result: DeleteUsersResult = { deleted: [], notFound: [], failed: [] };
    try {
      await mapLimit(ids, this.#concurrency, async (id) => {
        const outcome = await this.deleteUser(realm, id);
        if (outcome.status === 'deleted') result.deleted.push(id);
        else if (outcome.status === 'not-found') result.notFound.push(id);
        else result.failed.push({ id, error: outcome.error, retryable: outcome.retryable });
      });
    } catch (err) {
      if (err instanceof KeycloakRefusedError || err instanceof KeycloakUnreachableError) {
        throw new DeletionStopped(err, { ...result, refused: [] });
      }
      throw err;
    }
    return result;
  }

  async clearUserCache(realm: string): Promise<void> {
    const what = `clearing the user cache of realm "${realm}" failed`;
    const out = await this.#callWithPolicy(
      'POST',
      `/admin/realms/${encodeURIComponent(realm)}/clear-user-cache`,
    );
    if ('error' in out) throw new Error(`${what}: ${out.error}`);
    if (out.res.status >= 300) throw new Error(`${what}: HTTP ${out.res.status} ${snippet(out.res.text)}`);
  }

  async adminRequest(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<AdminResponse> {
    let res = await this.#send(method, path, await this.#currentToken(), body);
    if (res.status === 401) res = await this.#send(method, path, await this.#currentToken(this.#token), body);
    return res;
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}

function usersPath(realm: string, id: string): string {
  return `/admin/realms/${encodeURIComponent(realm)}/users/${encodeURIComponent(id)}`;
}
