/**
 * The Cassandra adapter of the row look-up (port in `ports.ts`): `SELECT id[, columns] FROM <ks>.<table>
 * WHERE id = ?`, one prepared point look-up per id (token-aware, so each goes straight to a replica of
 * its row), a bounded number in flight. Never a scan, whatever the table's size.
 */
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { mapLimit } from '#shared/core/concurrency.ts';
import type { RowLookup } from '#shared/sync/ports.ts';

const IDENTIFIER = /^\w+$/;

export interface CassandraRowLookupOptions {
  /** Look-ups in flight at once. */
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
    this.#concurrency = opts.concurrency ?? 64;
  }

  async rows(
    keyspace: string,
    table: string,
    ids: readonly string[],
    columns: readonly string[] = [],
  ): Promise<Map<string, Record<string, string | null>>> {
    const selected = ['id', ...columns.filter((c) => c !== 'id').map((c) => check('column', c))];
    const cql = `SELECT ${selected.join(', ')} FROM ${check('keyspace', keyspace)}."${check('table', table)}" WHERE id = ?`;
    const unique = [...new Set(ids)];
    const found = await mapLimit(unique, this.#concurrency, async (id) => {
      const row = (await this.#client.execute(cql, [id], { prepare: true })).first();
      if (!row) return undefined;
      const values: Record<string, string | null> = {};
      for (const c of columns) {
        const v = row.get(c) as unknown;
        values[c] = v === null || v === undefined ? null : String(v);
      }
      return [id, values] as const;
    });
    return new Map(found.filter((f) => f !== undefined));
  }
}
