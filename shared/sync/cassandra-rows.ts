/**
 * The Cassandra adapter of the row look-up (port in `ports.ts`): `SELECT id[, columns] FROM <ks>.<table>
 * WHERE id IN ?` for up to IN_SLICE ids at a time — partition-key look-ups, never a scan, so a block of 100
 * ids is one round trip instead of a hundred — with a bounded number of slices in flight. Each look-up
 * rides out a Cassandra outage of up to the client's retry window.
 */
import { type CassandraClient, executeIdempotent } from '#shared/clients/cassandra.ts';
import { mapLimit } from '#shared/core/concurrency.ts';
import type { RowLookup } from '#shared/sync/ports.ts';

const IDENTIFIER = /^\w+$/;

/** Ids per look-up: one partition each, read by the coordinator in one request. */
export const IN_SLICE = 100;

export interface CassandraRowLookupOptions {
  /** Look-ups (slices of up to IN_SLICE ids) in flight at once. */
  concurrency?: number;
}

function check(kind: string, name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`invalid ${kind} name "${name}"`);
  return name;
}

export class CassandraRowLookup implements RowLookup {
  readonly #client: CassandraClient;
  readonly #concurrency: number;

  constructor(client: CassandraClient, opts: CassandraRowLookupOptions = {}) {
    this.#client = client;
    this.#concurrency = opts.concurrency ?? 4;
  }

  async rows(
    keyspace: string,
    table: string,
    ids: readonly string[],
    columns: readonly string[] = [],
  ): Promise<Map<string, Record<string, string | null>>> {
    const selected = ['id', ...columns.filter((c) => c !== 'id').map((c) => check('column', c))];
    const cql = `SELECT ${selected.join(', ')} FROM ${check('keyspace', keyspace)}."${check('table', table)}" WHERE id IN ?`;
    const unique = [...new Set(ids)];
    const slices: string[][] = [];
    for (let i = 0; i < unique.length; i += IN_SLICE) slices.push(unique.slice(i, i + IN_SLICE));
    const found = new Map<string, Record<string, string | null>>();
    await mapLimit(slices, this.#concurrency, async (slice) => {
      const rs = await executeIdempotent(this.#client, cql, [slice], { fetchSize: IN_SLICE });
      for (const row of rs.rows) {
        const values: Record<string, string | null> = {};
        for (const c of columns) {
          const v = row.get(c) as unknown;
          values[c] = v === null || v === undefined ? null : String(v);
        }
        found.set(row.get('id') as string, values);
      }
    });
    return found;
  }
}
