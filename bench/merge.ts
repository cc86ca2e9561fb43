/**
 * `node bench/merge.ts [--pairs 10] [--enrolments 20] [--contents 500]`
 *
 * Merges/s and per-merge p50/p95 for account pairs with 20 enrolments and 500 content rows each: the
 * real path (paged reads side by side, bounded-concurrency writes) against a baseline that issues the
 * same reads and writes one at a time, in the same run, on fresh pairs each. Outputs go to a no-op
 * publisher so the numbers are about Cassandra work. Needs `npm run services -- up`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { generatedPair, seedPair } from '#scripts/seed/merge-data.ts';
import { createCassandraClient } from '#shared/clients/cassandra.ts';
import { CassandraMergeStore, type MergeTableNames } from '#shared/merge/cassandra-store.ts';
import { type MergeStore, runMerge } from '#shared/merge/merge.ts';
import { enrolledCourseIds } from '#shared/merge/rules.ts';
import type { MergeSnapshot } from '#shared/merge/types.ts';
import { migrate } from '#shared/schema.ts';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '10' },
    enrolments: { type: 'string', default: '20' },
    contents: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '32' },
  },
});
const pairs = Number(values.pairs);
const enrolments = Number(values.enrolments);
const contents = Number(values.contents);
const concurrency = Number(values.concurrency);

const suffix = randomBytes(3).toString('hex');
const ks = { courses: `bench_merge_${suffix}_c`, ops: `bench_merge_${suffix}_o` };
const tables: MergeTableNames = {
  coursesKeyspace: ks.courses,
  opsKeyspace: ks.ops,
  consumption: 'user_content_consumption',
  enrolments: 'user_enrolments',
  activityAgg: 'user_activity_agg',
};

/** Same reads as the real store, issued strictly one after another (with `readConcurrency: 1`). */
class OneAtATimeStore extends CassandraMergeStore {
  override async readSnapshot(fromId: string, toId: string): Promise<MergeSnapshot> {
    const fromConsumption = await this.readConsumption(fromId);
    const toConsumption = await this.readConsumption(toId);
    const fromEnrolments = await this.readEnrolments(fromId);
    const toEnrolments = await this.readEnrolments(toId);
    const courses = enrolledCourseIds(fromEnrolments);
    const fromAgg = await this.readActivityAgg(fromId, courses);
    const toAgg = await this.readActivityAgg(toId, courses);
    return { fromConsumption, toConsumption, fromEnrolments, toEnrolments, fromAgg, toAgg };
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const client = createCassandraClient({
  hosts: ['127.0.0.1'],
  port: 9042,
  localDataCenter: 'datacenter1',
  coreConnectionsPerHost: 4,
});
const noop = { publish: async () => undefined };

async function measure(name: string, store: MergeStore, writeConcurrency: number) {
  const seededPairs: Array<{ from: string; to: string }> = [];
  for (let i = 0; i < pairs; i++) {
    const from = `bench-from-${randomUUID()}`;
    const to = `bench-to-${randomUUID()}`;
    await seedPair(client, ks.courses, generatedPair(from, to, enrolments, contents));
    seededPairs.push({ from, to });
  }
  const latencies: number[] = [];
  let writes = 0;
  const started = performance.now();
  for (const { from, to } of seededPairs) {
    const t0 = performance.now();
    const o = await runMerge(
      { fromAccountId: from, toAccountId: to },
      {
        store,
        publisher: noop,
        courseBatchTopic: 'bench',
        writeConcurrency,
      },
    );
    latencies.push(performance.now() - t0);
    writes += o.writes;
  }
  const total = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return {
    name,
    merges: pairs,
    mergesPerSecond: (pairs / total) * 1000,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    writesPerMerge: writes / pairs,
  };
}

try {
  await migrate(client, { keyspaces: ks, only: ['courses', 'ops'] });
  // Warm-up: prepare statements and connections for both paths.
  const real = new CassandraMergeStore(client, { tables, readConcurrency: 16 });
  const baseline = new OneAtATimeStore(client, { tables, readConcurrency: 1 });
  if (pairs > 0) await measure('warm-up', real, concurrency);
  const results = [
    await measure('one at a time (baseline)', baseline, 1),
    await measure(`merge (writes ×${concurrency})`, real, concurrency),
  ];
  console.log(
    `\nmerge-user-courses bench: ${pairs} pairs, ${enrolments} enrolments and ${contents} content rows per account\n`,
  );
  const rows = [
    ['path', 'merges', 'merges/s', 'p50 ms', 'p95 ms', 'writes/merge'],
    ...results.map((r) => [
      r.name,
      String(r.merges),
      r.mergesPerSecond.toFixed(2),
      r.p50.toFixed(0),
      r.p95.toFixed(0),
      r.writesPerMerge.toFixed(0),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  const [base, fast] = results as [(typeof results)[0], (typeof results)[0]];
  console.log(`\nspeed-up: ×${(fast.mergesPerSecond / base.mergesPerSecond).toFixed(1)}`);
} finally {
  for (const k of Object.values(ks))
    await client.execute(`DROP KEYSPACE IF EXISTS ${k}`).catch(() => undefined);
  await client.shutdown();
}
