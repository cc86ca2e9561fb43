/** Apache Cassandra 5.0, one node, CQL on 127.0.0.1:9042. */
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

const version = VERSIONS.cassandra;

// cassandra.yaml for 5.0 rejects unknown keys, so keep to keys that exist. num_tokens 16 gives the
// single node 16 token ranges, so code that splits scans by token range is exercised for real.
function cassandraYaml(dir: string): string {
  return `cluster_name: sunbird-dataops-local
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
num_tokens: 16
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${HOST}:${CASSANDRA_STORAGE_PORT}"
listen_address: ${HOST}
rpc_address: ${HOST}
native_transport_port: ${CASSANDRA_PORT}
storage_port: ${CASSANDRA_STORAGE_PORT}
data_file_directories:
  - ${dir}/data
commitlog_directory: ${dir}/commitlog
saved_caches_directory: ${dir}/saved_caches
hints_directory: ${dir}/hints
commitlog_sync: periodic
commitlog_sync_period: 10s
disk_access_mode: standard
auto_snapshot: false
`;
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

export const cassandraService: ServiceDefinition = mavenJavaService({
  name: 'cassandra',
  version,
  classpath: [{ groupId: 'org.apache.cassandra', artifactId: 'cassandra-all', version }],
  ports: [
    { port: CASSANDRA_PORT, role: 'CQL' },
    { port: CASSANDRA_STORAGE_PORT, role: 'storage' },
  ],
  // First start on 2 cores was ~5 s here, but CI machines under load can be far slower.
  startTimeoutMs: 240_000,
  stopTimeoutMs: 45_000,

  async configure(ctx, { lib, conf }) {
    await mkdir(join(ctx.dataDir, 'triggers'), { recursive: true });
    await writeFile(join(conf, 'cassandra.yaml'), cassandraYaml(ctx.dataDir));
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
    ];
    return { jvm, main: ['org.apache.cassandra.service.CassandraDaemon'] };
  },

  health: () =>
    probeWith(
      CASSANDRA_PORT,
      () =>
        new cassandra.Client({
          contactPoints: [`${HOST}:${CASSANDRA_PORT}`],
          localDataCenter: CASSANDRA_LOCAL_DC,
          socketOptions: { connectTimeout: 3000, readTimeout: 5000 },
        }),
      async (client) => {
        await client.connect();
        const rs = await client.execute('SELECT release_version FROM system.local');
        if (!rs.first()?.get('release_version')) throw new Error('system.local has no release_version');
      },
      (client) => client.shutdown(),
    ),
});
