/**
 * `sunbird-dataops migrate [--replication "{…}"] [--print]`: creates this tool's own keyspace (the run
 * ledger for AWS runs and `--ledger cassandra`, and the merge journal) — or, with `--print`, only prints
 * the CQL for a DBA to run. Sunbird's own keyspaces are never touched. Idempotent; on an existing ledger it
 * adds the columns newer versions use.
 */
import type { Command } from 'commander';
import {
  addSettingOptions,
  CASSANDRA_CONNECTION,
  configFromOptions,
  EXIT,
  EXIT_CODES_HELP,
  Out,
  UsageError,
  withRuntime,
} from '#cli/common.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { LOCAL_REPLICATION, migrate, opsSchemaCql } from '#shared/schema.ts';

const MIGRATE_SETTINGS: SettingKey[] = [...CASSANDRA_CONNECTION, 'cassandra.opsKeyspace'];

/** A replication map as CQL takes it, e.g. {'class':'NetworkTopologyStrategy','dc1':3}. */
function replicationOf(value: unknown): string {
  if (value === undefined) return LOCAL_REPLICATION;
  const text = String(value).trim();
  if (!/^\{\s*'class'\s*:\s*'(SimpleStrategy|NetworkTopologyStrategy)'[^;]*\}$/.test(text)) {
    throw new UsageError(
      `--replication expects a CQL replication map such as "{'class':'NetworkTopologyStrategy','dc1':3}", got ${JSON.stringify(text)}`,
    );
  }
  return text;
}

export function registerMigrateCommand(program: Command): void {
  const cmd = program
    .command('migrate')
    .description(
      "Create this tool's keyspace in Cassandra (ledger for AWS runs, merge journal), or print its CQL",
    );
  addSettingOptions(cmd, MIGRATE_SETTINGS)
    .option(
      '--replication <map>',
      "the keyspace's replication, e.g. \"{'class':'NetworkTopologyStrategy','dc1':3}\"",
    )
    .option('--print', 'only print the CQL (for a DBA); connect to nothing')
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (opts: Record<string, unknown>) => {
      const out: Out = new Out(opts);
      let cfg: FlatConfig;
      let replication: string;
      try {
        cfg = configFromOptions(opts, MIGRATE_SETTINGS);
        replication = replicationOf(opts.replication);
      } catch (err) {
        out.fail(err);
      }
      const ks = cfg['cassandra.opsKeyspace'];
      if (opts.print) {
        out.say(
          opsSchemaCql(ks, replication)
            .map((cql) => `${cql.replace(/\s+/g, ' ').trim()};`)
            .join('\n'),
        );
        out.finish({ exitCode: EXIT.ok, json: { status: 'printed', keyspace: ks } });
      }
      await withRuntime(cfg, out, async (rt) => {
        await migrate(rt.cassandra, {
          keyspaces: { ops: ks },
          replication,
          only: ['ops'],
          onStatement: (cql) => out.note(`  ${cql}`),
        });
        out.say(`keyspace ${ks} is ready (run ledger, deletion records, merge journal)`);
        return { exitCode: EXIT.ok, json: { status: 'ready', keyspace: ks } };
      });
    });
}
