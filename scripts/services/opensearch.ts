/**
 * OpenSearch 2.19, one node: REST on 127.0.0.1:9200 (transport 9300), where the Sync API stand-in
 * indexes users and organisations as Sunbird's userorg-service does. On demand only (`up opensearch`).
 *
 * Maven Central has no OpenSearch distribution, but it has the server and its modules, so the node is
 * laid out here as the distribution would be, under `.services/data/opensearch/`:
 *   lib/                       org.opensearch:opensearch + dependencies, log4j-core, the plugin classloader
 *   modules/transport-netty4/  the HTTP and transport layer (+ netty), with a descriptor and policy we write
 *   modules/analysis-common/   language analyzers, asciifolding, … (with a descriptor we write)
 *   config/ data/ logs/ tmp/   written by the node; bin/ and plugins/ must exist (empty)
 * The jars are hard links into the download cache (copies across file systems). The node refuses to
 * run as root, so as root it is launched as nobody (uid 65534) through `setpriv`, which keeps the pid.
 * Started ≈ 7–16 s here; RSS ≈ 300 MB idle with the 512 MB heap.
 */
import { chown, copyFile, link, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import {
  fetchMavenClasspath,
  HOST,
  httpGet,
  javaArgs,
  launchDetached,
  type MavenDependency,
  requireJava,
} from './common.ts';
import { type ServiceContext, type ServiceDefinition, ServiceError } from './types.ts';
import { VERSIONS } from './versions.ts';

export const OPENSEARCH_PORT = 9200;
export const OPENSEARCH_TRANSPORT_PORT = 9300;
export const OPENSEARCH_URL = `http://${HOST}:${OPENSEARCH_PORT}`;

const version = VERSIONS.opensearch;
/** nobody / nogroup on Debian: who the node runs as when we are root. */
const UNPRIVILEGED_ID = 65534;

const SERVER_CLASSPATH: MavenDependency[] = [
  { groupId: 'org.opensearch', artifactId: 'opensearch', version },
  // Optional in the server's pom, but the node logs through it and does not start without it.
  { groupId: 'org.apache.logging.log4j', artifactId: 'log4j-core', version: VERSIONS.opensearchLog4j },
  {
    groupId: 'org.opensearch',
    artifactId: 'opensearch-plugin-classloader',
    version: VERSIONS.opensearchPluginClassloader,
  },
];

// What netty needs under the security manager (as the distribution's own policy for this module grants).
const NETTY_POLICY = `grant {
  permission java.io.FilePermission "/proc/sys/net/core/somaxconn", "read";
  permission java.net.SocketPermission "*", "accept,connect";
  permission java.lang.RuntimePermission "setContextClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
  permission java.util.PropertyPermission "sun.nio.ch.bugLevel", "write";
};
`;

interface NodeModule {
  name: string;
  artifactId: string;
  classname: string;
  policy?: string;
}

const MODULES: readonly NodeModule[] = [
  {
    name: 'transport-netty4',
    artifactId: 'transport-netty4-client',
    classname: 'org.opensearch.transport.Netty4Plugin',
    policy: NETTY_POLICY,
  },
  {
    name: 'analysis-common',
    artifactId: 'analysis-common',
    classname: 'org.opensearch.analysis.common.CommonAnalysisPlugin',
  },
];

function descriptor(m: NodeModule): string {
  return `name=${m.name}
description=${m.name} module of OpenSearch ${version}
version=${version}
opensearch.version=${version}
java.version=11
classname=${m.classname}
extended.plugins=
has.native.controller=false
`;
}

function opensearchYml(home: string): string {
  return `cluster.name: sunbird-dataops-local
node.name: sunbird-dataops-local
discovery.type: single-node
network.host: ${HOST}
http.port: ${OPENSEARCH_PORT}
transport.port: ${OPENSEARCH_TRANSPORT_PORT}
path.data: ${join(home, 'data')}
path.logs: ${join(home, 'logs')}
# A nearly full development disk must not turn the indices read-only or leave shards unassigned.
cluster.routing.allocation.disk.threshold_enabled: false
`;
}

// Everything to stdout, which launchDetached sends to .services/logs/opensearch.log.
const LOG4J2_PROPERTIES = `status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
`;

/** The server classpath and each module's jars in the download cache. */
async function fetchAll(ctx: ServiceContext): Promise<{ lib: string; modules: Map<string, string> }> {
  const lib = await fetchMavenClasspath(ctx, version, SERVER_CLASSPATH);
  const modules = new Map<string, string>();
  for (const m of MODULES) {
    const deps = [{ groupId: 'org.opensearch.plugin', artifactId: m.artifactId, version }];
    modules.set(m.name, await fetchMavenClasspath(ctx, version, deps, `module-${m.name}`));
  }
  return { lib, modules };
}

/** Make `to` hold exactly the jars of `from` (hard links; copies when linking is not possible). */
async function mirrorJars(from: string, to: string): Promise<void> {
  const jars = (await readdir(from)).filter((f) => f.endsWith('.jar')).sort();
  const marker = join(to, '.jars');
  if ((await readFile(marker, 'utf8').catch(() => '')) === jars.join('\n')) return;
  await rm(to, { recursive: true, force: true });
  await mkdir(to, { recursive: true });
  for (const jar of jars) {
    await link(join(from, jar), join(to, jar)).catch(() => copyFile(join(from, jar), join(to, jar)));
  }
  await writeFile(marker, jars.join('\n'));
}

/** Nobody must be able to walk down to the node's home, or it dies on its first file access. */
async function requireReachable(home: string): Promise<void> {
  for (let dir = home; dir !== dirname(dir); dir = dirname(dir)) {
    const mode = (await stat(dir).catch(() => null))?.mode;
    if (mode !== undefined && (mode & 0o001) === 0) {
      throw new ServiceError(
        `opensearch runs as uid ${UNPRIVILEGED_ID} (it refuses root), which cannot enter ${dir}: chmod o+x it or use a checkout outside it`,
      );
    }
  }
}

/** Lays the node out under `home` (see the file comment) and returns the java arguments. */
async function layOut(ctx: ServiceContext, home: string, asRoot: boolean): Promise<string[]> {
  const { lib, modules } = await fetchAll(ctx);
  await mirrorJars(lib, join(home, 'lib'));
  for (const m of MODULES) {
    const dir = join(home, 'modules', m.name);
    await mirrorJars(modules.get(m.name)!, dir);
    await writeFile(join(dir, 'plugin-descriptor.properties'), descriptor(m));
    if (m.policy) await writeFile(join(dir, 'plugin-security.policy'), m.policy);
  }
  const writable = ['config', 'data', 'logs', 'tmp'].map((d) => join(home, d));
  for (const dir of [join(home, 'bin'), join(home, 'plugins'), ...writable])
    await mkdir(dir, { recursive: true });
  const conf = join(home, 'config');
  await writeFile(join(conf, 'opensearch.yml'), opensearchYml(home));
  await writeFile(join(conf, 'log4j2.properties'), LOG4J2_PROPERTIES);
  if (asRoot) {
    // The node writes its keystore into config/; data, logs and tmp are its own.
    const files = (await readdir(conf)).map((f) => join(conf, f));
    for (const path of [...writable, ...files]) await chown(path, UNPRIVILEGED_ID, UNPRIVILEGED_ID);
  }
  const jvm = [
    '-Xms512m',
    '-Xmx512m',
    '-XX:+ExitOnOutOfMemoryError',
    // 2.19 installs its own security manager; Java 17–23 allow that only when asked.
    '-Djava.security.manager=allow',
    '-Dfile.encoding=UTF-8',
    // As the distribution's launcher sets them: log4j's JMX beans are refused by the security manager
    // (an ERROR line on every start), and the node stops log4j itself.
    '-Dlog4j2.disable.jmx=true',
    '-Dlog4j.shutdownHookEnabled=false',
    `-Dopensearch.path.home=${home}`,
    `-Dopensearch.path.conf=${conf}`,
    '-Dopensearch.distribution.type=tar',
    '-Dopensearch.bundled_jdk=false',
    `-Djava.io.tmpdir=${join(home, 'tmp')}`,
  ];
  return javaArgs({ jvm, main: ['org.opensearch.bootstrap.OpenSearch'] }, join(home, 'lib'));
}

/** One JSON call to the local node with bounded waits; the status and parsed body. */
async function call(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown) {
  const res = await request(`${OPENSEARCH_URL}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export const opensearchService: ServiceDefinition = {
  name: 'opensearch',
  version,
  ports: [
    { port: OPENSEARCH_PORT, role: 'REST' },
    { port: OPENSEARCH_TRANSPORT_PORT, role: 'transport' },
  ],
  kind: 'managed',
  onDemand: true,
  startTimeoutMs: 180_000,
  stopTimeoutMs: 30_000,

  async fetch(ctx) {
    await fetchAll(ctx);
  },

  async start(ctx) {
    const major = await requireJava();
    if (major >= 24) {
      throw new ServiceError(
        `opensearch ${version} needs Java 17–23 (it uses the security manager, which Java 24 removed); java ${major} found`,
      );
    }
    const asRoot = process.getuid?.() === 0;
    if (asRoot) await requireReachable(ctx.dataDir);
    const args = await layOut(ctx, ctx.dataDir, asRoot);
    if (!asRoot) return launchDetached(ctx, 'java', args);
    const id = String(UNPRIVILEGED_ID);
    return launchDetached(ctx, 'setpriv', [
      `--reuid=${id}`,
      `--regid=${id}`,
      '--clear-groups',
      'java',
      ...args,
    ]);
  },

  async health() {
    const { status, text } = await httpGet(
      OPENSEARCH_PORT,
      '/_cluster/health?wait_for_status=yellow&timeout=2s',
      5000,
    );
    const health = status === 200 ? (JSON.parse(text) as { status?: string }).status : undefined;
    if (health !== 'yellow' && health !== 'green')
      throw new Error(`cluster health → ${status} ${health ?? ''}`);
  },

  // After a fresh start: an index with an analyzer from analysis-common takes a document and finds it.
  async verify() {
    const index = `sunbird-dataops-selfcheck-${Date.now()}`;
    const settings = {
      settings: {
        number_of_shards: 1,
        number_of_replicas: 0,
        analysis: { analyzer: { folded: { tokenizer: 'standard', filter: ['lowercase', 'asciifolding'] } } },
      },
      mappings: { properties: { name: { type: 'text', analyzer: 'folded' } } },
    };
    try {
      const created = await call('PUT', `/${index}`, settings);
      if (created.status !== 200) throw new Error(`creating an index → ${created.status}`);
      const put = await call('PUT', `/${index}/_doc/1?refresh=true`, { name: 'Ångström' });
      if (put.status !== 201) throw new Error(`indexing a document → ${put.status}`);
      const found = await call('POST', `/${index}/_count`, { query: { match: { name: 'angstrom' } } });
      if (found.json.count !== 1) throw new Error(`an asciifolded search found ${String(found.json.count)}`);
    } finally {
      await call('DELETE', `/${index}`).catch(() => undefined);
    }
  },
};
