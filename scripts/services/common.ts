/** Helpers shared by the service modules and the manager: paths, processes, ports, Maven, Java. */
import { execFile, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { request } from 'undici';
import { sleep } from '#shared/core/time.ts';
import { type ServiceContext, type ServiceDefinition, ServiceError } from './types.ts';
import { VERSIONS } from './versions.ts';

export const HOST = '127.0.0.1';

/** The project root: two levels above this file (scripts/services/common.ts). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function cacheRoot(): string {
  return process.env.SUNBIRD_DATAOPS_CACHE || join(homedir(), '.cache', 'sunbird-dataops');
}

export function contextFor(name: string, log: (line: string) => void, root = PROJECT_ROOT): ServiceContext {
  const services = join(root, '.services');
  return {
    name,
    root,
    dataDir: join(services, 'data', name),
    logFile: join(services, 'logs', `${name}.log`),
    pidFile: join(services, 'run', `${name}.pid`),
    cacheRoot: cacheRoot(),
    log,
  };
}

// ---------------------------------------------------------------------------------------------
// Ports

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function isPortOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: HOST, port });
    const finish = (open: boolean) => {
      socket.destroy();
      done(open);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** GET `http://127.0.0.1:<port><path>` with bounded waits (fails fast when the port is closed). */
export async function httpGet(
  port: number,
  path: string,
  timeoutMs = 3000,
): Promise<{ status: number; text: string }> {
  await requirePortOpen(port);
  const res = await request(`http://${HOST}:${port}${path}`, {
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return { status: res.statusCode, text: await res.body.text() };
}

/** Throws (fast) when the port is closed, so health checks don't wait on client connect timeouts. */
export async function requirePortOpen(port: number): Promise<void> {
  if (!(await isPortOpen(port))) throw new Error(`nothing listens on ${HOST}:${port}`);
}

/** The pid listening on a TCP port, via `ss` (iproute2); null when unknown. */
export function portListenerPid(port: number): number | null {
  const out = spawnSync('ss', ['-H', '-ltnp', `sport = :${port}`], { encoding: 'utf8' });
  if (out.status !== 0 || !out.stdout) return null;
  const m = /pid=(\d+)/.exec(out.stdout);
  return m ? Number(m[1]) : null;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** The command line of a live process ('' when gone or a zombie). */
export function processCommandLine(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised comm (which may itself contain spaces or parentheses).
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return '';
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    // No /proc (macOS) or process gone: fall back to ps.
    const out = spawnSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
    return out.status === 0 ? out.stdout.trim() : '';
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return processCommandLine(pid) !== '';
}

/** A process is ours when its command line names this checkout's data dir for the service. */
export function isOurs(pid: number, ctx: ServiceContext): boolean {
  if (pid === process.pid) return false;
  const cmd = processCommandLine(pid);
  return cmd !== '' && cmd.includes(ctx.dataDir + '/') && /(^|\/)java /.test(cmd);
}

/** Every live java process of ours for this service (also those whose pid file was lost). */
export function findOurProcesses(ctx: ServiceContext): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => isOurs(pid, ctx));
}

export function readPidFile(ctx: ServiceContext): number | null {
  try {
    const pid = Number(readFileSync(ctx.pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The pid of our running instance: the pid file's if that process is ours, else one found in /proc. */
export function ourRunningPid(ctx: ServiceContext): number | null {
  const pid = readPidFile(ctx);
  if (pid !== null && isOurs(pid, ctx)) return pid;
  return findOurProcesses(ctx)[0] ?? null;
}

/**
 * Run `fn` holding `.services/run/<name>.lock`, so two `up`s at once (two terminals, the test setup
 * of parallel runs, or two calls in one process) never start the same service twice — which happened:
 * the loser's JVM can't bind and, for ElasticMQ, lingers without exiting. A lock whose holder is
 * dead is stale and taken over.
 */
export async function withServiceLock<T>(
  ctx: ServiceContext,
  waitMs: number,
  onWait: (holder: number) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const lockFile = ctx.pidFile.replace(/\.pid$/, '.lock');
  await mkdir(dirname(lockFile), { recursive: true });
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
    if (!holder || !isAlive(holder)) {
      await rm(lockFile, { force: true });
      continue;
    }
    if (!told) onWait(holder);
    told = true;
    if (Date.now() > deadline) {
      throw new ServiceError(`${ctx.name}: another process (pid ${holder}) holds ${lockFile} for too long`);
    }
    await sleep(500);
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}

const MAX_LOG_BYTES = 20 * 1024 * 1024;

/**
 * Start a process detached from this one (own session and process group, stdio to the log file,
 * unref'd) so it outlives the CLI, and record its pid.
 */
export async function launchDetached(
  ctx: ServiceContext,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  await mkdir(dirname(ctx.logFile), { recursive: true });
  await mkdir(dirname(ctx.pidFile), { recursive: true });
  if (existsSync(ctx.logFile) && statSync(ctx.logFile).size > MAX_LOG_BYTES) {
    await rename(ctx.logFile, ctx.logFile + '.1');
  }
  const fd = openSync(ctx.logFile, 'a');
  try {
    writeFileSync(
      fd,
      `\n----- ${new Date().toISOString()} starting ${ctx.name}: ${command} ${args.join(' ')}\n`,
    );
    const child = spawn(command, args, { cwd: ctx.dataDir, detached: true, stdio: ['ignore', fd, fd], env });
    const pid = await new Promise<number>((ok, fail) => {
      child.once('error', (err) => fail(new ServiceError(`cannot start ${ctx.name}: ${err.message}`)));
      child.once('spawn', () => ok(child.pid!));
    });
    child.unref();
    await writeFile(ctx.pidFile, `${pid}\n`);
    return pid;
  } finally {
    closeSync(fd);
  }
}

/** Run a command to completion, appending its output to the service log; throws with its last line. */
export function runLogged(ctx: ServiceContext, command: string, args: string[], what: string): Promise<void> {
  return new Promise((ok, fail) => {
    execFile(
      command,
      args,
      { cwd: ctx.dataDir, maxBuffer: 64 * 1024 * 1024 },
      async (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        await writeFile(ctx.logFile, `\n----- ${new Date().toISOString()} ${what}\n${output}`, { flag: 'a' });
        if (!err) return ok();
        const lines = output.split('\n').filter((l) => /error|exception/i.test(l));
        fail(
          new ServiceError(
            `${ctx.name}: ${what} failed: ${(lines[0] ?? err.message).trim()} (see ${ctx.logFile})`,
          ),
        );
      },
    );
  });
}

/** The last `lines` lines of a file ('' when missing); reads only the end of big files. */
export function tailFile(file: string, lines: number): string {
  let text: string;
  try {
    const size = statSync(file).size;
    const want = Math.min(size, Math.max(64 * 1024, lines * 400));
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(want);
      readSync(fd, buf, 0, want, size - want);
      text = buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
  return text
    .split('\n')
    .slice(-lines - 1)
    .join('\n')
    .trimEnd();
}

// ---------------------------------------------------------------------------------------------
// Tools: java and mvn

let javaChecked: Promise<number> | undefined;

/** Throws a one-line error unless a Java 17+ `java` is on PATH; resolves to its major version. */
export function requireJava(): Promise<number> {
  javaChecked ??= (async () => {
    const out = spawnSync('java', ['-version'], { encoding: 'utf8' });
    if (out.error)
      throw new ServiceError(
        'java not found on PATH: install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)',
      );
    const m = /version "(\d+)/.exec(out.stderr ?? '');
    const major = m ? Number(m[1]) : 0;
    if (major < 17) throw new ServiceError(`java ${major || '?'} found, the services need Java 17 or newer`);
    return major;
  })();
  return javaChecked;
}

function requireMaven(): void {
  const out = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (out.error)
    throw new ServiceError('mvn not found on PATH: install Maven 3.8+ (e.g. apt-get install maven)');
}

export interface MavenDependency {
  groupId: string;
  artifactId: string;
  version: string;
}

// Concurrent mvn runs share ~/.m2 and Maven 3.8 has no local-repository locking: run them one by one.
let mavenQueue: Promise<unknown> = Promise.resolve();

/** Runs `fn` after every Maven job queued before it (whatever their outcome). */
export function inMavenQueue<T>(fn: () => Promise<T>): Promise<T> {
  const result = mavenQueue.then(fn, fn);
  mavenQueue = result.catch(() => undefined);
  return result;
}

/**
 * Run a tool (mvn, unzip) to completion; on failure throw a one-line ServiceError naming `what` and
 * the tool's most telling line (Maven's first `[ERROR]`, else the first line mentioning an error).
 */
export function execTool(command: string, args: string[], what: string): Promise<void> {
  return new Promise((ok, fail) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return ok();
      const lines = stripVTControlCharacters(`${stdout}\n${stderr}`).split('\n');
      const line =
        lines.find((l) => l.startsWith('[ERROR]') && l.trim() !== '[ERROR]') ??
        lines.find((l) => /error/i.test(l)) ??
        err.message;
      fail(new ServiceError(`${what} failed: ${line.replace(/^\[ERROR\]\s*/, '').trim()}`));
    });
  });
}

/** The `mvn` arguments that run one goal of maven-dependency-plugin (batch mode, quiet). */
export function mavenDependencyGoal(goal: 'copy' | 'copy-dependencies', ...args: string[]): string[] {
  requireMaven();
  const plugin = `org.apache.maven.plugins:maven-dependency-plugin:${VERSIONS.mavenDependencyPlugin}`;
  return ['-B', '-q', `${plugin}:${goal}`, ...args];
}

/**
 * Copy the runtime classpath of `deps` from Maven Central into `<cache>/<name>-<version>/<folder>`
 * (`lib` unless told) and return that folder. A marker file records the exact dependency list; when it
 * matches, nothing runs. (Cassandra's binary tarball is not on Central — `apache-cassandra:tar.gz:bin`
 * does not resolve — so every JVM service is run from its jars with our own config.)
 */
export function fetchMavenClasspath(
  ctx: ServiceContext,
  version: string,
  deps: MavenDependency[],
  folder = 'lib',
): Promise<string> {
  const dir = join(ctx.cacheRoot, `${ctx.name}-${version}`);
  const lib = join(dir, folder);
  const suffix = folder === 'lib' ? '' : `-${folder}`;
  const marker = join(dir, `.complete${suffix}`);
  const wanted = JSON.stringify(deps);
  return inMavenQueue(async () => {
    if (existsSync(marker) && (await readFile(marker, 'utf8')) === wanted) return lib;
    ctx.log(`fetching ${ctx.name} ${version}${suffix ? ` (${folder})` : ''} from Maven Central…`);
    await mkdir(dir, { recursive: true });
    const pom = join(dir, `pom${suffix}.xml`);
    const depXml = deps
      .map(
        (d) =>
          `    <dependency><groupId>${d.groupId}</groupId><artifactId>${d.artifactId}</artifactId>` +
          `<version>${d.version}</version></dependency>`,
      )
      .join('\n');
    await writeFile(
      pom,
      `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.sunbird-dataops</groupId>
  <artifactId>fetch-${ctx.name}${suffix}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
${depXml}
  </dependencies>
</project>
`,
    );
    const tmp = `${lib}.partial`;
    await rm(tmp, { recursive: true, force: true });
    await execTool(
      'mvn',
      [
        '-f',
        pom,
        ...mavenDependencyGoal('copy-dependencies', `-DoutputDirectory=${tmp}`, '-DincludeScope=runtime'),
      ],
      `fetching ${ctx.name} ${version}`,
    );
    await rm(lib, { recursive: true, force: true });
    await rename(tmp, lib);
    await writeFile(marker, wanted);
    return lib;
  });
}

/** The one jar in `lib` whose file name starts with `prefix` (e.g. the jamm agent). */
export function findJar(lib: string, prefix: string): string {
  const jar = readdirSync(lib).find((f) => f.startsWith(prefix) && f.endsWith('.jar'));
  if (!jar) throw new ServiceError(`no ${prefix}*.jar in ${lib}: delete that folder so it is fetched again`);
  return join(lib, jar);
}

// ---------------------------------------------------------------------------------------------
// Health checks and JVM services from Maven Central

/**
 * A health check through a real client: fail fast when the port is closed, else open the client, run
 * the probe and always close the client again.
 */
export async function probeWith<C>(
  port: number,
  open: () => C,
  probe: (client: C) => Promise<unknown>,
  close: (client: C) => unknown,
): Promise<void> {
  await requirePortOpen(port);
  const client = open();
  try {
    await probe(client);
  } finally {
    await Promise.resolve(close(client)).catch(() => undefined);
  }
}

/** How a JVM service is launched: `java <jvm> -cp <lib>/* <main>`. */
export interface JavaLaunch {
  jvm: string[];
  /** The main class, then its arguments. */
  main: string[];
}

/** The java argument list for a launch: `<jvm> -cp <lib>/* <main>`. */
export function javaArgs(launch: JavaLaunch, lib: string): string[] {
  return [...launch.jvm, '-cp', `${lib}/*`, ...launch.main];
}

export interface MavenJavaServiceSpec
  extends Omit<ServiceDefinition, 'kind' | 'version' | 'fetch' | 'start'> {
  version: string;
  /** The runtime classpath, copied from Maven Central into the cache by `fetchMavenClasspath`. */
  classpath: MavenDependency[];
  /** Share another service's cached classpath (a variant of it, e.g. `cassandra-auth` of `cassandra`). */
  cacheName?: string;
  /**
   * Write the configuration under `conf` (`<dataDir>/conf`, already created), run any one-off set-up
   * (Kafka formats its storage) and say how to launch.
   */
  configure(ctx: ServiceContext, dirs: { lib: string; conf: string }): Promise<JavaLaunch>;
}

/**
 * A managed service that runs from its Maven Central jars on the machine's Java 17+ (Cassandra, Kafka,
 * ElasticMQ): `fetch` copies the classpath into the cache, `start` configures and launches it detached.
 */
export function mavenJavaService(spec: MavenJavaServiceSpec): ServiceDefinition {
  const { classpath, configure, cacheName, ...definition } = spec;
  const libDir = (ctx: ServiceContext) =>
    fetchMavenClasspath(cacheName ? { ...ctx, name: cacheName } : ctx, spec.version, classpath);
  return {
    ...definition,
    kind: 'managed',
    async fetch(ctx) {
      await libDir(ctx);
    },
    async start(ctx) {
      await requireJava();
      const lib = await libDir(ctx);
      const conf = join(ctx.dataDir, 'conf');
      await mkdir(conf, { recursive: true });
      const launch = await configure(ctx, { lib, conf });
      return launchDetached(ctx, 'java', javaArgs(launch, lib));
    },
  };
}
