/**
 * The documents userorg-service would index, read from Cassandra: one per row of `<keyspace>.user` /
 * `<keyspace>.organisation`, the row's columns as JSON plus `identifier` (= id), as its
 * ElasticSearchRestHighImpl.save adds it. Kept simple, but real: no enrichment with the user's
 * organisations or locations, which userorg-service adds from other tables.
 */
import cassandra from 'cassandra-driver';

const { types } = cassandra;

/** A JSON document, keyed by column name. */
export type Document = Record<string, unknown>;

/** Reads the documents of `ids` for an object type; ids without a row are simply absent. */
export type DocumentSource = (objectType: string, ids: readonly string[]) => Promise<Map<string, Document>>;

/** The table each indexed object type is read from (location is not modelled here). */
export const TABLE_OF_TYPE: Readonly<Record<string, string>> = { user: 'user', organisation: 'organisation' };

/** Columns userorg-service drops before indexing (getUserDetailsForES removes the password). */
const DROPPED: Readonly<Record<string, readonly string[]>> = { user: ['password'] };

const CQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

/**
 * A Cassandra value as JSON: timestamps as ISO strings; bigint as a number when it is exact, else a
 * string; uuids, decimals, varints, dates, times, inet addresses and durations as their text; blobs
 * as base64; lists, sets, tuples and maps (also nested) as arrays and objects. Text dates (Sunbird's
 * `createddate`, `updateddate`) stay the strings they are, so they compare equal with Cassandra's.
 */
export function jsonValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof types.Long) {
    const n = v.toNumber();
    return Number.isSafeInteger(n) ? n : v.toString();
  }
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v instanceof Set) return [...v].map(jsonValue);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonValue(x)]));
  if (v instanceof types.Tuple) return v.values().map(jsonValue);
  if (
    v instanceof types.Uuid ||
    v instanceof types.BigDecimal ||
    v instanceof types.Integer ||
    v instanceof types.LocalDate ||
    v instanceof types.LocalTime ||
    v instanceof types.InetAddress ||
    v instanceof types.Duration
  ) {
    return v.toString();
  }
  if (typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, jsonValue(x)]),
    );
  }
  return v;
}

/** One row as the document: every column (nulls included), minus dropped ones, plus `identifier`. */
export function rowToDocument(objectType: string, row: cassandra.types.Row): Document {
  const dropped = DROPPED[objectType] ?? [];
  const doc: Document = {};
  for (const column of row.keys()) if (!dropped.includes(column)) doc[column] = jsonValue(row.get(column));
  doc.identifier = doc.id;
  return doc;
}

export interface CassandraDocumentsOptions {
  /** A connected (or lazily connecting) cassandra-driver Client. */
  client: Pick<cassandra.Client, 'execute'>;
  keyspace?: string;
  /** Ids per `IN` query (default 100). */
  chunkSize?: number;
  /** `IN` queries in flight at once (default 8). */
  concurrency?: number;
}

/** Documents from Cassandra: `SELECT * FROM <keyspace>."<table>" WHERE id IN ?`, in bounded chunks. */
export function cassandraDocuments(opts: CassandraDocumentsOptions): DocumentSource {
  const keyspace = opts.keyspace ?? 'sunbird';
  if (!CQL_IDENTIFIER.test(keyspace)) throw new Error(`invalid keyspace name ${JSON.stringify(keyspace)}`);
  const chunkSize = opts.chunkSize ?? 100;
  const concurrency = opts.concurrency ?? 8;
  return async (objectType, ids) => {
    const docs = new Map<string, Document>();
    const table = TABLE_OF_TYPE[objectType];
    if (!table) return docs;
    const query = `SELECT * FROM ${keyspace}."${table}" WHERE id IN ?`;
    const unique = [...new Set(ids)];
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += chunkSize) chunks.push(unique.slice(i, i + chunkSize));
    const next = async (): Promise<void> => {
      for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) {
        const rs = await opts.client.execute(query, [chunk], { prepare: true });
        for (const row of rs.rows) docs.set(String(row.get('id')), rowToDocument(objectType, row));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, chunks.length) }, next));
    return docs;
  };
}
