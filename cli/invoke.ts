/**
 * `sunbird-dataops invoke <function> --payload <file>`: invokes a function through a Lambda Invoke
 * endpoint — serverless-offline's (`--endpoint http://127.0.0.1:3002`, `npm run offline`) or AWS's
 * (no `--endpoint`; credentials from the usual AWS chain) — and prints its JSON answer.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { EXIT, fail } from '#cli/common.ts';
import { createInvoker } from '#shared/clients/lambda.ts';

export function registerInvokeCommand(program: Command): void {
  program
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
    .option('--stage <stage>', 'stage of the function name', 'local')
    .action(async (fn: string, opts: { payload: string; endpoint?: string; stage: string }) => {
      let payload: unknown;
      try {
        payload = JSON.parse(await readFile(opts.payload, 'utf8'));
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        fail(
          e.code
            ? `cannot read payload ${opts.payload} (${e.code})`
            : `payload ${opts.payload} is not JSON: ${e.message}`,
        );
      }
      const invoke = createInvoker({
        stage: opts.stage,
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      });
      try {
        const out = await invoke(fn, payload);
        process.stdout.write(`${JSON.stringify(out ?? null, null, 2)}\n`);
        process.exit(EXIT.ok);
      } catch (err) {
        // The function's own error (e.g. an invalid payload), or the endpoint being unreachable.
        fail((err as Error).message.split('\n')[0] ?? String(err), EXIT.someFailed);
      }
    });
}
