/**
 * The programmatic API behind `npm run services`: bring services up (idempotently, in parallel),
 * stop the ones we started, report status, read logs. The CLI (scripts/services.ts) and the test
 * suite's global setup both use it.
 */
import { rm, writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { sleep } from '#shared/core/time.ts';
import {
  contextFor,
  findOurProcesses,
  isAlive,
  isOurs,
  isPortOpen,
  ourRunningPid,
  portListenerPid,
  processCommandLine,
  readPidFile,
  tailFile,
  withServiceLock,
} from './common.ts';
import { selectServices } from './registry.ts';
import { type ServiceContext, type ServiceDefinition, ServiceError, type ServicePort } from './types.ts';

export interface UpOptions {
  /** Where one-line progress goes (default: console.log). */
  log?: (line: string) => void;
  /** Also print what is being waited on while services start (the CLI turns this on). */
  verbose?: boolean;
}

export interface UpResult {
  name: string;
  /**
   * `already-running`: it was healthy (or ours and starting) and nothing was started;
   * `started`: this call started it; `foreign`: healthy, but served by a process we did not start
   * (another checkout's, or a system one) — used as it is, never stopped by `down`.
   */
  state: 'already-running' | 'started' | 'foreign';
  pid: number | null;
  ms: number;
}

export interface DownResult {
  name: string;
  /** `not-managed`: an external service (postgres), never stopped. */
  state: 'stopped' | 'not-running' | 'not-managed';
  pids: number[];
}

export type Health = 'healthy' | 'healthy (not ours)' | 'starting' | 'down' | 'foreign process on port';

export interface StatusRow {
  name: string;
  version: string | null;
  ports: ServicePort[];
  pid: number | null;
  health: Health;
  detail: string;
  /** Started only when named (`up <name>`), so "down" is its normal state. */
  onDemand: boolean;
}

const HEALTH_CALL_TIMEOUT_MS = 10_000;

/** Runs the service's health check, bounded in time; returns null when healthy, else the reason. */
async function healthError(def: ServiceDefinition, ctx: ServiceContext): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      def.health(ctx),
      new Promise((_, fail) => {
        timer = setTimeout(() => fail(new Error('health check timed out')), HEALTH_CALL_TIMEOUT_MS);
      }),
    ]);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message || err.name : String(err);
  } finally {
    clearTimeout(timer);
  }
}

/** A path relative to the working directory when it is inside it (shorter messages), else absolute. */
function rel(path: string): string {
  const r = relative(process.cwd(), path);
  return r && !r.startsWith('..') ? r : path;
}

/** The most telling line of a log's tail: the last ERROR / Exception line, else the last line. */
function lastErrorLine(file: string): string {
  const lines = tailFile(file, 200)
    .split('\n')
    .filter((l) => l.trim() !== '');
  const error = lines.findLast((l) => /\bERROR\b|Exception|^Error/.test(l));
  return (error ?? lines.at(-1) ?? '').trim().slice(0, 300);
}

/** Tracks what `up` is waiting on, so the CLI can say which service holds it up. */
class WaitBoard {
  readonly waiting = new Map<string, { port: number; since: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(log: (line: string) => void, verbose: boolean) {
    if (!verbose) return;
    this.#timer = setInterval(() => {
      if (this.waiting.size === 0) return;
      const now = Date.now();
      const list = [...this.waiting].map(
        ([name, w]) => `${name} (:${w.port}, ${Math.round((now - w.since) / 1000)} s)`,
      );
      log(`  still waiting for ${list.join(', ')}…`);
    }, 10_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

async function waitHealthy(
  def: ServiceDefinition,
  ctx: ServiceContext,
  pid: number | null,
  board: WaitBoard,
): Promise<void> {
  const since = Date.now();
  const deadline = since + def.startTimeoutMs;
  board.waiting.set(def.name, { port: def.ports[0]!.port, since });
  try {
    let reason: string | null = 'not checked yet';
    while (Date.now() < deadline) {
      // Checked twice, a moment apart: a process that is switching user and exec'ing (setpriv → java)
      // can look gone to a single /proc read.
      if (pid !== null && !isAlive(pid) && !(await aliveAfter(pid, 500))) {
        throw new ServiceError(
          `${def.name} exited during startup: ${lastErrorLine(ctx.logFile)} (see ${rel(ctx.logFile)})`,
        );
      }
      reason = await healthError(def, ctx);
      if (reason === null) {
        // Healthy — but make sure it is the process we just launched that answers, not a rival.
        const listener = pid === null ? null : portListenerPid(def.ports[0]!.port);
        if (pid !== null && listener !== null && !isOurs(listener, ctx)) {
          signal(pid, 'SIGTERM');
          throw new ServiceError(
            `port ${def.ports[0]!.port} (${def.name}) was taken by another process (pid ${listener}) while ${def.name} started`,
          );
        }
        return;
      }
      await sleep(1000);
    }
    throw new ServiceError(
      `${def.name} did not become healthy within ${def.startTimeoutMs / 1000} s (${reason}); see ${rel(def.logFile?.(ctx) ?? ctx.logFile)}`,
    );
  } finally {
    board.waiting.delete(def.name);
  }
}

async function aliveAfter(pid: number, ms: number): Promise<boolean> {
  await sleep(ms);
  return isAlive(pid);
}

/** Fails with one line naming the port and service when a port we need is taken by someone else. */
async function requireFreePorts(def: ServiceDefinition): Promise<void> {
  for (const { port, role } of def.ports) {
    if (!(await isPortOpen(port))) continue;
    const holder = portListenerPid(port);
    const who = holder === null ? '' : ` (pid ${holder}: ${processCommandLine(holder).slice(0, 80)})`;
    throw new ServiceError(
      `port ${port} (${def.name} ${role}) is held by a foreign process${who}: stop it or free the port`,
    );
  }
}

async function ensureOne(
  def: ServiceDefinition,
  opts: Required<UpOptions>,
  board: WaitBoard,
): Promise<UpResult> {
  const t0 = Date.now();
  const ctx = contextFor(def.name, opts.log);
  const done = (state: UpResult['state'], pid: number | null): UpResult => ({
    name: def.name,
    state,
    pid,
    ms: Date.now() - t0,
  });
  const healthy = (await healthError(def, ctx)) === null;

  if (def.kind === 'external') {
    if (healthy) return done('already-running', portListenerPid(def.ports[0]!.port));
    opts.log(`starting ${def.name} (installed on this machine)…`);
    await def.start(ctx);
    await waitHealthy(def, ctx, null, board);
    opts.log(`started ${def.name} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return done('started', portListenerPid(def.ports[0]!.port));
  }

  if (healthy) {
    const ours = ourRunningPid(ctx);
    if (ours !== null) {
      if (readPidFile(ctx) !== ours) await writeFile(ctx.pidFile, `${ours}\n`).catch(() => undefined);
      return done('already-running', ours);
    }
    const holder = portListenerPid(def.ports[0]!.port);
    opts.log(
      `${def.name}: ${def.ports[0]!.port} is served by a process we did not start${holder ? ` (pid ${holder})` : ''}; using it`,
    );
    return done('foreign', holder);
  }

  const lockWait = def.startTimeoutMs + 120_000;
  const onWait = (holder: number) =>
    opts.log(`${def.name}: another 'services up' (pid ${holder}) is starting it, waiting…`);
  return withServiceLock(ctx, lockWait, onWait, async () => {
    // Under the lock, look again: whoever held it may have just brought the service up.
    if ((await healthError(def, ctx)) === null) {
      return done(ourRunningPid(ctx) !== null ? 'already-running' : 'foreign', ourRunningPid(ctx));
    }
    const ours = ourRunningPid(ctx);
    if (ours !== null) {
      // Ours but not answering yet: an earlier `up` started it and it is still starting.
      if (opts.verbose) opts.log(`waiting for ${def.name} (pid ${ours}, started earlier)…`);
      await waitHealthy(def, ctx, ours, board);
      return done('already-running', ours);
    }

    if (def.dependsOn?.length) await ensureServices(def.dependsOn, { log: opts.log });
    await requireFreePorts(def);
    await rm(ctx.pidFile, { force: true }); // stale: that process is gone or no longer ours
    await def.fetch?.(ctx);
    const label = def.version ? `${def.name} ${def.version}` : def.name;
    if (opts.verbose) opts.log(`starting ${label} (log: ${rel(ctx.logFile)})…`);
    const pid = await def.start(ctx);
    await waitHealthy(def, ctx, pid, board);
    if (def.verify) {
      try {
        await def.verify(ctx);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        throw new ServiceError(
          `${def.name} answers but its self-check failed: ${msg} (see ${rel(ctx.logFile)})`,
        );
      }
    }
    opts.log(`started ${label} in ${((Date.now() - t0) / 1000).toFixed(1)} s (pid ${pid})`);
    return done('started', pid);
  });
}

/** Rejects with one ServiceError whose message joins every failure, after all tasks have settled. */
async function settleAll<T>(tasks: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  if (errors.length > 0) {
    if (errors.length === 1 && errors[0] instanceof Error) throw errors[0];
    throw new ServiceError(errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; '));
  }
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * Make sure the named services (all when empty) are up and answering through the project's own
 * clients; start whatever is not, in parallel, and resolve once every one is healthy. Idempotent:
 * when all are healthy already it only checks (a second or two) and starts nothing.
 * Prints one line per service it fetches or starts. Rejects with a ServiceError on failure.
 */
export async function ensureServices(
  names: readonly string[] = [],
  options: UpOptions = {},
): Promise<UpResult[]> {
  const opts: Required<UpOptions> = { log: options.log ?? console.log, verbose: options.verbose ?? false };
  const defs = selectServices(names).filter((def) => names.length > 0 || !def.onDemand);
  const board = new WaitBoard(opts.log, opts.verbose);
  try {
    return await settleAll(defs.map((def) => ensureOne(def, opts, board)));
  } finally {
    board.stop();
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    // Our processes lead their own process group (spawned detached): signal the whole group.
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(250);
    alive = alive.filter(isAlive);
  }
  return alive;
}

async function stopOne(def: ServiceDefinition, log: (line: string) => void): Promise<DownResult> {
  if (def.kind === 'external') return { name: def.name, state: 'not-managed', pids: [] };
  const ctx = contextFor(def.name, log);
  const onWait = (holder: number) => log(`${def.name}: waiting for pid ${holder} to finish starting it…`);
  return withServiceLock(ctx, def.startTimeoutMs + 120_000, onWait, async () => {
    const fromFile = readPidFile(ctx);
    const pids = [
      ...new Set([
        ...(fromFile !== null && isOurs(fromFile, ctx) ? [fromFile] : []),
        ...findOurProcesses(ctx),
      ]),
    ];
    if (pids.length === 0) {
      await rm(ctx.pidFile, { force: true });
      return { name: def.name, state: 'not-running', pids: [] };
    }
    for (const pid of pids) signal(pid, 'SIGTERM');
    let alive = await waitGone(pids, def.stopTimeoutMs ?? 30_000);
    if (alive.length > 0) {
      log(`${def.name}: still running after SIGTERM, sending SIGKILL to ${alive.join(', ')}`);
      for (const pid of alive) signal(pid, 'SIGKILL');
      alive = await waitGone(alive, 10_000);
      if (alive.length > 0) throw new ServiceError(`${def.name}: pid ${alive.join(', ')} survived SIGKILL`);
    }
    await rm(ctx.pidFile, { force: true });
    log(`stopped ${def.name} (pid ${pids.join(', ')})`);
    return { name: def.name, state: 'stopped', pids };
  });
}

/**
 * Stop the named services (all when empty) — only processes we started: found through our pid file
 * or by their command line naming this checkout's `.services/data/<name>`. SIGTERM, then SIGKILL after
 * the service's stop timeout. External services (postgres) are never stopped.
 */
export async function stopServices(
  names: readonly string[] = [],
  options: { log?: (line: string) => void } = {},
): Promise<DownResult[]> {
  const log = options.log ?? console.log;
  return settleAll(selectServices(names).map((def) => stopOne(def, log)));
}

async function statusOne(def: ServiceDefinition): Promise<StatusRow> {
  const ctx = contextFor(def.name, () => undefined);
  const reason = await healthError(def, ctx);
  const ours = def.kind === 'managed' ? ourRunningPid(ctx) : null;
  const listener = portListenerPid(def.ports[0]!.port);
  const row = {
    name: def.name,
    version: def.version,
    ports: def.ports,
    pid: ours ?? listener,
    onDemand: def.onDemand ?? false,
  };
  if (reason === null) {
    const foreign = def.kind === 'managed' && ours === null;
    return { ...row, health: foreign ? 'healthy (not ours)' : 'healthy', detail: '' };
  }
  if (ours !== null) return { ...row, health: 'starting', detail: reason };
  for (const { port } of def.ports) {
    if (await isPortOpen(port)) {
      const holder = portListenerPid(port);
      return { ...row, pid: holder, health: 'foreign process on port', detail: `port ${port}` };
    }
  }
  return { ...row, health: 'down', detail: '' };
}

/** Health of the named services (all when empty), checked in parallel. */
export function serviceStatus(names: readonly string[] = []): Promise<StatusRow[]> {
  return Promise.all(selectServices(names).map(statusOne));
}

/** The last `lines` lines of each named service's log (all when empty), with a header per service. */
export function serviceLogs(names: readonly string[] = [], lines = 50): string {
  return selectServices(names)
    .map((def) => {
      const ctx = contextFor(def.name, () => undefined);
      const file = def.logFile?.(ctx) ?? ctx.logFile;
      if (file === null) return `==> ${def.name}: no log <==`;
      const text = tailFile(file, lines);
      return `==> ${rel(file)} <==\n${text || '(empty or missing)'}`;
    })
    .join('\n\n');
}
