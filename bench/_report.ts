/**
 * What the benchmarks share: medians, the Sync API stand-in as a process of its own, and one summary line
 * per benchmark (`BENCH-RESULT {json}` on stdout) from which `npm run bench -- all` builds its table.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** One measure of a benchmark against its target: `met` is null where there is no target. */
export interface ResultRow {
  measure: string;
  /** What was measured, with its unit (e.g. "95.1 calls/s"). */
  value: string;
  /** The ratio the target is about (ours / baseline, achieved / capacity), when there is one. */
  ratio: number | null;
  target: string;
  met: boolean | null;
}

export interface BenchResult {
  bench: string;
  rows: ResultRow[];
}

const PREFIX = 'BENCH-RESULT ';

/** Prints the benchmark's summary line (read by `bench -- all`). */
export function printResult(result: BenchResult): void {
  process.stdout.write(`${PREFIX}${JSON.stringify(result)}\n`);
}

/** The summary lines in a benchmark's output. */
export function parseResults(output: string): BenchResult[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith(PREFIX))
    .map((l) => JSON.parse(l.slice(PREFIX.length)) as BenchResult);
}

export function metText(met: boolean | null): string {
  return met === null ? '—' : met ? 'met' : '**missed**';
}

/** The rows as a Markdown table. */
export function resultTable(results: BenchResult[]): string {
  const lines = ['| benchmark | measure | value | ratio | target | |', '|---|---|---:|---:|---|---|'];
  for (const r of results) {
    for (const row of r.rows) {
      const ratio = row.ratio === null ? '' : `${row.ratio.toFixed(2)}×`;
      lines.push(
        `| ${r.bench} | ${row.measure} | ${row.value} | ${ratio} | ${row.target} | ${metText(row.met)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** The Sync API stand-in in its own process (so its timers are not the client's), and its base URL. */
export function startStandin(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ url: string; proc: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [
        fileURLToPath(new URL('../scripts/sync-api-standin/cli.ts', import.meta.url)),
        '--port',
        '0',
        '--no-record',
        ...args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } },
    );
    let err = '';
    const timer = setTimeout(() => reject(new Error(`stand-in did not start: ${err}`)), 20_000);
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, proc });
      }
    });
    proc.on('exit', (code) => reject(new Error(`stand-in exited with ${code}: ${err}`)));
  });
}

/**
 * CPU time (ms) used so far by the processes whose command line matches, read from /proc (Linux); 0
 * where /proc is not readable. For profiles of where a benchmark's time goes across the services.
 */
export function processCpuMs(match: (comm: string, cmdline: string) => boolean): number {
  let ms = 0;
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  for (const pid of entries) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (!match(comm, cmdline)) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // utime and stime, in clock ticks (100 per second on Linux).
      ms += (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      // The process ended while being read.
    }
  }
  return ms;
}
