/**
 * `sunbird-dataops invoke <function> --payload <file>`: invokes a function through a Lambda Invoke
 * endpoint — serverless-offline's (`--endpoint http://127.0.0.1:3002`, `npm run offline`) or AWS's
 * (no `--endpoint`; credentials from the usual AWS chain) — and prints its JSON answer.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { EXIT, Out, UsageError, withJson } from '#cli/common.ts';
import { createInvoker } from '#shared/clients/lambda.ts';

async function readPayload(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(
      e.code ? `cannot read payload ${file} (${e.code})` : `payload ${file} is not JSON: ${e.message}`,
    );
  }
}

export function registerInvokeCommand(program: Command): void {
  const cmd = program
    .command('invoke')
    .description(
      'Invoke a function (fanout, sync-block, delete-keycloak-users, merge-user-courses) with a JSON payload',
    )
    .argument('<function>', 'function name, short (`fanout`) or full (`sunbird-dataops-<stage>-fanout`)')
    .requiredOption('--payload <file>', 'JSON file with the event (see events/)')
    .option(
      '--endpoint <url>',
      'Lambda endpoint, e.g. http://127.0.0.1:3002 for serverless-offline; default AWS',
    )
    .option('--stage <stage>', 'stage of the function name', 'local');
  withJson(cmd).action(
    async (fn: string, opts: { payload: string; endpoint?: string; stage: string; json?: boolean }) => {
      const out: Out = new Out(opts);
      try {
        const payload = await readPayload(opts.payload);
        const invoke = createInvoker({
          stage: opts.stage,
          ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        });
        // The function's own error (e.g. an invalid payload) is exit 1; an unreachable endpoint exit 3.
        const result = await invoke(fn, payload);
        out.say(JSON.stringify(result ?? null, null, 2));
        out.finish({ exitCode: EXIT.ok, json: { function: fn, status: 'ok', result: result ?? null } });
      } catch (err) {
        out.fail(err);
      }
    },
  );
}
