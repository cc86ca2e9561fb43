/**
 * `npm run bench -- <name> [args]`: runs `bench/<name>.ts` in its own Node process with the args, so
 * every benchmark starts from a fresh heap and event loop. With no name, or an unknown one, it lists
 * the benchmarks there are (every `bench/*.ts` but this file) with the first line of their header.
 *
 * `npm run bench -- all [--only a,b]`: every benchmark, one after another, at the size in ALL_ARGS (about
 * ten minutes together on a 2-core machine), then one table of every ratio and target from the summary
 * lines they print (`bench/_report.ts`).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchResult, parseResults, resultTable } from '#bench/_report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const self = basename(fileURLToPath(import.meta.url));

/** The first line of a benchmark's leading doc comment: its usage. */
function summaryOf(file: string): string {
  const m = /^\/\*\*\s*\n?\s*\*?\s*(.+)/.exec(readFileSync(file, 'utf8'));
  return m ? m[1]!.trim() : '';
}

export function listBenchmarks(): Array<{ name: string; summary: string }> {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts') && f !== self && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .sort()
    .map((f) => ({ name: f.slice(0, -3), summary: summaryOf(join(here, f)) }));
}

/** The size each benchmark runs at under `all`; one not named here runs with its defaults. */
export const ALL_ARGS: Readonly<Record<string, readonly string[]>> = {
  coldstart: ['--runs', '7'],
  keycloak: ['--users', '1000', '--rounds', '1'],
  merge: ['--pairs', '8', '--rounds', '3'],
  pacing: ['--seconds', '45', '--follow', '25', '--fixed-seconds', '15'],
  sync: ['--users', '200000', '--rounds', '1', '--worker-ids', '500000'],
};

/** Runs one benchmark as a child, its output passed through and kept; resolves with its exit code. */
function runChild(name: string, args: readonly string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, join(here, `${name}.ts`), ...args], {
      stdio: ['inherit', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      process.stdout.write(d);
    });
    child.on('exit', (code, signal) =>
      resolve({ code: code ?? 128 + (signal ? constants.signals[signal] : 0), stdout }),
    );
  });
}

async function runAll(only: string[] | undefined): Promise<number> {
  const names = listBenchmarks()
    .map((b) => b.name)
    .filter((n) => !only || only.includes(n));
  const results: BenchResult[] = [];
  const problems: string[] = [];
  const started = Date.now();
  for (const name of names) {
    const args = ALL_ARGS[name] ?? [];
    console.log(`\n=== bench ${name} ${args.join(' ')}`);
    const t0 = Date.now();
    const { code, stdout } = await runChild(name, args);
    const found = parseResults(stdout);
    results.push(...found);
    const took = `${((Date.now() - t0) / 1000).toFixed(0)} s`;
    if (code !== 0) problems.push(`${name}: exited with ${code} after ${took}`);
    else if (found.length === 0) problems.push(`${name}: printed no summary line (${took})`);
    else console.log(`=== bench ${name} done in ${took}`);
  }
  console.log(
    `\nAll benchmarks, ${((Date.now() - started) / 60_000).toFixed(1)} min on ${process.platform}/${process.arch}, Node ${process.version}\n`,
  );
  console.log(resultTable(results));
  for (const p of problems) console.log(`\n${p}`);
  return problems.some((p) => p.includes('exited')) ? 1 : 0;
}

function usage(): string {
  const list = listBenchmarks();
  const width = Math.max(0, ...list.map((b) => b.name.length));
  return [
    'usage: npm run bench -- <name> [args]',
    '       npm run bench -- all [--only a,b]   every benchmark, then one table of ratios and targets',
    '',
    'benchmarks:',
    ...list.map((b) => `  ${b.name.padEnd(width)}  ${b.summary}`),
  ].join('\n');
}

if (import.meta.main) {
  const [name, ...args] = process.argv.slice(2);
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    process.exit(name ? 0 : 2);
  }
  if (name === 'all') {
    const i = args.indexOf('--only');
    process.exit(await runAll(i >= 0 ? (args[i + 1] ?? '').split(',') : undefined));
  }
  if (!listBenchmarks().some((b) => b.name === name)) {
    console.error(`bench: no benchmark "${name}"\n\n${usage()}`);
    process.exit(2);
  }
  const child = spawn(process.execPath, [...process.execArgv, join(here, `${name}.ts`), ...args], {
    stdio: 'inherit',
  });
  // Ctrl-C reaches the child through the terminal's process group; just wait for it to end.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
}
