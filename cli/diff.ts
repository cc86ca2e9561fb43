/**
 * `sunbird-dataops diff --table user|organisation --es-url URL [--es-index NAME] --out DIR [--json]
 * [--stale]`: which ids Cassandra has and the search index lacks (`missing.txt`), which the index has and
 * Cassandra does not (`orphans.txt`), and with --stale which documents are older than their rows
 * (`stale.txt`). Options in, the drift core (shared/drift/diff.ts) run, progress on stderr, a summary out.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  addSettingOptions,
  CASSANDRA_CONNECTION,
  type CommandResult,
  configFromOptions,
  EXIT,
  EXIT_CODES_HELP,
  formatDuration,
  Out,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { type DiffCounts, type DiffResult, runDiff } from '#shared/drift/diff.ts';
import { DiffFiles, type DiffKind } from '#shared/drift/outputs.ts';
import { DriftRuntime } from '#shared/drift/runtime.ts';

export const SEARCH_SETTINGS: SettingKey[] = [
  'es.url',
  'es.index',
  'es.username',
  'es.password',
  'es.apiKey',
  'es.caFile',
  'es.timeoutMs',
  'es.maxRetries',
  'es.updatedField',
  'es.paging',
];

const DIFF_SETTINGS: SettingKey[] = [
  'sync.table',
  ...SEARCH_SETTINGS,
  'sync.stale',
  ...CASSANDRA_CONNECTION,
  'cassandra.consistency',
  'cassandra.keyspace',
  'scan.minTasks',
  'scan.rowsPerTask',
];

interface DiffOptions {
  out: string;
  scanConcurrency: number;
  pageSize: number;
}

const fmt = (n: number): string => n.toLocaleString('en');

/** A progress line on stderr: rewritten in place on a terminal, every 5 s otherwise. */
function progressLine(): { update: (c: Readonly<DiffCounts>) => void; done: () => void } {
  const tty = Boolean(process.stderr.isTTY);
  let last = Date.now();
  let shown = false;
  const line = (c: Readonly<DiffCounts>) =>
    `diff: ${fmt(c.indexDocs)} index documents listed; ${fmt(c.cassandraIds)} Cassandra ids checked, ${fmt(c.missing)} missing${c.stale ? `, ${fmt(c.stale)} stale` : ''}, ${fmt(c.orphans)} orphans`;
  return {
    update: (c) => {
      const now = Date.now();
      if (now - last < (tty ? 200 : 5000)) return;
      last = now;
      shown = true;
      process.stderr.write(tty ? `\r${line(c)}\x1b[K` : `${line(c)}\n`);
    },
    done: () => {
      if (tty && shown) process.stderr.write('\n');
      shown = false;
    },
  };
}

function summary(table: string, index: string, url: string, r: DiffResult, paths: Record<string, string>) {
  const file = (kind: DiffKind) => (paths[kind] ? ` → ${paths[kind]}` : '');
  return [
    `diff of ${table} (Cassandra) with ${index} at ${url}: finished in ${formatDuration(r.durationMs)}`,
    `  Cassandra ids: ${fmt(r.cassandraIds)} (${r.ranges} token sub-ranges); index documents: ${fmt(r.indexDocs)}`,
    `  missing from the index: ${fmt(r.missing)}${file('missing')}`,
    `  orphans (in the index, not in Cassandra): ${fmt(r.orphans)}${file('orphans')}`,
    ...(paths.stale ? [`  stale (row updated after its document): ${fmt(r.stale)}${file('stale')}`] : []),
    `  look-ups: ${fmt(r.indexLookups)} ids in the index, ${fmt(r.docsLookedUp)} documents in Cassandra; steps: ${Object.entries(
      r.steps,
    )
      .map(([name, ms]) => `${name} ${formatDuration(ms)}`)
      .join(', ')}`,
    ...(r.missing + r.stale > 0
      ? [
          `  repair: sunbird-dataops sync --table ${table} --only-missing${paths.stale ? ' --stale' : ''} --es-url ${url} --es-index ${index} --dry-run false`,
          `      or: sunbird-dataops sync --table ${table} --id-file ${paths.missing} --dry-run false`,
        ]
      : []),
  ].join('\n');
}

async function diff(cfg: FlatConfig, o: DiffOptions, out: Out): Promise<never> {
  const table = cfg['sync.table'];
  const stale = cfg['sync.stale'];
  const kinds: DiffKind[] = stale ? ['missing', 'orphans', 'stale'] : ['missing', 'orphans'];
  return withRuntime(cfg, out, async (rt): Promise<CommandResult> => {
    const drift = new DriftRuntime(cfg, () => rt.cassandra);
    const index = drift.indexOf(table);
    const files = await DiffFiles.open(o.out, kinds);
    // Ctrl-C: nothing half-written may stay behind looking complete.
    const onSignal = () => void files.abandon().finally(() => process.exit(EXIT.interrupted));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const bar = progressLine();
    let result: DiffResult;
    let paths: Record<string, string>;
    try {
      result = await runDiff(
        {
          keyspace: cfg['cassandra.keyspace'],
          table,
          index,
          stale,
          scanConcurrency: o.scanConcurrency,
          fetchSize: o.pageSize,
          plan: { rowsPerTask: cfg['scan.rowsPerTask'], minTasks: cfg['scan.minTasks'] },
        },
        { ids: rt.ids, rows: drift.rows, search: drift.search },
        files,
        {
          onProgress: (c) => bar.update(c),
          onPass: (pass, buckets) => {
            bar.done();
            out.note(
              pass === 'orphans'
                ? `diff: ${fmt(buckets)} digest buckets differ: listing the index again to look their documents up in Cassandra`
                : `diff: ${fmt(buckets)} buckets still differ: scanning Cassandra again to look their ids up in the index`,
            );
          },
        },
      );
      paths = await files.commit();
    } catch (err) {
      await files.abandon();
      throw err;
    } finally {
      bar.done();
      await drift.close();
    }
    const url = cfg['es.url'];
    out.say(summary(table, index, url, result, paths));
    const { durationMs, ranges, ...counts } = result;
    return {
      exitCode: EXIT.ok,
      json: { status: 'finished', table, index, url, ...counts, ranges, durationMs, files: paths },
    };
  });
}

function whole(flag: string, v: unknown, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} expects a whole number ≥ ${min}`);
  return n;
}

export function registerDiffCommand(program: Command): void {
  const cmd = program
    .command('diff')
    .description(
      'Compare a Cassandra table with its search index: ids missing from the index, orphans, and (--stale) stale documents',
    );
  addSettingOptions(cmd, DIFF_SETTINGS)
    .option('--out <dir>', 'where missing.txt, orphans.txt (and stale.txt) are written', '.')
    .option('--scan-concurrency <n>', 'token sub-ranges read at once', '4')
    // Larger than the sync's pages (SCAN_FETCH_SIZE): a diff holds no blocks, and 5000-id pages read a
    // million ids about a quarter faster here.
    .option('--page-size <n>', 'ids per Cassandra page (and per index look-up)', '5000')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (opts: Record<string, unknown>) => {
      const out: Out = new Out(opts);
      let cfg: FlatConfig;
      let o: DiffOptions;
      try {
        cfg = configFromOptions(opts, DIFF_SETTINGS);
        if (!cfg['sync.table']) throw new UsageError('diff needs --table user|organisation');
        if (!cfg['es.url'])
          throw new UsageError('diff needs --es-url (ES_URL): the search engine to compare with');
        o = {
          out: resolve(String(opts.out)),
          scanConcurrency: whole('scan-concurrency', opts.scanConcurrency, 1),
          pageSize: whole('page-size', opts.pageSize, 10),
        };
      } catch (err) {
        out.fail(err);
      }
      await diff(cfg, o, out);
    });
}
