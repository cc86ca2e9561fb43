/**
 * The few OpenSearch (Elasticsearch 7 compatible) REST calls the stand-in needs: create an index,
 * bulk-index documents under their ids, and ask which ids an index holds. Every call is bounded in
 * time; an unreachable node is one clear error.
 */
import { Pool } from 'undici';
import type { Document } from './documents.ts';

/** OpenSearch could not be reached, did not answer in time, or failed a call as a whole. */
export class OpenSearchError extends Error {
  override name = 'OpenSearchError';
}

export interface OpenSearchOptions {
  /** Base URL, e.g. http://127.0.0.1:9200. */
  url: string;
  /** Longest wait for one call's answer (default 30 s). */
  timeoutMs?: number;
  /** Longest wait for a connection (default 5 s). */
  connectTimeoutMs?: number;
}

export interface BulkOutcome {
  indexed: string[];
  /** Ids OpenSearch refused, with its reason (e.g. a mapping conflict). */
  failed: Map<string, string>;
}

/** Documents per bulk request; a block is usually 100 ids, at most ~25,000 under the 1 MB limit. */
const BULK_CHUNK = 500;
const MGET_CHUNK = 1000;
const INDEX_NAME = /^[a-z0-9][^\\/*?"<>| ,#A-Z:]{0,254}$/;

/** Throws a one-line error unless `name` is a valid OpenSearch index name. */
export function requireIndexName(name: string): string {
  if (!INDEX_NAME.test(name) || name === '.' || name === '..') {
    throw new Error(
      `invalid OpenSearch index name ${JSON.stringify(name)}: lowercase, no \\/*?"<>|,#: or spaces`,
    );
  }
  return name;
}

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

export class OpenSearchClient {
  readonly url: string;
  readonly #basePath: string;
  readonly #pool: Pool;
  readonly #timeoutMs: number;
  readonly #created = new Map<string, Promise<void>>();

  constructor(opts: OpenSearchOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    let base: URL;
    try {
      base = new URL(this.url);
    } catch {
      throw new Error(`invalid OpenSearch URL ${JSON.stringify(opts.url)}`);
    }
    this.#basePath = base.pathname.replace(/\/$/, '');
    this.#pool = new Pool(base.origin, {
      connections: 8,
      connect: { timeout: opts.connectTimeoutMs ?? 5000 },
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
  }

  async #call(
    method: 'GET' | 'HEAD' | 'PUT' | 'POST',
    path: string,
    body?: string,
    ndjson = false,
  ): Promise<Answer> {
    let res: Awaited<ReturnType<Pool['request']>>;
    try {
      res = await this.#pool.request({
        method,
        path: `${this.#basePath}${path}`,
        headers: { 'content-type': ndjson ? 'application/x-ndjson' : 'application/json' },
        ...(body === undefined ? {} : { body }),
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = /TIMEOUT/.test(e.code ?? '')
        ? `did not answer within ${this.#timeoutMs / 1000} s`
        : 'is unreachable';
      throw new OpenSearchError(`OpenSearch at ${this.url} ${why} (${e.code ?? e.message})`);
    }
    const text = await res.body.text().catch((err: Error) => {
      throw new OpenSearchError(`OpenSearch at ${this.url}: ${method} ${path} broke off (${err.message})`);
    });
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // HEAD and some errors have no JSON body; the status says enough.
    }
    return { status: res.statusCode, json };
  }

  #fail(what: string, a: Answer): never {
    const error = a.json.error as { type?: string; reason?: string } | undefined;
    const reason = error?.reason ?? error?.type ?? JSON.stringify(a.json).slice(0, 200);
    throw new OpenSearchError(`OpenSearch at ${this.url}: ${what} → HTTP ${a.status}: ${reason}`);
  }

  /** Creates the index (1 shard, no replica: one local node) unless it exists; once per name. */
  ensureIndex(index: string): Promise<void> {
    let created = this.#created.get(index);
    if (!created) {
      created = (async () => {
        const head = await this.#call('HEAD', `/${encodeURIComponent(index)}`);
        if (head.status === 200) return;
        const settings = { settings: { index: { number_of_shards: 1, number_of_replicas: 0 } } };
        const put = await this.#call('PUT', `/${encodeURIComponent(index)}`, JSON.stringify(settings));
        const type = (put.json.error as { type?: string } | undefined)?.type;
        if (put.status !== 200 && type !== 'resource_already_exists_exception')
          this.#fail(`creating ${index}`, put);
      })();
      this.#created.set(index, created);
      created.catch(() => this.#created.delete(index));
    }
    return created;
  }

  /** Indexes (creates or replaces) each document under its id, through the Bulk API. */
  async bulkIndex(index: string, docs: ReadonlyMap<string, Document>): Promise<BulkOutcome> {
    await this.ensureIndex(index);
    const outcome: BulkOutcome = { indexed: [], failed: new Map() };
    const entries = [...docs];
    for (let i = 0; i < entries.length; i += BULK_CHUNK) {
      const lines = entries
        .slice(i, i + BULK_CHUNK)
        .map(
          ([id, doc]) => `${JSON.stringify({ index: { _index: index, _id: id } })}\n${JSON.stringify(doc)}\n`,
        );
      const a = await this.#call('POST', '/_bulk', lines.join(''), true);
      if (a.status !== 200) this.#fail(`bulk indexing into ${index}`, a);
      type Item = { index?: { _id: string; status: number; error?: { type?: string; reason?: string } } };
      for (const item of (a.json.items ?? []) as Item[]) {
        const r = item.index;
        if (!r) continue;
        if (r.status < 300) outcome.indexed.push(r._id);
        else outcome.failed.set(r._id, `${r.error?.type ?? r.status}: ${r.error?.reason ?? ''}`.trim());
      }
    }
    return outcome;
  }

  /** Which of `ids` the index holds (realtime: no refresh needed); none when the index is missing. */
  async existing(index: string, ids: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += MGET_CHUNK) {
      const body = JSON.stringify({ ids: ids.slice(i, i + MGET_CHUNK) });
      const a = await this.#call('POST', `/${encodeURIComponent(index)}/_mget?_source=false`, body);
      if (a.status === 404) return found;
      if (a.status !== 200) this.#fail(`reading ids from ${index}`, a);
      for (const d of (a.json.docs ?? []) as Array<{ _id: string; found?: boolean }>)
        if (d.found) found.add(d._id);
    }
    return found;
  }

  /** Documents in the index after a refresh (so recent writes count); 0 when the index is missing. */
  async count(index: string): Promise<number> {
    const path = `/${encodeURIComponent(index)}`;
    const refreshed = await this.#call('POST', `${path}/_refresh`);
    if (refreshed.status === 404) return 0;
    if (refreshed.status !== 200) this.#fail(`refreshing ${index}`, refreshed);
    const a = await this.#call('GET', `${path}/_count`);
    if (a.status !== 200) this.#fail(`counting ${index}`, a);
    return Number(a.json.count);
  }

  /** One document's source, or null when the index does not hold it. */
  async get(index: string, id: string): Promise<Document | null> {
    const a = await this.#call('GET', `/${encodeURIComponent(index)}/_doc/${encodeURIComponent(id)}`);
    if (a.status === 404) return null;
    if (a.status !== 200) this.#fail(`reading ${index}/${id}`, a);
    return a.json._source as Document;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
