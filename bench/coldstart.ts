/**
 * `npm run bench -- coldstart [--runs 15] [--only fanout,sync-block] [--sdk bundled]`: start-up cost per function.
 *
 * Cold-start cost of each Lambda bundle: bundle, source map and zip size, and module-initialisation
 * time (a dynamic `import()` of the bundle in a fresh Node 24 process with --enable-source-maps, as
 * deployed, median of N), next to a trivial handler bundled the same way in the same run. Bundles are
 * built with the deployed esbuild options (config/esbuild.cjs), with the AWS SDK v3 bundled (as
 * deployed) and, unless `--sdk bundled`, with it external (resolved from node_modules at import, as
 * Lambda resolves the runtime's own copy) for comparison.
 *
 * Import time is what Lambda bills as INIT for module code; it excludes the runtime's own start and the
 * download/unzip of the code, which grow with the zip size. The zip size is that of the bundle and its
 * map deflated as `serverless package` zips them (within a few hundred bytes of `.serverless/<fn>.zip`).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { type BuildOptions, build } from 'esbuild';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, '.esbuild-bench');
const require = createRequire(import.meta.url);
const { esbuildOptions } = require('../config/esbuild.cjs') as {
  esbuildOptions: () => Record<string, unknown>;
};

export const FUNCTIONS = ['fanout', 'sync-block', 'delete-keycloak-users', 'merge-user-courses'] as const;

/** The deployed options, less serverless-esbuild's own keys. */
function buildOptions(sdk: 'bundled' | 'external'): BuildOptions {
  const {
    exclude: _exclude,
    packager: _packager,
    packagerOptions: _packagerOptions,
    outputFileExtension: _ext,
    outputWorkFolder: _work,
    ...esbuild
  } = esbuildOptions();
  return { ...(esbuild as BuildOptions), external: sdk === 'external' ? ['@aws-sdk/*'] : [] };
}

export interface Measured {
  name: string;
  sdk: 'bundled' | 'external';
  bytes: number;
  mapBytes: number;
  zipBytes: number;
  medianMs: number;
  p90Ms: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** Time of `import()` of the bundle in a fresh process, in ms. */
function importOnce(file: string): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(
    `file://${file}`,
  )}); process.stdout.write(String(performance.now() - t)); process.exit(0);`;
  const run = spawnSync(process.execPath, ['--input-type=module', '--enable-source-maps', '-e', script], {
    cwd: path.dirname(file),
    encoding: 'utf8',
    // Defaults are enough for the functions' configuration to load; nothing connects at import.
    env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', LOG_LEVEL: 'SILENT' },
    timeout: 60_000,
  });
  if (run.status !== 0) throw new Error(`import of ${file} failed: ${run.stderr}`);
  return Number(run.stdout);
}

async function bundle(entry: string, outfile: string, sdk: 'bundled' | 'external'): Promise<void> {
  await build({ ...buildOptions(sdk), entryPoints: [entry], outfile, logLevel: 'error' });
}

/**
 * Bundle and map deflated as serverless-esbuild's zip writer (archiver) does — at zlib level 1, which
 * reproduces its entries' sizes byte for byte — plus the zip headers (~100 bytes per entry).
 */
function zippedSize(...files: string[]): number {
  return files.reduce((n, f) => n + deflateRawSync(readFileSync(f), { level: 1 }).length + 100, 22);
}

export async function measure(opts: {
  runs: number;
  only?: string[];
  sdks?: Array<'bundled' | 'external'>;
}): Promise<Measured[]> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const trivialEntry = path.join(OUT, 'trivial.ts');
  writeFileSync(trivialEntry, 'export const handler = async () => ({ statusCode: 200 });\n');
  const entries: [string, string][] = [
    ['(trivial handler)', trivialEntry],
    ...FUNCTIONS.filter((f) => !opts.only || opts.only.includes(f)).map(
      (f) => [f, path.join(ROOT, 'functions', `${f}.ts`)] as [string, string],
    ),
  ];
  const results: Measured[] = [];
  for (const sdk of opts.sdks ?? (['bundled', 'external'] as const)) {
    for (const [name, entry] of entries) {
      const outfile = path.join(OUT, sdk, `${name.replace(/\W/g, '')}.mjs`);
      await bundle(entry, outfile, sdk);
      importOnce(outfile); // warm the file cache, as the disk of a Lambda host would be
      const times = Array.from({ length: opts.runs }, () => importOnce(outfile)).sort((a, b) => a - b);
      results.push({
        name,
        sdk,
        bytes: statSync(outfile).size,
        mapBytes: statSync(`${outfile}.map`).size,
        zipBytes: zippedSize(outfile, `${outfile}.map`),
        medianMs: quantile(times, 0.5),
        p90Ms: quantile(times, 0.9),
      });
    }
  }
  return results;
}

export function table(results: Measured[]): string {
  const trivial = new Map(
    results.filter((r) => r.name === '(trivial handler)').map((r) => [r.sdk, r.medianMs]),
  );
  const rows = [
    '| function | AWS SDK | bundle | source map | zip | init median | init p90 | over trivial |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    rows.push(
      `| ${r.name} | ${r.sdk} | ${(r.bytes / 1024).toFixed(0)} KB | ${(r.mapBytes / 1024).toFixed(0)} KB | ${r.zipBytes.toLocaleString('en')} B | ${r.medianMs.toFixed(1)} ms | ${r.p90Ms.toFixed(1)} ms | ${(r.medianMs - (trivial.get(r.sdk) ?? 0)).toFixed(1)} ms |`,
    );
  }
  return rows.join('\n');
}

/** Command-line options, or a one-line message saying what is wrong. */
function options(argv: string[]): { runs: number; only?: string[]; sdks?: Array<'bundled' | 'external'> } {
  const { values } = parseArgs({
    args: argv,
    options: { runs: { type: 'string', default: '15' }, only: { type: 'string' }, sdk: { type: 'string' } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs must be a whole number ≥ 1, got ${values.runs}`);
  const only = values.only?.split(',');
  const unknown = only?.filter((f) => !(FUNCTIONS as readonly string[]).includes(f));
  if (unknown?.length)
    throw new Error(`--only: unknown function(s) ${unknown.join(', ')}; known: ${FUNCTIONS.join(', ')}`);
  if (values.sdk !== undefined && values.sdk !== 'bundled' && values.sdk !== 'external')
    throw new Error(`--sdk must be bundled or external, got ${values.sdk}`);
  return { runs, ...(only ? { only } : {}), ...(values.sdk ? { sdks: [values.sdk] } : {}) };
}

if (import.meta.main) {
  let opts: ReturnType<typeof options>;
  try {
    opts = options(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`coldstart: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const results = await measure(opts);
  process.stdout.write(
    `Node ${process.version}, ${process.arch}, median of ${opts.runs} fresh processes\n\n`,
  );
  process.stdout.write(`${table(results)}\n`);
}
