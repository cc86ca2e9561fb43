/**
 * `npm run bench -- <name> [args]`: runs `bench/<name>.ts` in its own Node process with the args, so
 * every benchmark starts from a fresh heap and event loop. With no name, or an unknown one, it lists
 * the benchmarks there are (every `bench/*.ts` but this file) with the first line of their header.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

function usage(): string {
  const list = listBenchmarks();
  const width = Math.max(0, ...list.map((b) => b.name.length));
  return [
    'usage: npm run bench -- <name> [args]',
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
