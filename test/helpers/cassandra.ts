import { randomBytes } from 'node:crypto';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import { type Keyspaces, migrate } from '#shared/schema.ts';

export function testClient(): CassandraClient {
  return createCassandraClient({
    hosts: ['127.0.0.1'],
    port: 9042,
    localDataCenter: 'datacenter1',
    consistency: 'LOCAL_ONE',
    coreConnectionsPerHost: 2,
  });
}

/** Fresh keyspaces for one test file, so files can run in parallel and leave nothing shared behind. */
export async function isolatedKeyspaces(
  prefix: string,
  only: Array<keyof Keyspaces> = ['sunbird', 'courses', 'ops'],
): Promise<{ client: CassandraClient; ks: Keyspaces; drop: () => Promise<void> }> {
  const tag = `${prefix}_${randomBytes(3).toString('hex')}`;
  const client = testClient();
  const ks: Keyspaces = { sunbird: `${tag}_sb`, courses: `${tag}_co`, ops: `${tag}_ops` };
  await migrate(client, { keyspaces: ks, only });
  return {
    client,
    ks,
    drop: async () => {
      for (const part of only) await client.execute(`DROP KEYSPACE IF EXISTS ${ks[part]}`);
      await client.shutdown();
    },
  };
}
