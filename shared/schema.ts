/**
 * Cassandra schema: Sunbird's own tables (exactly as in the sunbird-utils migrations, for local runs and
 * tests) and this tool's bookkeeping keyspace. Every statement is idempotent (IF NOT EXISTS).
 */
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { deletionTables } from '#shared/keycloak/cassandra-records.ts';
import { mergeTables } from '#shared/merge/cassandra-store.ts';
import { LEDGER_COLUMNS, ledgerTables } from '#shared/sync/cassandra-ledger.ts';

export interface Keyspaces {
  sunbird: string;
  courses: string;
  ops: string;
}

export const DEFAULT_KEYSPACES: Keyspaces = {
  sunbird: 'sunbird',
  courses: 'sunbird_courses',
  ops: 'sunbird_dataops',
};

/** Local default; production clusters pass e.g. {'class':'NetworkTopologyStrategy','dc1':3}. */
export const LOCAL_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

export function sunbirdTables(ks: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${ks}.user (
      id text PRIMARY KEY, userid text, username text, loginid text, email text, maskedemail text,
      emailverified boolean, phone text, maskedphone text, phoneverified boolean, countrycode text,
      status int, isdeleted boolean, rootorgid text, channel text, firstname text, lastname text,
      roles list<text>, dob text, gender text, language list<text>, grade list<text>, subject list<text>,
      locationids list<text>, framework map<text, frozen<list<text>>>, profilevisibility map<text, text>,
      usertype text, usersubtype text, profileusertype text, profilelocation text, flagsvalue int,
      managedby text, recoveryemail text, recoveryphone text, tncacceptedon timestamp,
      tncacceptedversion text, createdby text, createddate text, updatedby text, updateddate text,
      lastlogintime bigint, currentlogintime text, avatar text, thumbnail text, provider text, externalid text
    )`,
    `CREATE TABLE IF NOT EXISTS ${ks}.organisation (
      id text PRIMARY KEY, orgname text, channel text, status int, isrootorg boolean, rootorgid text,
      description text, email text, externalid text, hashtagid text, homeurl text, imgurl text,
      isdefault boolean, isssoenabled boolean, locationids list<text>, orgcode text, orgtype text,
      organisationtype int, slug text, provider text, preferredlanguage text, contactdetail text,
      theme text, createdby text, createddate text, updatedby text, updateddate text
    )`,
  ];
}

export function courseTables(ks: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${ks}.user_content_consumption (
      userid text, courseid text, batchid text, contentid text,
      completedcount int, datetime timestamp, lastaccesstime text, lastcompletedtime text, lastupdatedtime text,
      progress int, status int, viewcount int,
      last_access_time timestamp, last_completed_time timestamp, last_updated_time timestamp,
      completionpercentage float, progressdetails text,
      PRIMARY KEY (userid, courseid, batchid, contentid)
    )`,
    `CREATE TABLE IF NOT EXISTS ${ks}.user_enrolments (
      userid text, courseid text, batchid text, active boolean, addedby text,
      certificates list<frozen<map<text, text>>>, completedon timestamp, completionpercentage int,
      contentstatus map<text, int>, datetime timestamp, enrolleddate text, lastreadcontentid text,
      lastreadcontentstatus int, progress int, status int,
      issued_certificates list<frozen<map<text, text>>>, certstatus int, enrolled_date timestamp,
      lastcontentaccesstime timestamp,
      PRIMARY KEY (userid, courseid, batchid)
    )`,
    `CREATE TABLE IF NOT EXISTS ${ks}.user_activity_agg (
      activity_type text, activity_id text, user_id text, context_id text,
      agg map<text, int>, agg_last_updated map<text, timestamp>, aggregates map<text, double>,
      agg_details list<text>,
      PRIMARY KEY ((activity_type, activity_id, user_id), context_id)
    )`,
  ];
}

/** This tool's own tables (run ledger, merge journal): each feature's DDL is listed here. */
export function opsTables(ks: string): string[] {
  return [...ledgerTables(ks), ...deletionTables(ks), ...mergeTables(ks)];
}

export interface MigrateOptions {
  keyspaces?: Partial<Keyspaces>;
  replication?: string;
  /** Skip Sunbird's own tables (production: they exist and belong to Sunbird). */
  only?: Array<keyof Keyspaces>;
  onStatement?: (cql: string) => void;
}

function firstLine(cql: string): string {
  return cql.replace(/\s+/g, ' ').slice(0, 80);
}

export async function migrate(client: CassandraClient, opts: MigrateOptions = {}): Promise<Keyspaces> {
  const ks: Keyspaces = { ...DEFAULT_KEYSPACES, ...opts.keyspaces };
  const replication = opts.replication ?? LOCAL_REPLICATION;
  const parts = opts.only ?? (['sunbird', 'courses', 'ops'] as const);
  const tablesFor = { sunbird: sunbirdTables, courses: courseTables, ops: opsTables };
  for (const part of parts) {
    const statements = [
      `CREATE KEYSPACE IF NOT EXISTS ${ks[part]} WITH replication = ${replication}`,
      ...tablesFor[part](ks[part]),
    ];
    for (const cql of statements) {
      opts.onStatement?.(firstLine(cql));
      // Schema changes must be agreed by every node before the next one; the driver waits for that.
      await client.execute(cql, [], { prepare: false });
    }
    if (part === 'ops') await addMissingColumns(client, ks.ops, opts.onStatement);
  }
  return ks;
}

/** Columns added to the ledger after its tables were first created (CQL has no ADD … IF NOT EXISTS). */
async function addMissingColumns(
  client: CassandraClient,
  ks: string,
  onStatement?: (cql: string) => void,
): Promise<void> {
  const rs = await client.execute(
    'SELECT table_name, column_name FROM system_schema.columns WHERE keyspace_name = ?',
    [ks],
  );
  const have = new Set(rs.rows.map((r) => `${r.table_name}.${r.column_name}`));
  for (const c of LEDGER_COLUMNS) {
    if (have.has(`${c.table}.${c.column}`)) continue;
    const cql = `ALTER TABLE ${ks}.${c.table} ADD ${c.column} ${c.type}`;
    onStatement?.(cql);
    await client.execute(cql, [], { prepare: false });
  }
}

/** The CQL `migrate --print` shows a DBA: the ops keyspace and its tables, idempotent. */
export function opsSchemaCql(keyspace: string, replication: string): string[] {
  return [
    `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ${replication}`,
    ...opsTables(keyspace),
  ];
}
