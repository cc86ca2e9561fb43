/**
 * What every command shares: settings as options (flags, `--context_param`, environment), the run's
 * adapters, one-line errors with the taxonomy's exit codes, `--json` output, and Ctrl-C handling.
 *
 * Exit codes: 0 all done · 1 some ids/events failed (the run completed) · 2 bad input or configuration ·
 * 3 a required service unreachable, timed out or refusing our credentials (resumable) · 130 interrupted
 * (resumable).
 */
import { type Command, Option } from 'commander';
import { cassandraError, cassandraOptionsFrom } from '#shared/clients/cassandra.ts';
import {
  type FlatConfig,
  loadFlatConfig,
  parseContextParams,
  SETTINGS,
  type SettingKey,
  settingKeyFor,
} from '#shared/config.ts';
import { BadInputError, EXIT, exitCodeOf, oneLine } from '#shared/core/errors.ts';
import { scrubString } from '#shared/redact.ts';
import { readIdFile } from '#shared/sync/ids.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

export { EXIT };

export const EXIT_CODES_HELP = `
Exit codes:
  0    all done
  1    some ids or events failed (the run completed; see the summary and \`report\`)
  2    bad input or configuration (the one-line message names the setting)
  3    a required service is unreachable, timed out, or refused the credentials (resumable)
  130  interrupted (Ctrl-C, SIGTERM); continue with \`sunbird-dataops resume <runId>\``;

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
/** Where runs are recorded: the embedded ledger (default) or Cassandra's ops keyspace. */
export const LEDGER: SettingKey[] = ['ledger.kind', 'ledger.stateDir', 'cassandra.opsKeyspace'];
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
  ...LEDGER,
];

/** Adds one option per setting, named by its flag (booleans also get `--no-…`), `--context_param` and `--json`. */
export function addSettingOptions(cmd: Command, keys: SettingKey[]): Command {
  for (const key of keys) {
    const def = SETTINGS[key];
    const isBool = def.default === 'true' || def.default === 'false';
    const original = 'original' in def ? ` [${def.original}]` : '';
    cmd.addOption(
      new Option(`${def.flag} ${isBool ? '[bool]' : '<value>'}`, `${def.description}${original}`),
    );
    if (isBool) cmd.addOption(new Option(`--no-${def.flag.slice(2)}`).hideHelp());
  }
  cmd.option(
    '--context_param <name=value>',
    'original Talend parameter, e.g. dry_run=false (repeatable)',
    collect,
    [],
  );
  cmd.option('--verbose', 'on an error, also print its stack and causes (as LOG_LEVEL=debug does)');
  return withJson(cmd);
}

/** `--json`: human output to stderr, and the last line of stdout one JSON object. */
export function withJson(cmd: Command): Command {
  return cmd.option(
    '--json',
    'print the result as one JSON object (the last line of stdout); progress goes to stderr',
  );
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

/** The settings given on this command line (a flag or a `--context_param`), as opposed to defaults and env. */
export function explicitSettings(opts: Record<string, unknown>, keys: SettingKey[]): Set<SettingKey> {
  const given = new Set<SettingKey>();
  for (const name of Object.keys(parseContextParams((opts.context_param as string[] | undefined) ?? []))) {
    const key = settingKeyFor(name);
    if (key) given.add(key);
  }
  for (const key of keys) if (opts[camel(SETTINGS[key].flag)] !== undefined) given.add(key);
  return given;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** A command's outcome: its exit code and what `--json` prints. */
export interface CommandResult {
  exitCode: number;
  json: Record<string, unknown>;
}

/** Where a command's human output goes: stdout, or stderr when stdout carries the `--json` result. */
export class Out {
  readonly json: boolean;
  constructor(opts: Record<string, unknown>) {
    this.json = opts.json === true;
  }
  say(text: string): void {
    (this.json ? process.stderr : process.stdout).write(`${text}\n`);
  }
  note(text: string): void {
    process.stderr.write(`${text}\n`);
  }
  /** Prints the result (JSON last line with --json) and exits with its code. */
  finish(result: CommandResult): never {
    if (this.json) process.stdout.write(`${JSON.stringify({ ...result.json, exitCode: result.exitCode })}\n`);
    process.exit(result.exitCode);
  }
  /** One line on stderr for an error, the exit code its kind calls for; with --json also the JSON object. */
  fail(err: unknown): never {
    if (verbose) process.stderr.write(`${errorDetail(err)}\n`);
    const message = oneLine(err);
    process.stderr.write(`sunbird-dataops: ${message}\n`);
    this.finish({ exitCode: exitCodeOf(err), json: { status: 'error', error: message } });
  }
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
 * Runs a command body with the job's adapters, then exits with its code. Errors get their one-line reason
 * and the exit code of their kind (shared/core/errors.ts); clients are always closed.
 */
export async function withRuntime(
  cfg: FlatConfig,
  out: Out,
  fn: (rt: SyncRuntime) => Promise<CommandResult>,
): Promise<never> {
  const rt = new SyncRuntime(cfg, { role: 'cli' });
  let result: CommandResult;
  try {
    result = await fn(rt);
  } catch (err) {
    await rt.close().catch(() => {});
    out.fail(cassandraError(err, cassandraOptionsFrom(cfg)));
  }
  await rt.close();
  out.finish(result);
}

/** How long the calls in flight may take to finish after Ctrl-C before they are cancelled. */
const GRACE_MS = 30_000;

/**
 * Ctrl-C and SIGTERM: the first stops taking new work (`stop`), lets the calls in flight finish for up to
 * GRACE_MS, then cancels them (`cancel`); a second signal cancels at once.
 */
export function interruptible(note: (m: string) => void): { stop: AbortSignal; cancel: AbortSignal } {
  const stop = new AbortController();
  const cancel = new AbortController();
  const onSignal = (sig: string) => {
    if (stop.signal.aborted) {
      cancel.abort();
      return;
    }
    note(
      `\n${sig}: stopping — no new blocks; the ones in flight finish (at most ${GRACE_MS / 1000} s, Ctrl-C again to cancel them)`,
    );
    stop.abort();
    setTimeout(() => cancel.abort(), GRACE_MS).unref();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  return { stop: stop.signal, cancel: cancel.signal };
}

/** The ids of `--id-file` (with what was dropped said on stderr), or undefined for a full scan. */
export async function idFileIds(cfg: FlatConfig, out: Out, note = ''): Promise<string[] | undefined> {
  if (!cfg['sync.idFile']) return undefined;
  const { ids, stats } = await readIdFile(cfg['sync.idFile']);
  const dropped = stats.blank + stats.duplicates;
  out.note(
    `id file: ${stats.ids} ids${note}${dropped ? ` (dropped ${stats.blank} blank line(s), ${stats.duplicates} duplicate(s))` : ''}`,
  );
  return ids;
}
