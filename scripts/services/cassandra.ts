/**
 * Apache Cassandra 5.0, one node: `cassandra` (CQL on 127.0.0.1:9042, no authentication — what the tests
 * use) and, on demand, `cassandra-auth` (CQL on 127.0.0.1:9142, a second node of its own cluster with
 * PasswordAuthenticator and CassandraAuthorizer, as production clusters run), whose first start also
 * creates the login role `dataops_reader` without any permission: grant it only what a command needs
 * (`GRANT SELECT ON TABLE sunbird.user TO dataops_reader`) to check the tool runs with that alone.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import cassandra from 'cassandra-driver';
import { findJar, HOST, mavenJavaService, probeWith } from './common.ts';
import type { ServiceDefinition } from './types.ts';
import { VERSIONS } from './versions.ts';

export const CASSANDRA_PORT = 9042;
export const CASSANDRA_STORAGE_PORT = 7000;
/** SimpleSnitch puts the node in this data centre; clients need it as localDataCenter. */
export const CASSANDRA_LOCAL_DC = 'datacenter1';

/** The authenticating node (`cassandra-auth`). */
export const CASSANDRA_AUTH_PORT = 9142;
export const CASSANDRA_AUTH_STORAGE_PORT = 7100;
/** Cassandra's built-in superuser, created on a fresh node with this password (a local test node only). */
export const CASSANDRA_AUTH_SUPERUSER = { username: 'cassandra', password: 'cassandra' } as const;
/** The login role the profile creates, with no permission until one is granted. */
export const CASSANDRA_READER = { username: 'dataops_reader', password: 'dataops-reader-pw' } as const;

const version = VERSIONS.cassandra;

interface NodeSpec {
  cluster: string;
  cqlPort: number;
  storagePort: number;
  auth: boolean;
}

// cassandra.yaml for 5.0 rejects unknown keys, so keep to keys that exist. num_tokens 16 gives the
// single node 16 token ranges, so code that splits scans by token range is exercised for real.
function cassandraYaml(dir: string, node: NodeSpec): string {
  // Permissions and roles are cached for 2 s by default; a grant in a test must take effect at once.
  const auth = node.auth
    ? `authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
roles_validity: 0ms
permissions_validity: 0ms
credentials_validity: 0ms
`
    : '';
  return `cluster_name: ${node.cluster}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
num_tokens: 16
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${HOST}:${node.storagePort}"
listen_address: ${HOST}
rpc_address: ${HOST}
native_transport_port: ${node.cqlPort}
storage_port: ${node.storagePort}
data_file_directories:
  - ${dir}/data
commitlog_directory: ${dir}/commitlog
saved_caches_directory: ${dir}/saved_caches
hints_directory: ${dir}/hints
commitlog_sync: periodic
commitlog_sync_period: 10s
disk_access_mode: standard
auto_snapshot: false
${auth}`;
}

// Without a logback config Cassandra's jar defaults flood the log at DEBUG.
const LOGBACK_XML = `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
`;

// What Cassandra's conf/jvm17-server.options adds on JDK 17; without them startup fails on
// inaccessible JDK internals.
const JDK17_EXPORTS = [
  'java.base/jdk.internal.misc',
  'java.management.rmi/com.sun.jmx.remote.internal.rmi',
  'java.management/com.sun.jmx.remote.security',
  'java.rmi/sun.rmi.registry',
  'java.rmi/sun.rmi.server',
  'java.sql/java.sql',
  'java.base/java.lang.ref',
  'jdk.unsupported/sun.misc',
];
const JDK17_OPENS = [
  'java.base/java.lang.module',
  'java.base/jdk.internal.loader',
  'java.base/jdk.internal.ref',
  'java.base/jdk.internal.reflect',
  'java.base/jdk.internal.math',
  'java.base/jdk.internal.module',
  'java.base/jdk.internal.util.jar',
  'jdk.management/com.sun.management.internal',
  'java.base/sun.nio.ch',
  'java.base/java.io',
  'java.base/java.lang.reflect',
  'java.base/java.lang',
  'java.base/java.util',
  'java.base/java.nio',
];

/** A client of a local node (as the superuser on the authenticating one), for health checks and set-up. */
export function localNodeClient(port: number, auth = false): cassandra.Client {
  return new cassandra.Client({
    contactPoints: [`${HOST}:${port}`],
    localDataCenter: CASSANDRA_LOCAL_DC,
    socketOptions: { connectTimeout: 3000, readTimeout: 5000 },
    ...(auth
      ? {
          authProvider: new cassandra.auth.PlainTextAuthProvider(
            CASSANDRA_AUTH_SUPERUSER.username,
            CASSANDRA_AUTH_SUPERUSER.password,
          ),
        }
      : {}),
  });
}

/**
 * A login role with no permission but SELECT on `table` (keyspace.table), created when missing (an
 * existing role keeps its password: Cassandra limits how often one may change); run as a superuser. The
 * role may read that table and the system tables every driver reads, nothing else.
 */
export async function createReadOnlyRole(
  client: cassandra.Client,
  role: { username: string; password: string },
  table?: string,
): Promise<void> {
  if (!/^\w+$/.test(role.username) || (table && !/^\w+\.\w+$/.test(table)))
    throw new Error(`invalid role or table name: ${role.username} ${table ?? ''}`);
  // CQL takes no bind marker for a password: a string literal, quotes doubled.
  const password = `'${role.password.replaceAll("'", "''")}'`;
  await client.execute(
    `CREATE ROLE IF NOT EXISTS ${role.username} WITH LOGIN = true AND PASSWORD = ${password}`,
  );
  if (table) await client.execute(`GRANT SELECT ON TABLE ${table} TO ${role.username}`);
}

function cassandraNode(
  name: string,
  node: NodeSpec,
  extra: Pick<ServiceDefinition, 'onDemand' | 'verify'>,
): ServiceDefinition {
  return mavenJavaService({
    name,
    version,
    classpath: [{ groupId: 'org.apache.cassandra', artifactId: 'cassandra-all', version }],
    // Both nodes run from the same jars.
    cacheName: 'cassandra',
    ports: [
      { port: node.cqlPort, role: 'CQL' },
      { port: node.storagePort, role: 'storage' },
    ],
    // First start on 2 cores was ~5 s here, but CI machines under load can be far slower.
    startTimeoutMs: 240_000,
    stopTimeoutMs: 45_000,

    async configure(ctx, { lib, conf }) {
      await mkdir(join(ctx.dataDir, 'triggers'), { recursive: true });
      await writeFile(join(conf, 'cassandra.yaml'), cassandraYaml(ctx.dataDir, node));
      await writeFile(join(conf, 'logback.xml'), LOGBACK_XML);
      const jvm = [
        '-Xms1g',
        '-Xmx1g',
        '-XX:+ExitOnOutOfMemoryError',
        ...JDK17_EXPORTS.flatMap((m) => ['--add-exports', `${m}=ALL-UNNAMED`]),
        ...JDK17_OPENS.flatMap((m) => ['--add-opens', `${m}=ALL-UNNAMED`]),
        '-Djdk.attach.allowAttachSelf=true',
        '-Dio.netty.tryReflectionSetAccessible=true',
        // jamm measures object sizes for memtable accounting; Cassandra refuses to start without the agent.
        `-javaagent:${findJar(lib, 'jamm-')}`,
        `-Dcassandra.config=file://${join(conf, 'cassandra.yaml')}`,
        // Without "foreground" the daemon closes stdout/stderr, and its log would go nowhere.
        '-Dcassandra-foreground=yes',
        `-Dcassandra.storagedir=${ctx.dataDir}`,
        `-Dcassandra.triggers_dir=${join(ctx.dataDir, 'triggers')}`,
        '-Djava.net.preferIPv4Stack=true',
        '-Djna.nosys=true',
        `-Dlogback.configurationFile=${join(conf, 'logback.xml')}`,
        // Single node: don't wait for gossip to settle, and skip fsyncs of system tables (test data only).
        '-Dcassandra.skip_wait_for_gossip_to_settle=0',
        '-Dcassandra.unsafesystem=true',
        // A fresh node creates its default superuser after this delay (10 s by default).
        ...(node.auth ? ['-Dcassandra.superuser_setup_delay_ms=0'] : []),
      ];
      return { jvm, main: ['org.apache.cassandra.service.CassandraDaemon'] };
    },

    // Healthy once it answers CQL — on the authenticating node, once the superuser can log in.
    health: () =>
      probeWith(
        node.cqlPort,
        () => localNodeClient(node.cqlPort, node.auth),
        async (client) => {
          await client.connect();
          const rs = await client.execute('SELECT release_version FROM system.local');
          if (!rs.first()?.get('release_version')) throw new Error('system.local has no release_version');
        },
        (client) => client.shutdown(),
      ),
    ...extra,
  });
}

export const cassandraService: ServiceDefinition = cassandraNode(
  'cassandra',
  {
    cluster: 'sunbird-dataops-local',
    cqlPort: CASSANDRA_PORT,
    storagePort: CASSANDRA_STORAGE_PORT,
    auth: false,
  },
  {},
);

export const cassandraAuthService: ServiceDefinition = cassandraNode(
  'cassandra-auth',
  {
    cluster: 'sunbird-dataops-auth',
    cqlPort: CASSANDRA_AUTH_PORT,
    storagePort: CASSANDRA_AUTH_STORAGE_PORT,
    auth: true,
  },
  {
    onDemand: true,
    // After a fresh start: the reader role exists (idempotent, so a restarted node keeps it as it is).
    async verify() {
      const client = localNodeClient(CASSANDRA_AUTH_PORT, true);
      try {
        await createReadOnlyRole(client, CASSANDRA_READER);
      } finally {
        await client.shutdown();
      }
    },
  },
);
