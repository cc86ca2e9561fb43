/** The `sunbird-dataops` command line. */
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { EXIT_CODES_HELP } from '#cli/common.ts';
import { registerDiffCommand } from '#cli/diff.ts';
import { registerInvokeCommand } from '#cli/invoke.ts';
import { registerKeycloakCommand } from '#cli/keycloak.ts';
import { registerMergeCommand } from '#cli/merge.ts';
import { registerMigrateCommand } from '#cli/migrate.ts';
import { registerReportCommand, registerRunsCommand } from '#cli/report.ts';
import { registerResumeCommand } from '#cli/resume.ts';
import { registerSyncCommands } from '#cli/sync.ts';

/** Compiled in by the CLI build (esbuild `define`, scripts/build-cli.ts); from the sources, package.json. */
declare const SUNBIRD_DATAOPS_VERSION: string | undefined;

function version(): string {
  if (typeof SUNBIRD_DATAOPS_VERSION === 'string') return SUNBIRD_DATAOPS_VERSION;
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('sunbird-dataops')
    .description('Sunbird data operations: sync to Elasticsearch, Keycloak user deletion, merge-user-courses')
    .addHelpText('after', EXIT_CODES_HELP)
    .version(version())
    .showHelpAfterError()
    .configureOutput({
      outputError: (str, write) => write(`sunbird-dataops: ${str.replace(/^error: /, '')}`),
    })
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  registerSyncCommands(program);
  registerResumeCommand(program);
  registerReportCommand(program);
  registerRunsCommand(program);
  registerDiffCommand(program);
  registerKeycloakCommand(program);
  registerMergeCommand(program);
  registerInvokeCommand(program);
  registerMigrateCommand(program);
  return program;
}

// Not a top-level await: the single executable runs this file as CommonJS, which has none.
void buildProgram().parseAsync(process.argv);
