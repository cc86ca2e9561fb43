/**
 * `npm run build:cli [-- --bundle-only]`: the command line as operators install it, in `dist/`:
 *
 *   sunbird-dataops.mjs         the whole CLI in one ES module (dependencies bundled) for Node 22 and later;
 *                               the npm package's `bin`. On an older Node it says so in one line, exit 2.
 *   sunbird-dataops             a Linux x64 single executable: the project's own Node 24 binary with the CLI
 *                               (bundled again as CommonJS, which Node 24 requires of a SEA main) injected
 *   SyncBin.zip                 Sync_run.sh + the single executable + README.txt: the Talend job's drop-in
 *   sunbird-dataops-<v>.tgz     `npm pack` of this package (the bundle, README and package.json only)
 *   SHA256SUMS                  `sha256sum -c SHA256SUMS` in dist/ verifies them
 *
 * The output depends only on the sources and the lockfile: the version is compiled in (no package.json is
 * read at run time) and the zip's timestamps come from SOURCE_DATE_EPOCH or the last commit.
 * `--bundle-only` writes only the ES module (npm's `prepack` runs it, so `npm pack` never packs a stale one).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type BuildOptions, build, type Plugin } from 'esbuild';
import { inject } from 'postject';
import { zip } from './build/zip.ts';

const ROOT = resolve(import.meta.dirname, '..');
export const DIST = join(ROOT, 'dist');
/** The oldest Node the bundle runs on (its esbuild target; tested on 22 and 24). */
export const MIN_NODE_MAJOR = 22;
/** Node 22 gained `node:sqlite` without a flag in 22.13 (the CLI's embedded ledger needs it). */
export const MIN_NODE = '22.13.0';
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const require = createRequire(import.meta.url);

export const OUTPUTS = {
  bundle: 'sunbird-dataops.mjs',
  executable: 'sunbird-dataops',
  zip: 'SyncBin.zip',
  sums: 'SHA256SUMS',
} as const;

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** What the Lambda bundles also need (config/esbuild.cjs): resolution, the kafka wasm alias, the CJS banner. */
function sharedOptions(): BuildOptions & { banner: { js: string } } {
  const { esbuildOptions } = require('../config/esbuild.cjs') as {
    esbuildOptions: () => BuildOptions & { banner: { js: string } };
  };
  const lambda = esbuildOptions();
  return {
    entryPoints: [join(ROOT, 'cli', 'main.ts')],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    target: `node${MIN_NODE_MAJOR}`,
    minify: true,
    keepNames: true,
    legalComments: 'eof',
    logLevel: 'warning',
    mainFields: lambda.mainFields,
    alias: lambda.alias,
    banner: lambda.banner,
    define: {
      SUNBIRD_DATAOPS_VERSION: JSON.stringify(packageVersion()),
      // Bundled modules that run "when executed directly" (scripts/msk-bridge.ts) must not run as part of the CLI.
      'import.meta.main': 'false',
    },
  };
}

/** Runs before anything else in the bundle: an older Node gets one line and exit code 2, no stack trace. */
function nodeVersionCheck(): string {
  const message =
    `sunbird-dataops: needs Node.js ${MIN_NODE} or newer, this is \${process.version} ` +
    `(the single executable in SyncBin.zip needs no Node.js)`;
  const [major, minor] = MIN_NODE.split('.').map(Number);
  return [
    `const [__major, __minor] = process.versions.node.split('.').map(Number);`,
    `if (__major < ${major} || (__major === ${major} && __minor < ${minor})) {`,
    `  process.stderr.write(\`${message}\\n\`);`,
    '  process.exit(2);',
    '}',
  ].join('\n');
}

/**
 * Node built-ins reached through the banner's `require` when first used, instead of static `import`s
 * (the Lambda bundles' plugin, config/esbuild.cjs): an ES module's imports are linked before any of its
 * code runs, so one built-in missing from an older Node (say `node:sqlite` on 20) would fail with a
 * stack trace before the version check could speak.
 */
const { builtinsByRequire } = require('../config/esbuild.cjs') as { builtinsByRequire: Plugin };

async function bundleEsm(out: string): Promise<void> {
  const shared = sharedOptions();
  await build({
    ...shared,
    format: 'esm',
    outfile: out,
    banner: { js: ['#!/usr/bin/env node', nodeVersionCheck(), shared.banner.js].join('\n') },
    plugins: [builtinsByRequire],
  });
  chmodSync(out, 0o755);
}

async function bundleCjs(out: string): Promise<void> {
  const { banner: _esmOnly, ...shared } = sharedOptions();
  await build({
    ...shared,
    format: 'cjs',
    outfile: out,
    inject: [join(ROOT, 'scripts', 'build', 'import-meta-cjs.ts')],
    define: {
      ...shared.define,
      'import.meta.url': 'importMetaUrl',
      'import.meta.filename': 'importMetaFilename',
      'import.meta.dirname': 'importMetaDirname',
    },
  });
}

/** The Node 24 binary that the `node` devDependency installed (the one every npm script runs on). */
function projectNode(): string {
  const bin = join(dirname(require.resolve('node/package.json')), 'bin', 'node');
  const [version, platform, arch] = execFileSync(bin, [
    '-p',
    '[process.version, process.platform, process.arch].join()',
  ])
    .toString()
    .trim()
    .split(',');
  if (platform !== 'linux' || arch !== 'x64')
    throw new Error(`the single executable is built for Linux x64 only; this machine is ${platform}-${arch}`);
  if (!version?.startsWith('v24.'))
    throw new Error(`expected the project's Node 24 at ${bin}, found ${version}`);
  return bin;
}

/** Node's single-executable recipe: a preparation blob from the CommonJS main, injected into a copy of node. */
async function buildExecutable(out: string): Promise<void> {
  const node = projectNode();
  const work = mkdtempSync(join(tmpdir(), 'sunbird-dataops-sea-'));
  try {
    await bundleCjs(join(work, 'main.cjs'));
    const config = { main: 'main.cjs', output: 'sea.blob', disableExperimentalSEAWarning: true };
    writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config));
    execFileSync(node, ['--experimental-sea-config', 'sea-config.json'], { cwd: work, stdio: 'pipe' });
    copyFileSync(node, out);
    chmodSync(out, 0o755);
    // postject prints "Can't find string offset for section name '.note…'" warnings: harmless on Linux.
    await inject(out, 'NODE_SEA_BLOB', readFileSync(join(work, 'sea.blob')), { sentinelFuse: SEA_FUSE });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** SOURCE_DATE_EPOCH if set (the reproducible-builds convention), else the last commit's time. */
function sourceDate(): Date {
  let seconds = process.env.SOURCE_DATE_EPOCH;
  let from = 'SOURCE_DATE_EPOCH';
  if (!seconds) {
    from = 'the last commit (git log -1 --format=%ct); outside a git checkout set SOURCE_DATE_EPOCH';
    try {
      seconds = execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, stdio: 'pipe' }).toString();
    } catch {
      seconds = '';
    }
  }
  const date = new Date(Number(seconds.trim()) * 1000);
  if (!seconds.trim() || Number.isNaN(date.getTime()))
    throw new Error(`no timestamp for the zip entries from ${from}`);
  return date;
}

function writeSyncBin(out: string, executable: string, modified: Date): void {
  const readme = readFileSync(join(ROOT, 'bin', 'SyncBin-README.txt'), 'utf8').replaceAll(
    '@VERSION@',
    packageVersion(),
  );
  const entries = [
    { name: 'Sync_run.sh', data: readFileSync(join(ROOT, 'bin', 'Sync_run.sh')), mode: 0o755 },
    { name: OUTPUTS.executable, data: readFileSync(executable), mode: 0o755 },
    { name: 'README.txt', data: Buffer.from(readme), mode: 0o644 },
  ];
  writeFileSync(out, zip(entries, modified));
}

/** `npm pack` into dist/ (the bundle is fresh, so npm's prepack need not rebuild it). */
function npmPack(dest: string): string {
  const json = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [packed] = JSON.parse(json.toString()) as Array<{ filename: string }>;
  if (!packed) throw new Error('npm pack reported no tarball');
  return join(dest, basename(packed.filename));
}

function writeChecksums(dir: string, files: string[]): void {
  const lines = files.map((f) => {
    const hash = createHash('sha256').update(readFileSync(f)).digest('hex');
    return `${hash}  ${relative(dir, f)}\n`;
  });
  writeFileSync(join(dir, OUTPUTS.sums), lines.join(''));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'bundle-only': { type: 'boolean', default: false } } });
  const path = (name: string) => join(DIST, name);
  const step = (what: string) => process.stdout.write(`${what}\n`);
  if (values['bundle-only']) {
    mkdirSync(DIST, { recursive: true });
    await bundleEsm(path(OUTPUTS.bundle));
    // stderr: this runs as npm's prepack, whose stdout is `npm pack --json`'s
    process.stderr.write(`wrote ${relative(ROOT, path(OUTPUTS.bundle))}\n`);
    return;
  }
  const modified = sourceDate();
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });
  step('bundle (ES module, Node ≥ 22)');
  await bundleEsm(path(OUTPUTS.bundle));
  step('single executable (Node 24 + CommonJS bundle)');
  await buildExecutable(path(OUTPUTS.executable));
  step('SyncBin.zip');
  writeSyncBin(path(OUTPUTS.zip), path(OUTPUTS.executable), modified);
  step('npm pack');
  const tarball = npmPack(DIST);
  const files = [OUTPUTS.bundle, OUTPUTS.executable, OUTPUTS.zip].map(path).concat(tarball);
  writeChecksums(DIST, files);
  process.stdout.write(readFileSync(path(OUTPUTS.sums), 'utf8'));
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`build-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
