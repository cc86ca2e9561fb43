/** The `sunbird-dataops` command line. */
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerDiffCommand } from '#cli/diff.ts';
import { registerInvokeCommand } from '#cli/invoke.ts';
import { registerKeycloakCommand } from '#cli/keycloak.ts';
import { registerMergeCommand } from '#cli/merge.ts';
import { registerReportCommand, registerRunsCommand } from '#cli/report.ts';
import { registerSyncCommands } from '#cli/sync.ts';

export function buildProgram(): Command {
  const program = new Command('sunbird-dataops')
    .description('Sunbird data operations: sync to Elasticsearch, Keycloak user deletion, merge-user-courses')
    .version((createRequire(import.meta.url)('../package.json') as { version: string }).version)
    .showHelpAfterError()
    .configureOutput({
      outputError: (str, write) => write(`sunbird-dataops: ${str.replace(/^error: /, '')}`),
    })
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  registerSyncCommands(program);
  registerReportCommand(program);
  registerRunsCommand(program);
  registerDiffCommand(program);
  registerKeycloakCommand(program);
  registerMergeCommand(program);
  registerInvokeCommand(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
