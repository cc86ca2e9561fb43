/** The contract every local service module (`scripts/services/<name>.ts`) fulfils. */

export interface ServicePort {
  port: number;
  /** What the port is for, shown in `status` and in error messages ("CQL", "controller", …). */
  role: string;
}

/** Paths and output for one service, built by the manager from the project root and the cache. */
export interface ServiceContext {
  name: string;
  /** Absolute project root (the folder holding package.json). */
  root: string;
  /** `<root>/.services/data/<name>`: runtime data and generated config. Our processes' command lines
   * contain this path, which is how `down` recognises them as ours. */
  dataDir: string;
  /** `<root>/.services/logs/<name>.log`: stdout + stderr of the detached process. */
  logFile: string;
  /** `<root>/.services/run/<name>.pid`. */
  pidFile: string;
  /** `${SUNBIRD_DATAOPS_CACHE:-~/.cache/sunbird-dataops}`: downloads, outside git. */
  cacheRoot: string;
  /** One-line progress output ("fetching …"). */
  log: (line: string) => void;
}

export interface ServiceDefinition {
  name: string;
  /** The pinned version (from versions.ts); null for a service the machine provides. */
  version: string | null;
  ports: ServicePort[];
  /**
   * `managed`: we fetch, configure, start (detached, pid file) and stop it.
   * `external`: installed on the machine (postgres); we check it, may start it, never stop it.
   */
  kind: 'managed' | 'external';
  /** Started only when named (`up keycloak`), not by a plain `up`; `down`/`status`/`logs` include it. */
  onDemand?: boolean;
  /**
   * Services that must answer before this one is started (keycloak needs postgres). The manager brings
   * them up first, by name through the registry, so a service module never imports the manager.
   */
  dependsOn?: readonly string[];
  /** How long `up` waits for health after starting it. */
  startTimeoutMs: number;
  /** How long `down` waits after SIGTERM before SIGKILL (managed only). */
  stopTimeoutMs?: number;
  /** Make sure the binaries are in the cache (idempotent, fast when complete). */
  fetch?(ctx: ServiceContext): Promise<void>;
  /**
   * Write config, prepare storage and launch. Managed services launch with `launchDetached` and
   * return its pid; external ones return null.
   */
  start(ctx: ServiceContext): Promise<number | null>;
  /** Quick check that the service really answers through the project's client; throws if not. */
  health(ctx: ServiceContext): Promise<void>;
  /** Where its log is when it is not `ctx.logFile` (an external service's own log). */
  logFile?(ctx: ServiceContext): string | null;
  /** Deeper check run once after a fresh start (e.g. Kafka produce + consume); throws if not. */
  verify?(ctx: ServiceContext): Promise<void>;
}

/** An error the CLI prints as one line, exiting with code 2. */
export class ServiceError extends Error {
  override name = 'ServiceError';
}
