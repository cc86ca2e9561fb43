/**
 * `npm run bench -- drift [--users 1000000] [--missing-every 100] [--sleep-ms 1000] [--block-size 100] [--sample-ids 3000] [--rounds 1]`
 *
 * Drift repair against a full resync, on a table of --users users of which one in --missing-every is
 * missing from the search index (1 % by default), with the Sync API stand-in indexing for real into
 * OpenSearch. Every measurement is the real command in a process of its own:
 *
 * - `diff` (missing and orphans) against the raw Cassandra id scan (`bench sync`'s single-stream
 *   `SELECT id` baseline), for the throughput target (≥ 0.5× the raw scan);
 * - `sync --only-missing` (the repair: scan, check each page against the index, sync what is missing)
 *   against a full resync at the same pacing, for the speed-up target (≥ 20×). A full resync of a million
 *   users takes hours at any real pacing, so it is measured on a sample (`sync --id-file` of
 *   --sample-ids ids) and extrapolated linearly — its time is one paced call per block — and the output
 *   says so.
 * - memory: the diff runs with its V8 heap capped at 64 MB, so a diff whose memory grew with the table
 *   would fail rather than only be slower; its peak RSS is printed too.
 *
 * Seeds once (keyspace `bench_drift`, or `bench_drift_<n>` for other sizes) and fills the index once
 * (`bench-drift-user[-<n>]`, bulk-indexed from the generated rows); both are reused when they already
 * hold exactly that. Each round first deletes the missing users' documents again.
 * Needs Cassandra and OpenSearch (`npm run services -- up opensearch`; started here when needed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startStandin } from '#bench/_report.ts';
import { userRow } from '#scripts/seed/generate.ts';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { OPENSEARCH_URL } from '#scripts/services/opensearch.ts';
import { ensureServices } from '#scripts/services.ts';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import { mapLimit } from '#shared/core/concurrency.ts';
import { sleep } from '#shared/core/time.ts';
import { migrate } from '#shared/schema.ts';
import { CassandraRowLookup } from '#shared/sync/cassandra-rows.ts';

const SEED = 42;
const ORGS = 20;
const API_KEY_ENV = 'BENCH_DRIFT_API_KEY';
/** V8 old-space cap of the measured diff (MB). */
const DIFF_HEAP_MB = 64;
const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'bin', 'sunbird-dataops.js');

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000000' },
    'missing-every': { type: 'string', default: '100' },
    'sleep-ms': { type: 'string', default: '1000' },
    'block-size': { type: 'string', default: '100' },
    'sample-ids': { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '1' },
    'seed-concurrency': { type: 'string', default: '512' },
  },
});

function whole(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench drift: --${name} expects a whole number ≥ 1, got "${v}"`);
    process.exit(2);
  }
  return n;
}

const users = whole('users', values.users);
const every = whole('missing-every', values['missing-every']);
const sleepMs = whole('sleep-ms', values['sleep-ms']);
const blockSize = whole('block-size', values['block-size']);
const sampleIds = Math.min(users, whole('sample-ids', values['sample-ids']));
const rounds = whole('rounds', values.rounds);
const seedConcurrency = whole('seed-concurrency', values['seed-concurrency']);
const keyspace = users === 1_000_000 ? 'bench_drift' : `bench_drift_${users}`;
const opsKeyspace = 'bench_drift_ops';
const index = users === 1_000_000 ? 'bench-drift-user' : `bench-drift-user-${users}`;
const isMissing = (i: number) => i % every === 0;

const fmt = (n: number): string => Math.round(n).toLocaleString('en');
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------------
// OpenSearch, directly (setup only: the measured commands use the product's own client)

const os = new Pool(OPENSEARCH_URL, { connections: 4, headersTimeout: 300_000, bodyTimeout: 300_000 });

// biome-ignore lint/suspicious/noExplicitAny: JSON answers read field by field
async function call(method: string, path: string, body?: string): Promise<{ status: number; json: any }> {
  const res = await os.request({
    method: method as 'GET',
    path,
    headers: { 'content-type': path.startsWith('/_bulk') ? 'application/x-ndjson' : 'application/json' },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : {} };
}

async function bulk(lines: string[]): Promise<void> {
  const r = await call('POST', '/_bulk', `${lines.join('\n')}\n`);
  if (r.status !== 200 || r.json.errors)
    throw new Error(`bulk failed: ${JSON.stringify(r.json).slice(0, 300)}`);
}

async function docCount(): Promise<number> {
  await call('POST', `/${index}/_refresh`);
  const r = await call('GET', `/${index}/_count`);
  return r.status === 200 ? Number(r.json.count) : -1;
}

/** Which of `ids` the index holds (real time). */
async function held(ids: string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += 1000) {
    const r = await call(
      'POST',
      `/${index}/_mget?_source=false`,
      JSON.stringify({ ids: ids.slice(i, i + 1000) }),
    );
    n += (r.json.docs ?? []).filter((d: { found?: boolean }) => d.found).length;
  }
  return n;
}

/** The index holds every user but the missing ones (reused when it already does). */
async function ensureIndexed(all: string[], missing: string[]): Promise<string> {
  const expected = users - missing.length;
  const sample = all.filter((_, i) => i % 997 === 1 && !isMissing(i));
  // Filled earlier: as a fill left it, or repaired by a round (each round removes the missing again).
  const had = await docCount();
  const missingHeld = await held(missing);
  const filled = had - missingHeld === expected && (missingHeld === 0 || missingHeld === missing.length);
  if (filled && (await held(sample)) === sample.length)
    return `reused index ${index} (${fmt(had)} documents)`;
  await call('DELETE', `/${index}`);
  const settings = { settings: { number_of_shards: 1, number_of_replicas: 0, refresh_interval: '-1' } };
  const created = await call('PUT', `/${index}`, JSON.stringify(settings));
  if (created.status !== 200) throw new Error(`creating ${index}: ${JSON.stringify(created.json)}`);
  const started = performance.now();
  const chunks = Array.from({ length: Math.ceil(users / 5000) }, (_, c) => c * 5000);
  let done = 0;
  await mapLimit(chunks, 2, async (start) => {
    const lines: string[] = [];
    for (let i = start; i < Math.min(users, start + 5000); i++) {
      if (isMissing(i)) continue;
      // The row's columns, as the stand-in indexes them (plus `identifier`).
      const row = userRow(SEED, i, ORGS);
      lines.push(
        JSON.stringify({ index: { _index: index, _id: row.id } }),
        JSON.stringify({ ...row, identifier: row.id }),
      );
    }
    await bulk(lines);
    done += lines.length / 2;
    if (done % 100_000 < 5000) console.error(`  indexing ${index}: ${fmt(done)}/${fmt(expected)}`);
  });
  await call('PUT', `/${index}/_settings`, JSON.stringify({ index: { refresh_interval: '1s' } }));
  const count = await docCount();
  if (count !== expected) throw new Error(`${index} holds ${count} documents, expected ${expected}`);
  return `filled index ${index}: ${fmt(expected)} documents in ${secs(performance.now() - started)}`;
}

/** Back to the drift the round measures: the missing users' documents deleted. */
async function removeMissing(missing: string[]): Promise<void> {
  for (let i = 0; i < missing.length; i += 5000)
    await bulk(
      missing.slice(i, i + 5000).map((id) => JSON.stringify({ delete: { _index: index, _id: id } })),
    );
  await call('POST', `/${index}/_refresh`);
  if ((await held(missing)) !== 0) throw new Error('the missing documents are still there');
}

// ---------------------------------------------------------------------------------------------------
// Cassandra setup

/**
 * Whether the keyspace already holds exactly the seeded users, without counting a million rows (a
 * `count(*)` per range reads whole rows and timed out here under load): the seeder writes in order, so
 * the first and last 5000 ids being there and the next one not means a finished seeding of this size.
 */
async function seededAlready(client: CassandraClient): Promise<boolean> {
  const ids = seededUserIds(SEED, users + 1);
  const probe = [...ids.slice(0, 5000), ...ids.slice(Math.max(0, users - 5000), users)];
  const rows = new CassandraRowLookup(client, { concurrency: 128 });
  const have = await rows.rows(keyspace, 'user', [...new Set(probe)]);
  const beyond = await rows.rows(keyspace, 'user', [ids[users]!]);
  return have.size === new Set(probe).size && beyond.size === 0;
}

async function ensureSeeded(client: CassandraClient): Promise<string> {
  await migrate(client, { keyspaces: { sunbird: keyspace, ops: opsKeyspace }, only: ['sunbird', 'ops'] });
  if (await seededAlready(client)) return `reused ${keyspace} (${fmt(users)} users)`;
  await client.execute(`TRUNCATE ${keyspace}.user`);
  const started = performance.now();
  const opts = { users, orgs: ORGS, courses: 0, courseUsers: 0, contentsPerCourse: 0, seed: SEED };
  await seed(client, { ...opts, keyspace, coursesKeyspace: keyspace, concurrency: seedConcurrency });
  return `seeded ${keyspace}: ${fmt(users)} users in ${secs(performance.now() - started)}`;
}

// ---------------------------------------------------------------------------------------------------
// The measured commands, each in its own process

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident set (VmHWM), read from /proc every 200 ms; undefined where there is no /proc. */
  peakRssMb?: number;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    let peak: number | undefined;
    const sample = setInterval(async () => {
      const status = await readFile(`/proc/${p.pid}/status`, 'utf8').catch(() => '');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      if (m) peak = Math.max(peak ?? 0, Number(m[1]) / 1024);
    }, 200);
    p.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    p.on('error', reject);
    p.on('exit', (code) => {
      clearInterval(sample);
      resolve({
        code,
        stdout,
        stderr,
        ms: performance.now() - started,
        ...(peak ? { peakRssMb: peak } : {}),
      });
    });
  });
}

function check(r: Ran, what: string): Ran {
  if (r.code !== 0)
    throw new Error(`${what} exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r;
}

const cliEnv = (standinKey: string): NodeJS.ProcessEnv => ({
  SUNBIRD_KEYSPACE: keyspace,
  DATAOPS_KEYSPACE: opsKeyspace,
  ES_URL: OPENSEARCH_URL,
  ES_INDEX: index,
  SYNC_API_KEY: standinKey,
  CASSANDRA_CONSISTENCY: 'LOCAL_ONE',
});

/** The single-stream `SELECT id` scan, as `bench sync` measures it: ids/s. */
async function rawScan(): Promise<{ ids: number; ms: number }> {
  const r = check(
    await run([join(root, 'bench', 'sync.ts'), '--role', 'raw-scan', '--keyspace', keyspace]),
    'raw scan',
  );
  const m = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ids: number; ms: number };
  if (m.ids !== users) throw new Error(`the raw scan read ${m.ids} ids, expected ${users}`);
  return m;
}

async function diff(env: NodeJS.ProcessEnv, out: string, expectMissing: Set<string>) {
  // The heap is capped: a diff whose memory grew with the table would fail here, not only use more.
  const args = [
    `--max-old-space-size=${DIFF_HEAP_MB}`,
    CLI,
    'diff',
    '--table',
    'user',
    '--out',
    out,
    '--json',
  ];
  const r = check(await run(args, env), 'diff');
  const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  const got = (await readFile(join(out, 'missing.txt'), 'utf8')).split('\n').filter(Boolean);
  if (
    j.cassandraIds !== users ||
    j.orphans !== 0 ||
    got.length !== expectMissing.size ||
    !got.every((id) => expectMissing.has(id))
  )
    throw new Error(
      `diff found ${j.missing} missing / ${j.orphans} orphans of ${j.cassandraIds} ids; expected exactly the ${expectMissing.size} removed`,
    );
  const steps = Object.entries(j.steps as Record<string, number>)
    .map(([name, ms]) => `${name} ${secs(ms)}`)
    .join(', ');
  return { ...r, ms: j.durationMs as number, missing: j.missing as number, steps };
}

async function standin(key: string): Promise<{ url: string; proc: ChildProcess }> {
  const indexing = ['--opensearch', OPENSEARCH_URL, '--keyspace', keyspace, '--user-index', index];
  const { url, proc } = await startStandin(['--api-key-env', API_KEY_ENV, ...indexing], {
    [API_KEY_ENV]: key,
  });
  return { url: `${url}/v1/data/sync`, proc };
}

const pacing = () => [
  '--block-size',
  String(blockSize),
  '--sleep-time',
  String(sleepMs),
  '--dry-run',
  'false',
];

/** Waits (bounded) until the stand-in's background indexing has put every repaired id in the index. */
async function indexedAll(ids: string[]): Promise<void> {
  const until = Date.now() + 120_000;
  while ((await held(ids)) < ids.length) {
    if (Date.now() > until) throw new Error('the repaired ids did not all reach the index within 120 s');
    await sleep(500);
  }
}

interface Round {
  raw: { ids: number; ms: number };
  diff: Ran & { missing: number; steps: string };
  repair: Ran;
  sample: Ran;
}

async function round(
  env: NodeJS.ProcessEnv,
  endpoint: string,
  missing: string[],
  sample: string,
  work: string,
): Promise<Round> {
  await removeMissing(missing);
  const raw = await rawScan();
  const d = await diff(env, join(work, 'diff'), new Set(missing));
  const repair = check(
    await run(
      [
        CLI,
        'sync',
        '--table',
        'user',
        '--only-missing',
        '--sync-api-endpoint',
        endpoint,
        ...pacing(),
        '--out',
        join(work, 'repair'),
      ],
      env,
    ),
    'sync --only-missing',
  );
  const sent = Number(/sent on: (\d+)/.exec(repair.stdout)?.[1]);
  if (sent !== missing.length)
    throw new Error(`sync --only-missing sent ${sent} ids, expected ${missing.length}`);
  await indexedAll(missing);
  const after = await diff(env, join(work, 'after'), new Set());
  if (after.missing !== 0) throw new Error(`after the repair, diff still finds ${after.missing} missing`);
  const s = check(
    await run(
      [
        CLI,
        'sync',
        '--table',
        'user',
        '--id-file',
        sample,
        '--sync-api-endpoint',
        endpoint,
        ...pacing(),
        '--out',
        join(work, 'sample'),
      ],
      env,
    ),
    'sync (full-resync sample)',
  );
  return { raw, diff: d, repair, sample: s };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function report(results: Round[], missing: number): void {
  const rawRate = median(results.map((r) => r.raw.ids / (r.raw.ms / 1000)));
  const diffMs = median(results.map((r) => r.diff.ms));
  const diffRate = users / (diffMs / 1000);
  const repairMs = median(results.map((r) => r.repair.ms));
  const sampleMs = median(results.map((r) => r.sample.ms));
  const fullMs = (sampleMs * users) / sampleIds;
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const peak = results.map((r) => r.diff.peakRssMb).filter((x): x is number => x !== undefined);
  const rows = [
    ['measure', 'size', 'time (median)', 'rate', 'baseline', 'ratio', 'target'],
    [
      '`diff` (missing + orphans) vs raw single-stream `SELECT id` scan',
      `${fmt(users)} ids, ${fmt(users - missing)} docs`,
      secs(diffMs),
      `${fmt(diffRate)} ids/s`,
      `${fmt(rawRate)} ids/s`,
      `${(diffRate / rawRate).toFixed(2)}×`,
      `≥ 0.5× (${met(diffRate >= 0.5 * rawRate)})`,
    ],
    [
      `drift repair: \`sync --only-missing\` (${fmt(missing)} sent) vs full resync, extrapolated from a ${fmt(sampleIds)}-id sample`,
      `${fmt(users)} ids`,
      secs(repairMs),
      '',
      `${secs(fullMs)} (≈ ${(fullMs / 3_600_000).toFixed(1)} h)`,
      `${(fullMs / repairMs).toFixed(1)}×`,
      `≥ 20× (${met(fullMs >= 20 * repairMs)})`,
    ],
    [
      '`diff` then `sync --only-missing` vs the same full resync',
      `${fmt(users)} ids`,
      secs(diffMs + repairMs),
      '',
      secs(fullMs),
      `${(fullMs / (diffMs + repairMs)).toFixed(1)}×`,
      '(information)',
    ],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(
    [
      '',
      line(rows[0]!),
      `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
      ...rows.slice(1).map(line),
      '',
    ].join('\n'),
  );
  console.log(
    `medians of ${rounds} round(s). Pacing of both syncs: block size ${blockSize}, sleep ${sleepMs} ms, one call at a time. ` +
      `The full resync is EXTRAPOLATED: \`sync --id-file\` of ${fmt(sampleIds)} ids took ${secs(sampleMs)}, scaled by ${fmt(users)}/${fmt(sampleIds)} ` +
      `(its time is one paced call per block; the scan beside it is not the limit). Times are wall-clock of the real commands ` +
      `(diff: its own measured duration, as the raw scan's). diff ran with its V8 heap capped at ${DIFF_HEAP_MB} MB (--max-old-space-size); its peak RSS (VmHWM, code and buffers included): ${peak.length ? `${fmt(Math.max(...peak))} MB` : 'n/a'}. ` +
      `node ${process.version}; \`npm run bench -- drift ${process.argv.slice(2).join(' ')}\``.replace(
        / `$/,
        '`',
      ),
  );
}

async function main(): Promise<void> {
  await ensureServices(['cassandra', 'opensearch'], { log: (l) => console.error(`  [services] ${l}`) });
  const client = createCassandraClient({
    hosts: ['127.0.0.1'],
    port: 9042,
    localDataCenter: 'datacenter1',
    consistency: 'LOCAL_ONE',
    coreConnectionsPerHost: 4,
  });
  const key = randomBytes(12).toString('hex');
  const work = await mkdtemp(join(tmpdir(), 'bench-drift-'));
  let stand: ChildProcess | undefined;
  try {
    console.error(
      `bench drift: ${fmt(users)} users, 1 in ${every} missing from ${index}, ${rounds} round(s)`,
    );
    console.error(`  ${await ensureSeeded(client)}`);
    const all = seededUserIds(SEED, users);
    const missing = all.filter((_, i) => isMissing(i));
    console.error(`  ${await ensureIndexed(all, missing)}`);
    const sample = join(work, 'sample.txt');
    await writeFile(
      sample,
      `${all
        .filter((_, i) => !isMissing(i))
        .slice(0, sampleIds)
        .join('\n')}\n`,
    );
    const s = await standin(key);
    stand = s.proc;
    const results: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      const res = await round(cliEnv(key), s.url, missing, sample, work);
      results.push(res);
      console.error(
        `  round ${r + 1}/${rounds}: raw scan ${secs(res.raw.ms)}, diff ${secs(res.diff.ms)} (${res.diff.steps}), sync --only-missing ${secs(res.repair.ms)}, ${fmt(sampleIds)}-id sample ${secs(res.sample.ms)}`,
      );
    }
    report(results, missing.length);
  } finally {
    stand?.kill('SIGTERM');
    await client.shutdown();
    await os.close();
    await rm(work, { recursive: true, force: true });
  }
}

try {
  await main();
  process.exit(0);
} catch (err) {
  console.error(`bench drift: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
