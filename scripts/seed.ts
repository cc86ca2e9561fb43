/**
 * `npm run seed -- --users N --orgs M [--courses C] [--course-users U] [--seed S] [--keyspace …]`
 * Writes realistic, deterministic Sunbird rows. A million users is practical: rows are generated in
 * chunks and written with bounded-concurrency prepared inserts, so memory stays flat.
 */
import { parseArgs } from 'node:util';
import cassandra from 'cassandra-driver';
import cliProgress from 'cli-progress';
import { type SeedOptions, seed } from '#scripts/seed/seed.ts';
import { cassandraOptionsFrom, createCassandraClient } from '#shared/clients/cassandra.ts';
import { ConfigError, loadFlatConfig } from '#shared/config.ts';
import { migrate } from '#shared/schema.ts';

function intArg(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new ConfigError(`--${name} expects a whole number ≥ 0, got "${v}"`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string' },
      orgs: { type: 'string' },
      courses: { type: 'string' },
      'course-users': { type: 'string' },
      contents: { type: 'string' },
      seed: { type: 'string' },
      keyspace: { type: 'string' },
      'courses-keyspace': { type: 'string' },
      concurrency: { type: 'string' },
      'no-migrate': { type: 'boolean' },
    },
  });
  const cfg = loadFlatConfig({
    overrides: {
      'cassandra.keyspace': values.keyspace,
      'cassandra.coursesKeyspace': values['courses-keyspace'],
    },
  });
  const opts: SeedOptions = {
    users: intArg('users', values.users, 1000),
    orgs: intArg('orgs', values.orgs, 20),
    courses: intArg('courses', values.courses, 0),
    courseUsers: intArg('course-users', values['course-users'], 100),
    contentsPerCourse: intArg('contents', values.contents, 10),
    seed: intArg('seed', values.seed, 42),
    keyspace: cfg['cassandra.keyspace'],
    coursesKeyspace: cfg['cassandra.coursesKeyspace'],
    concurrency: intArg('concurrency', values.concurrency, 256),
  };
  const client = createCassandraClient({ ...cassandraOptionsFrom(cfg), coreConnectionsPerHost: 2 });
  const tty = process.stderr.isTTY;
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: '{table} [{bar}] {value}/{total} rows | {rate} rows/s | ETA {eta}s', etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const started = Date.now();
  let lastPrinted = 0;
  try {
    if (!values['no-migrate']) {
      await migrate(client, {
        keyspaces: { sunbird: opts.keyspace, courses: opts.coursesKeyspace },
        only: opts.courses > 0 ? ['sunbird', 'courses'] : ['sunbird'],
      });
    }
    const counts = await seed(client, opts, (p) => {
      const rate = Math.round(p.done / Math.max(0.001, (Date.now() - p.tableStarted) / 1000));
      if (bar) {
        if (p.done === 0) bar.start(p.total, 0, { table: p.table, rate });
        bar.update(p.done, { table: p.table, rate });
        if (p.done === p.total) bar.stop();
      } else if (p.done === p.total || Date.now() - lastPrinted > 2000) {
        lastPrinted = Date.now();
        console.error(`${p.table}: ${p.done}/${p.total} rows (${rate} rows/s)`);
      }
    });
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `seeded ${opts.keyspace}.user=${counts.users} ${opts.keyspace}.organisation=${counts.orgs}` +
        (opts.courses > 0
          ? ` ${opts.coursesKeyspace}: enrolments=${counts.enrolments} content rows=${counts.contents} activity rows=${counts.activity}`
          : '') +
        ` (seed ${opts.seed}) in ${secs}s`,
    );
  } finally {
    bar?.stop();
    await client.shutdown();
  }
}

main().catch((err: unknown) => {
  const msg =
    err instanceof cassandra.errors.NoHostAvailableError
      ? 'Cassandra is not reachable (is `npm run services -- up` done?)'
      : err instanceof Error
        ? err.message
        : String(err);
  console.error(`seed: ${msg}`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
