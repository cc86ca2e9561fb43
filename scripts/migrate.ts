/**
 * `npm run migrate -- [--keyspace sunbird] [--courses-keyspace …] [--ops-keyspace …] [--replication "{…}"] [--only ops]`
 * Creates the keyspaces and tables idempotently. On a real Sunbird cluster run it with `--only ops`:
 * Sunbird's own tables already exist there.
 */
import { parseArgs } from 'node:util';
import { cassandraOptionsFrom, createCassandraClient } from '#shared/clients/cassandra.ts';
import { ConfigError, loadFlatConfig } from '#shared/config.ts';
import { type Keyspaces, migrate } from '#shared/schema.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      keyspace: { type: 'string' },
      'courses-keyspace': { type: 'string' },
      'ops-keyspace': { type: 'string' },
      'cassandra-host': { type: 'string' },
      'cassandra-port': { type: 'string' },
      replication: { type: 'string' },
      only: { type: 'string' },
    },
  });
  const cfg = loadFlatConfig({
    overrides: {
      'cassandra.keyspace': values.keyspace,
      'cassandra.coursesKeyspace': values['courses-keyspace'],
      'cassandra.opsKeyspace': values['ops-keyspace'],
      'cassandra.hosts': values['cassandra-host'],
      'cassandra.port': values['cassandra-port'],
    },
  });
  const only = values.only?.split(',').map((s) => s.trim()) as Array<keyof Keyspaces> | undefined;
  for (const part of only ?? []) {
    if (!['sunbird', 'courses', 'ops'].includes(part))
      throw new ConfigError(`--only expects sunbird, courses or ops`);
  }
  const client = createCassandraClient(cassandraOptionsFrom(cfg));
  try {
    const ks = await migrate(client, {
      keyspaces: {
        sunbird: cfg['cassandra.keyspace'],
        courses: cfg['cassandra.coursesKeyspace'],
        ops: cfg['cassandra.opsKeyspace'],
      },
      ...(values.replication ? { replication: values.replication } : {}),
      ...(only ? { only } : {}),
      onStatement: (cql) => console.log(`  ${cql}`),
    });
    const created = only ?? (['sunbird', 'courses', 'ops'] as const);
    console.log(`schema ready: ${created.map((part) => ks[part]).join(', ')}`);
  } finally {
    await client.shutdown();
  }
}

main().catch((err: unknown) => {
  console.error(`migrate: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
