/**
 * The search-engine adapter (port in `shared/search/ports.ts`) for OpenSearch and Elasticsearch 6–8, on
 * one keep-alive undici Pool. Only a handful of REST calls: `GET /` (which engine and version), `HEAD
 * /<index>`, `_cat/indices` and `_cat/aliases` (to name what exists), `_mget` (or an `ids` query on
 * Elasticsearch 6) and a full listing of an index.
 *
 * Listing: point in time + `search_after` where the engine has a cheap unique sort for it — Elasticsearch
 * ≥ 7.12 sorts on `_shard_doc`. OpenSearch has no `_shard_doc`; its point in time can only be paged on a
 * unique field such as `_id`, which loads every id into the node's heap (fielddata), so by default
 * OpenSearch and Elasticsearch < 7.12 are listed with a scroll sorted on `_doc` (the cheapest order).
 * `paging: 'pit'` forces a point in time (OpenSearch ≥ 2.4, sorted on `_id`), `'scroll'` forces a scroll.
 *
 * Every call is bounded (connect, headers and body timeouts). Idempotent reads are retried on network
 * errors, 429 and 5xx with the one retry policy; a scroll continuation is not (a retried one could skip
 * a page). Credentials go in headers only (basic or API key), never in the URL or an error message.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { BadInputError, CredentialsRefusedError, ServiceUnavailableError } from '#shared/core/errors.ts';
import {
  DEFAULT_RETRY,
  isRetryableNetworkError,
  isRetryableStatus,
  parseRetryAfter,
  withRetry,
} from '#shared/core/retry.ts';
import { registerSecret, scrubString } from '#shared/redact.ts';
import type { IndexedDoc, ListOptions, LookupOptions, SearchIndex } from '#shared/search/ports.ts';

export type Paging = 'auto' | 'pit' | 'scroll';

export interface SearchEngineOptions {
  /** Base URL, e.g. https://es.example.org:9200 (no credentials in it). */
  url: string;
  username?: string;
  password?: string;
  /** An API key as the engine hands it out (`encoded`), sent as `Authorization: ApiKey <key>`. */
  apiKey?: string;
  /** PEM file of the CA that signed the engine's certificate. */
  caFile?: string;
  /** Longest wait for one answer (headers, and between body chunks), in ms. */
  timeoutMs?: number;
  maxRetries?: number;
  /** The document field holding the row's last-update date. */
  updatedField?: string;
  paging?: Paging;
  connections?: number;
}

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: the engine's JSON answers, read field by field
  json: any;
  retryAfterMs?: number;
}

export interface EngineInfo {
  distribution: 'opensearch' | 'elasticsearch';
  version: string;
  major: number;
  minor: number;
}

const KEEP_ALIVE = '5m';
/** Node's codes for a certificate that does not verify: configuration, not an outage. */
const TLS_TRUST = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/;
const MGET_CHUNK = 1000;
/**
 * Only the fields read here come back (`filter_path`): a listing page is about half the bytes, and the
 * engine serialises less. `error` is kept so a failure still says why.
 */
const ONLY = {
  mget: 'filter_path=docs._id,docs.found,docs._source,docs.error,error',
  scroll: 'filter_path=_scroll_id,hits.hits._id,hits.hits._source,error',
  pit: 'filter_path=pit_id,hits.hits._id,hits.hits._source,hits.hits.sort,error',
};
const DEFAULT_PAGE = 5000;
const NAMES_SHOWN = 30;

export function engineInfoOf(json: unknown): EngineInfo {
  const v = (json as { version?: { number?: unknown; distribution?: unknown } } | null)?.version;
  const version = typeof v?.number === 'string' ? v.number : '';
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) throw new BadInputError(`the search engine answered GET / without a version number`);
  return {
    distribution: v?.distribution === 'opensearch' ? 'opensearch' : 'elasticsearch',
    version,
    major: Number(m[1]),
    minor: Number(m[2]),
  };
}

/** How an index is listed: point in time (and on which unique sort) or scroll. */
export function listingOf(e: EngineInfo, paging: Paging): { kind: 'pit' | 'scroll'; sort: string } {
  const atLeast = (major: number, minor: number) =>
    e.major > major || (e.major === major && e.minor >= minor);
  const esPit = e.distribution === 'elasticsearch' && atLeast(7, 12);
  const osPit = e.distribution === 'opensearch' && atLeast(2, 4);
  if (paging === 'scroll' || (paging === 'auto' && !esPit)) return { kind: 'scroll', sort: '_doc' };
  if (esPit) return { kind: 'pit', sort: '_shard_doc' };
  if (osPit) return { kind: 'pit', sort: '_id' };
  throw new BadInputError(
    `${e.distribution} ${e.version} has no point in time for listing an index: use --es-paging scroll`,
  );
}

export class SearchEngineClient implements SearchIndex {
  readonly url: string;
  readonly #basePath: string;
  readonly #pool: Pool;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #field: string;
  readonly #paging: Paging;
  #info?: Promise<EngineInfo>;

  constructor(opts: SearchEngineOptions) {
    let base: URL;
    try {
      base = new URL(opts.url);
    } catch {
      throw new BadInputError(`invalid search engine URL ${JSON.stringify(opts.url)}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new BadInputError(`the search engine URL must be http(s), got ${base.protocol}`);
    if (base.username || base.password)
      throw new BadInputError(
        'put the search engine credentials in ES_USERNAME/ES_PASSWORD or ES_API_KEY, not in the URL',
      );
    if (opts.apiKey && (opts.username || opts.password))
      throw new BadInputError('give either ES_USERNAME/ES_PASSWORD or ES_API_KEY, not both');
    this.url = base.origin + base.pathname.replace(/\/+$/, '');
    this.#basePath = base.pathname.replace(/\/+$/, '');
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#maxRetries = opts.maxRetries ?? 3;
    this.#field = opts.updatedField ?? 'updateddate';
    this.#paging = opts.paging ?? 'auto';
    this.#headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (opts.apiKey) {
      registerSecret(opts.apiKey);
      this.#headers.authorization = `ApiKey ${opts.apiKey}`;
    } else if (opts.username) {
      registerSecret(opts.password);
      const basic = Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64');
      registerSecret(basic);
      this.#headers.authorization = `Basic ${basic}`;
    }
    let ca: Buffer | undefined;
    if (opts.caFile) {
      try {
        ca = readFileSync(opts.caFile);
      } catch (err) {
        throw new BadInputError(`cannot read the CA file ${opts.caFile}: ${(err as Error).message}`);
      }
    }
    this.#pool = new Pool(base.origin, {
      connections: opts.connections ?? 8,
      connect: { timeout: Math.min(10_000, this.#timeoutMs), ...(ca ? { ca } : {}) },
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
  }

  /** The engine and its version (asked once). */
  info(): Promise<EngineInfo> {
    this.#info ??= this.#get('GET', '/', 'asking for its version').then((a) => engineInfoOf(a.json));
    this.#info.catch(() => {
      this.#info = undefined;
    });
    return this.#info;
  }

  async requireIndex(index: string): Promise<void> {
    checkIndexName(index);
    const head = await this.#call('HEAD', `/${encodeURIComponent(index)}`, undefined, 'checking the index');
    if (head.status === 200) return;
    if (head.status === 404) throw await this.#missingIndex(index);
    this.#fail(`checking index ${index}`, head);
  }

  async *list(index: string, opts: ListOptions = {}): AsyncGenerator<IndexedDoc[]> {
    const listing = listingOf(await this.info(), this.#paging);
    const size = opts.pageSize ?? DEFAULT_PAGE;
    const source = opts.withUpdated ? [this.#field] : false;
    if (listing.kind === 'scroll') yield* this.#scroll(index, size, source);
    else yield* this.#pit(index, size, source, listing.sort);
  }

  async count(index: string): Promise<number> {
    const a = await this.#get(
      'GET',
      `/${encodeURIComponent(index)}/_count`,
      `counting ${index}`,
      undefined,
      index,
    );
    return Number(a.json.count ?? 0);
  }

  async lookup(
    index: string,
    ids: readonly string[],
    opts: LookupOptions = {},
  ): Promise<Map<string, IndexedDoc>> {
    const found = new Map<string, IndexedDoc>();
    if (ids.length === 0) return found;
    const e = await this.info();
    for (let i = 0; i < ids.length; i += MGET_CHUNK) {
      const chunk = ids.slice(i, i + MGET_CHUNK);
      const docs =
        e.distribution === 'elasticsearch' && e.major < 7
          ? await this.#idsQuery(index, chunk, opts.withUpdated === true)
          : await this.#mget(index, chunk, opts.withUpdated === true);
      for (const d of docs) found.set(d.id, d);
    }
    return found;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  // -------------------------------------------------------------------------------------------------

  async #mget(index: string, ids: string[], withUpdated: boolean): Promise<IndexedDoc[]> {
    const source = withUpdated ? encodeURIComponent(this.#field) : 'false';
    const path = `/${encodeURIComponent(index)}/_mget?_source=${source}&${ONLY.mget}`;
    const a = await this.#get('POST', path, `reading ids from ${index}`, { ids }, index);
    const out: IndexedDoc[] = [];
    for (const d of (a.json.docs ?? []) as Array<Record<string, unknown>>) {
      if (d.error) {
        if ((d.error as { type?: string }).type === 'index_not_found_exception')
          throw await this.#missingIndex(index);
        this.#fail(`reading ids from ${index}`, { status: 500, json: { error: d.error } });
      }
      if (d.found) out.push(this.#doc(d));
    }
    return out;
  }

  /** Elasticsearch 6 (typed indices): an `ids` query instead of `_mget`. */
  async #idsQuery(index: string, ids: string[], withUpdated: boolean): Promise<IndexedDoc[]> {
    const body = {
      size: ids.length,
      query: { ids: { values: ids } },
      _source: withUpdated ? [this.#field] : false,
    };
    const path = `/${encodeURIComponent(index)}/_search`;
    const a = await this.#get('POST', path, `reading ids from ${index}`, body, index);
    return (a.json.hits?.hits ?? []).map((h: Record<string, unknown>) => this.#doc(h));
  }

  async *#scroll(index: string, size: number, source: string[] | false): AsyncGenerator<IndexedDoc[]> {
    const path = `/${encodeURIComponent(index)}/_search?scroll=${KEEP_ALIVE}&${ONLY.scroll}`;
    const first = { size, sort: ['_doc'], _source: source };
    let a = await this.#get('POST', path, `listing ${index}`, first, index);
    let scrollId: string | undefined = a.json._scroll_id;
    try {
      for (;;) {
        const hits = (a.json.hits?.hits ?? []) as Array<Record<string, unknown>>;
        if (hits.length === 0) return;
        yield hits.map((h) => this.#doc(h));
        // Not retried: a continuation the engine served but we did not receive would skip a page.
        a = await this.#get(
          'POST',
          `/_search/scroll?${ONLY.scroll}`,
          `listing ${index}`,
          {
            scroll: KEEP_ALIVE,
            scroll_id: scrollId,
          },
          index,
          false,
        );
        scrollId = a.json._scroll_id ?? scrollId;
      }
    } finally {
      if (scrollId) await this.#release('DELETE', '/_search/scroll', { scroll_id: [scrollId] });
    }
  }

  async *#pit(
    index: string,
    size: number,
    source: string[] | false,
    sort: string,
  ): AsyncGenerator<IndexedDoc[]> {
    const os = sort === '_id';
    const open = os
      ? `/${encodeURIComponent(index)}/_search/point_in_time?keep_alive=${KEEP_ALIVE}`
      : `/${encodeURIComponent(index)}/_pit?keep_alive=${KEEP_ALIVE}`;
    const opened = await this.#get('POST', open, `opening a point in time on ${index}`, undefined, index);
    let pitId: string = os ? opened.json.pit_id : opened.json.id;
    try {
      let after: unknown[] | undefined;
      for (;;) {
        const body = {
          size,
          _source: source,
          pit: { id: pitId, keep_alive: KEEP_ALIVE },
          sort: [{ [sort]: 'asc' }],
          track_total_hits: false,
          ...(after ? { search_after: after } : {}),
        };
        const a = await this.#get('POST', `/_search?${ONLY.pit}`, `listing ${index}`, body, index);
        pitId = a.json.pit_id ?? pitId;
        const hits = (a.json.hits?.hits ?? []) as Array<Record<string, unknown>>;
        if (hits.length === 0) return;
        yield hits.map((h) => this.#doc(h));
        after = hits.at(-1)!.sort as unknown[];
      }
    } finally {
      if (os) await this.#release('DELETE', '/_search/point_in_time', { pit_id: [pitId] });
      else await this.#release('DELETE', '/_pit', { id: pitId });
    }
  }

  #doc(hit: Record<string, unknown>): IndexedDoc {
    const source = hit._source as Record<string, unknown> | undefined;
    const v = source?.[this.#field];
    return { id: String(hit._id), updated: v === undefined || v === null ? null : String(v) };
  }

  /** Frees a scroll or point in time; a failure here only leaves it to expire. */
  async #release(method: 'DELETE', path: string, body: unknown): Promise<void> {
    await this.#call(method, path, body, 'releasing a search context', false).catch(() => undefined);
  }

  /** A call that must answer 2xx; a 404 on `index` means the index is missing. */
  async #get(
    method: 'GET' | 'POST',
    path: string,
    what: string,
    body?: unknown,
    index?: string,
    idempotent = true,
  ): Promise<Answer> {
    const a = await this.#call(method, path, body, what, idempotent);
    if (a.status >= 200 && a.status < 300) return a;
    if (a.status === 404 && index && a.json?.error?.type === 'index_not_found_exception')
      throw await this.#missingIndex(index);
    this.#fail(what, a);
  }

  async #call(
    method: 'GET' | 'HEAD' | 'POST' | 'DELETE',
    path: string,
    body: unknown,
    what: string,
    idempotent = true,
  ): Promise<Answer> {
    let a: Answer;
    try {
      a = await withRetry(() => this.#once(method, path, body), {
        policy: { ...DEFAULT_RETRY, maxRetries: this.#maxRetries },
        retryable: (err) => idempotent && isRetryableNetworkError(err),
        retryResult: (r) =>
          idempotent && isRetryableStatus(r.status)
            ? r.retryAfterMs === undefined
              ? {}
              : { retryAfterMs: r.retryAfterMs }
            : undefined,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (TLS_TRUST.test(e.code ?? ''))
        throw new BadInputError(
          `the search engine at ${this.url} presented a certificate that is not trusted (${e.code}): give its CA with --es-ca-file (ES_CA_FILE)`,
        );
      const why = /TIMEOUT/.test(e.code ?? '')
        ? `did not answer within ${this.#timeoutMs / 1000} s`
        : `is unreachable (${e.code ?? scrubString(e.message)})`;
      throw new ServiceUnavailableError(
        'search engine',
        `the search engine at ${this.url} ${why} while ${what}`,
        {
          address: this.url,
          cause: err,
        },
      );
    }
    return a;
  }

  async #once(method: string, path: string, body: unknown): Promise<Answer> {
    const res = await this.#pool.request({
      method: method as 'GET',
      path: `${this.#basePath}${path}`,
      headers: this.#headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    let json: unknown = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      // HEAD and some proxies' errors have no JSON body; the status says enough.
    }
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    return { status: res.statusCode, json, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }

  #fail(what: string, a: Answer): never {
    const error = a.json?.error as { type?: string; reason?: string } | string | undefined;
    const reason = scrubString(
      (typeof error === 'string' ? error : (error?.reason ?? error?.type)) ??
        JSON.stringify(a.json ?? {}).slice(0, 200),
    );
    const message = `the search engine at ${this.url} answered HTTP ${a.status} while ${what}: ${reason}`;
    if (a.status === 401 || a.status === 403) throw new CredentialsRefusedError('search engine', message);
    if (isRetryableStatus(a.status))
      throw new ServiceUnavailableError('search engine', message, { address: this.url });
    throw new BadInputError(message);
  }

  /** The error for a missing index: its name and the indices (and aliases) there are. */
  async #missingIndex(index: string): Promise<BadInputError> {
    const names = new Set<string>();
    for (const [path, key] of [
      ['/_cat/indices?format=json&h=index', 'index'],
      ['/_cat/aliases?format=json&h=alias', 'alias'],
    ] as const) {
      const a = await this.#call('GET', path, undefined, 'listing its indices').catch(() => undefined);
      if (a && a.status === 200 && Array.isArray(a.json))
        for (const row of a.json as Array<Record<string, string>>) if (row[key]) names.add(row[key]);
    }
    const shown = [...names].filter((n) => !n.startsWith('.')).sort();
    const list = shown.length
      ? `the indices there are: ${shown.slice(0, NAMES_SHOWN).join(', ')}${shown.length > NAMES_SHOWN ? `, … (${shown.length - NAMES_SHOWN} more)` : ''}`
      : 'it holds no index';
    return new BadInputError(`index "${index}" not found at ${this.url}; ${list}`);
  }
}

const INDEX_NAME = /^[^\\/*?"<>| ,#A-Z:]{1,255}$/;

/** A one-line error unless `name` can be an index or alias name (lowercase, none of \/*?"<>|,# :). */
export function checkIndexName(name: string): string {
  if (!INDEX_NAME.test(name) || name.startsWith('-') || name.startsWith('_') || name === '.' || name === '..')
    throw new BadInputError(
      `invalid index name ${JSON.stringify(name)}: lowercase, none of \\/*?"<>|,#: or spaces`,
    );
  return name;
}
