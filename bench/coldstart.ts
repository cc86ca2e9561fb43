/**
 * Cold-start cost of each Lambda bundle: bundle size and module-initialisation time (a dynamic
 * `import()` of the bundle in a fresh Node 24 process, median of N), next to a trivial handler bundled
 * the same way in the same run. Bundles are built with the deployed esbuild options
 * (config/esbuild.cjs), twice: with the AWS SDK v3 bundled and with it external (resolved from
 * node_modules at import, as Lambda resolves the runtime's own copy).
 *
 *   node bench/coldstart.ts [--runs 15] [--only fanout,sync-block]
 *
 * Import time is what Lambda bills as INIT for module code; it excludes the runtime's own start and the
 * download/unzip of the code, which grow with the zip size (shown too).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type BuildOptions, build } from 'esbuild';
import { printResult } from '#bench/_report.ts';

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

export async function measure(opts: { runs: number; only?: string[] }): Promise<Measured[]> {
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
  for (const sdk of ['bundled', 'external'] as const) {
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
    '| function | AWS SDK | bundle | source map | init median | init p90 | over trivial |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    rows.push(
      `| ${r.name} | ${r.sdk} | ${(r.bytes / 1024).toFixed(0)} KB | ${(r.mapBytes / 1024).toFixed(0)} KB | ${r.medianMs.toFixed(1)} ms | ${r.p90Ms.toFixed(1)} ms | ${(r.medianMs - (trivial.get(r.sdk) ?? 0)).toFixed(1)} ms |`,
    );
  }
  return rows.join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '15' }, only: { type: 'string' } },
  });
  const results = await measure({
    runs: Number(values.runs),
    ...(values.only ? { only: values.only.split(',') } : {}),
  });
  process.stdout.write(
    `Node ${process.version}, ${process.arch}, median of ${values.runs} fresh processes\n\n`,
  );
  process.stdout.write(`${table(results)}\n`);
  const trivial = results.find((r) => r.name === '(trivial handler)' && r.sdk === 'bundled')?.medianMs ?? 0;
  printResult({
    bench: 'coldstart',
    rows: results
      .filter((r) => r.sdk === 'bundled' && r.name !== '(trivial handler)')
      .map((r) => ({
        measure: `Lambda init of ${r.name} over a trivial bundle (bundle ${(r.bytes / 1024).toFixed(0)} KB)`,
        value: `${(r.medianMs - trivial).toFixed(0)} ms`,
        ratio: null,
        target: '≤ 150 ms',
        met: r.medianMs - trivial <= 150,
      })),
  });
}
