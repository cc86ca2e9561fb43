/** Sunbird object types and the Cassandra tables they live in: the one mapping between the two. */

/** What the Sync API accepts as `objectType`. */
export const OBJECT_TYPES = ['user', 'organisation', 'location'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

/** The tables a sync can scan (keyspace `sunbird`). */
export const TABLES = ['user', 'organisation'] as const;
export type Table = (typeof TABLES)[number];

/** The table holding an object type's rows; undefined for `location` (no table here). */
export function tableOf(objectType: string): Table | undefined {
  return (TABLES as readonly string[]).includes(objectType) ? (objectType as Table) : undefined;
}

/** The object type a table's rows are synced as. */
export function objectTypeOf(table: Table): ObjectType {
  return table;
}
