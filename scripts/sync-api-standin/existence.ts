/**
 * The verified mode's view of what exists: which of a block's ids the service would report as
 * indexed in `esSyncResponse`.
 */

/** Which of `ids` exist (are "indexed") for `objectType`. */
export type ExistsFn = (objectType: string, ids: string[]) => Promise<Set<string>>;

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
