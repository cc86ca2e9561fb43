/** `sunbird-dataops` as an operator runs it: a child process, its exit code and both outputs. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import { PREFLIGHT_TYPE } from '#shared/clients/sync-api.ts';

const run = promisify(execFile);

export const CLI = join(import.meta.dirname, '..', '..', 'bin', 'sunbird-dataops.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args` and the test's environment plus `env`; never throws on a non-zero exit. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The last line on stderr: where the CLI puts its one-line error. */
export function lastLine(r: Pick<CliResult, 'stderr'>): string {
  return r.stderr.trimEnd().split('\n').at(-1) ?? '';
}

/** The block calls the stand-in received: every request but a run's preflight. */
export function blockCalls(standin: SyncApiStandin): ReturnType<SyncApiStandin['requests']> {
  return standin
    .requests()
    .filter((q) => (q.body as { request?: { objectType?: string } })?.request?.objectType !== PREFLIGHT_TYPE);
}

/** Ids of the calls the stand-in accepted (not a run's preflight, which it refuses by design). */
export function acceptedIds(standin: SyncApiStandin): string[] {
  return standin
    .requests()
    .filter((q) => q.status === 200)
    .flatMap((q) => (q.body as { request: { objectIds: string[] } }).request.objectIds);
}
