import { type Command, Option } from 'commander';
import { cassandraError, cassandraOptionsFrom } from '#shared/clients/cassandra.ts';
import {
  type FlatConfig,
  loadFlatConfig,
  parseContextParams,
  SETTINGS,
  type SettingKey,
} from '#shared/config.ts';
import { BadInputError, EXIT, exitCodeOf, oneLine } from '#shared/core/errors.ts';
import { scrubString } from '#shared/redact.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

export { EXIT };

export class UsageError extends BadInputError {
  override name = 'UsageError';
}

/** Setting groups shared by the commands (the order is the order of `--help`). */
export const CASSANDRA_CONNECTION: SettingKey[] = [
  'cassandra.hosts',
  'cassandra.port',
  'cassandra.username',
  'cassandra.password',
  'cassandra.localDataCenter',
  'cassandra.tls',
];
/** What a sync of ids needs: the original job's parameters, Cassandra and the ledger. */
export const SYNC_CORE: SettingKey[] = [
  'syncApi.endpoint',
  'syncApi.apiKey',
  'sync.blockSize',
  'sync.sleepMs',
  'sync.idFile',
  'sync.dryRun',
  'sync.verify',
  'syncApi.maxRetries',
  'syncApi.timeoutMs',
  ...CASSANDRA_CONNECTION,
  'cassandra.consistency',
  'cassandra.keyspace',
  'cassandra.opsKeyspace',
];

/** Adds one option per setting, named by its flag; booleans also get `--no-…`. */
export function addSettingOptions(cmd: Command, keys: SettingKey[]): Command {
  for (const key of keys) {
    const def = SETTINGS[key];
    const isBool = def.default === 'true' || def.default === 'false';
    const original = 'original' in def ? ` [${def.original}]` : '';
    const opt = new Option(`${def.flag} ${isBool ? '[bool]' : '<value>'}`, `${def.description}${original}`);
    cmd.addOption(opt);
    if (isBool) cmd.addOption(new Option(`--no-${def.flag.slice(2)}`).hideHelp());
  }
  cmd.option(
    '--context_param <name=value>',
    'original Talend parameter, e.g. dry_run=false (repeatable)',
    collect,
    [],
  );
  cmd.option('--verbose', 'on an error, also print its stack and causes (as LOG_LEVEL=debug does)');
  return cmd;
}

/** `--verbose` given, or debug logging asked for: errors then show their stack. */
let verbose = false;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function camel(flag: string): string {
  return flag.replace(/^--/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}

/** Configuration from the environment, `--context_param` pairs, then explicit flags (highest). */
export function configFromOptions(opts: Record<string, unknown>, keys: SettingKey[]): FlatConfig {
  verbose ||= opts.verbose === true || /^debug$/i.test(process.env.LOG_LEVEL ?? '');
  const overrides: Record<string, unknown> = parseContextParams(
    (opts.context_param as string[] | undefined) ?? [],
  );
  for (const key of keys) {
    const v = opts[camel(SETTINGS[key].flag)];
    if (v !== undefined) overrides[key] = v;
  }
  const cfg = loadFlatConfig({ overrides });
  verbose ||= cfg['log.level'] === 'DEBUG';
  return cfg;
}

export function fail(message: string, code: number = EXIT.badInput): never {
  process.stderr.write(`sunbird-dataops: ${message}\n`);
  process.exit(code);
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** The stack of an error and of each of its causes (what `--verbose` adds to the one line). */
export function errorDetail(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    parts.push(e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return scrubString(parts.join('\ncaused by: '));
}

/**
 * One line on stderr for an error (after `prefix`), and the exit code its kind calls for; with
 * `--verbose` (or debug logging) the stack and causes come first.
 */
export function failWith(err: unknown, prefix = ''): never {
  if (verbose) process.stderr.write(`${errorDetail(err)}\n`);
  fail(`${prefix}${oneLine(err)}`, exitCodeOf(err));
}

/**
 * Runs a command body with the job's adapters, then exits with its code. Errors get their one-line reason
 * and the exit code of their kind (shared/core/errors.ts); clients are always closed.
 */
export async function withRuntime(cfg: FlatConfig, fn: (rt: SyncRuntime) => Promise<number>): Promise<never> {
  const rt = new SyncRuntime(cfg);
  let code: number;
  try {
    code = await fn(rt);
  } catch (err) {
    await rt.close().catch(() => {});
    failWith(cassandraError(err, cassandraOptionsFrom(cfg)));
  }
  await rt.close();
  process.exit(code);
}
