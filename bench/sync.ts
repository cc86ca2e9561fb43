/**
 * `npm run bench -- sync [--users 1000000] [--rounds 3] [--worker-ids 1000000] [--concurrency 8]
 *    [--steps raw-scan,scan-noop,fanout-sqs,fanout-sqs-small,worker-raw,worker-ours,worker-ledger]`
 *
 * The sync job's throughput against baselines measured in the same run, interleaved round by round,
 * each measurement in a fresh child process (so one cannot warm or pollute another), medians reported:
 *
 * - fan-out: token-range scan (`planRanges` + concurrent `scanRange`) enqueuing every block into a
 *   bench-own ElasticMQ queue (created per measurement, checked for the expected count, then deleted),
 *   and the same scan into a no-op queue, against one raw `SELECT id FROM ks.user` stream paged through
 *   with cassandra-driver;
 * - worker: `processBlock` (with and without the ledger) against the Sync API stand-in running in its
 *   own process, against a bare undici POST loop sending the same request bodies, same concurrency
 *   (a million ids by default: shorter runs measure the JIT warming up more than the loop);
 * - memory: peak RSS (VmHWM) of the ElasticMQ fan-out at two table sizes (a tenth of --users, and
 *   --users), which should be flat: the scan holds about one page per concurrent range.
 *
 * Seeds once: a million users live in `bench_sync`, any other size n in `bench_sync_<n>` (so a quick run
 * never wipes the big table); a keyspace that already holds exactly that many users is reused.
 * Needs `npm run services -- up`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import cassandra from 'cassandra-driver';
import { Pool } from 'undici';
import { median, printResult, type ResultRow, startStandin } from '#bench/_report.ts';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import { createSqsClient } from '#shared/clients/sqs.ts';
import { buildSyncRequestBody, SyncApiClient } from '#shared/clients/sync-api.ts';
import { SETTINGS } from '#shared/config.ts';
import type { MessageQueue } from '#shared/queue/queue.ts';
import { SqsQueue } from '#shared/queue/sqs.ts';
import { migrate } from '#shared/schema.ts';
import { CassandraIdSource } from '#shared/sync/cassandra-ids.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import type { Block, RunSettings } from '#shared/sync/messages.ts';
import type { RunLedger } from '#shared/sync/ports.ts';
import { DEFAULT_FETCH_SIZE, planRanges, scanRange } from '#shared/sync/scan.ts';
import { processBlock } from '#shared/sync/worker.ts';

const SQS_ENDPOINT = 'http://127.0.0.1:9324';
const MIN_TOKEN = '-9223372036854775808';
const SEED = 42;
const BLOCK_SIZE = 100;
const API_KEY_ENV = 'BENCH_SYNC_API_KEY';
/** The baseline stream reads the driver's usual 5000-row pages (its fastest here). */
const BASELINE_FETCH_SIZE = 5000;

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '1000000' },
    'small-users': { type: 'string' },
    rounds: { type: 'string', default: '3' },
    'worker-ids': { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '8' },
    'scan-concurrency': { type: 'string', default: '4' },
    'fetch-size': { type: 'string', default: String(DEFAULT_FETCH_SIZE) },
    // The scan is planned as the CLI and the fan-out plan it (SCAN_MIN_TASKS, SCAN_ROWS_PER_TASK).
    'min-tasks': { type: 'string', default: String(SETTINGS['scan.minTasks'].default) },
    'rows-per-task': { type: 'string', default: String(SETTINGS['scan.rowsPerTask'].default) },
    keyspace: { type: 'string', default: 'bench_sync' },
    // Which measurements to run (comma-separated step names; default all).
    steps: { type: 'string' },
    'seed-concurrency': { type: 'string', default: '512' },
    // Internal: what a child process measures.
    role: { type: 'string' },
    'queue-url': { type: 'string' },
    endpoint: { type: 'string' },
    ids: { type: 'string' },
  },
});

function whole(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench sync: --${name} expects a whole number ≥ 1, got "${v}"`);
    process.exit(2);
  }
  return n;
}

const users = whole('users', values.users);
const smallUsers = whole('small-users', values['small-users'] ?? String(Math.max(1, Math.round(users / 10))));
const rounds = whole('rounds', values.rounds);
const workerIds = whole('worker-ids', values['worker-ids']);
const concurrency = whole('concurrency', values.concurrency);
const scanConcurrency = whole('scan-concurrency', values['scan-concurrency']);
const fetchSize = whole('fetch-size', values['fetch-size']);
const plan = {
  minTasks: whole('min-tasks', values['min-tasks']),
  rowsPerTask: whole('rows-per-task', values['rows-per-task']),
};
const STEP_NAMES = [
  'raw-scan',
  'scan-noop',
  'fanout-sqs',
  'fanout-sqs-small',
  'worker-raw',
  'worker-ours',
  'worker-ledger',
] as const;
type StepName = (typeof STEP_NAMES)[number];
const SCAN_STEPS: readonly StepName[] = ['raw-scan', 'scan-noop', 'fanout-sqs', 'fanout-sqs-small'];
const steps = new Set<StepName>(
  (values.steps?.split(',').map((x) => x.trim()) ?? STEP_NAMES).map((name) => {
    if (!(STEP_NAMES as readonly string[]).includes(name)) {
      console.error(`bench sync: --steps expects names from ${STEP_NAMES.join(', ')}; got "${name}"`);
      process.exit(2);
    }
    return name as StepName;
  }),
);
const seedConcurrency = whole('seed-concurrency', values['seed-concurrency']);
const baseKeyspace = values.keyspace!;
if (!/^\w+$/.test(baseKeyspace)) throw new Error('--keyspace expects a keyspace name');
const keyspaceFor = (n: number): string => (n === 1_000_000 ? baseKeyspace : `${baseKeyspace}_${n}`);
const keyspace = keyspaceFor(users);
const opsKeyspace = `${baseKeyspace}_ops`;

function cassandraClient(connections = 2): CassandraClient {
  return createCassandraClient({
    hosts: ['127.0.0.1'],
    port: 9042,
    localDataCenter: 'datacenter1',
    consistency: 'LOCAL_ONE',
    coreConnectionsPerHost: connections,
  });
}

// ---------------------------------------------------------------------------------------------------
// Child side: one measurement, one JSON line on stdout.

interface Measurement {
  ids: number;
  ms: number;
  blocks?: number;
  /** Peak resident set of the process, MB (VmHWM; sampled RSS where /proc is absent). */
  peakRssMb: number;
  /** Peak of the sampled V8 heap in use, MB: what the process actually holds. */
  peakHeapMb: number;
}

function peakRssMb(sampled: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: the sampled peak will do
  }
  return sampled / 1024 / 1024;
}

const benchRun = (): RunSettings => ({
  runId: `bench-${randomBytes(4).toString('hex')}`,
  job: 'sync',
  objectType: 'user',
  dryRun: false,
  verify: false,
  blockSize: BLOCK_SIZE,
  sleepMs: 0,
});

async function rawScan(
  client: CassandraClient,
  ks: string,
): Promise<Omit<Measurement, 'peakRssMb' | 'peakHeapMb'>> {
  const started = performance.now();
  let ids = 0;
  let pageState: string | undefined;
  do {
    const rs = await client.execute(`SELECT id FROM ${ks}.user`, [], {
      prepare: true,
      fetchSize: BASELINE_FETCH_SIZE,
      ...(pageState ? { pageState } : {}),
    });
    ids += rs.rows.length;
    pageState = rs.pageState ?? undefined;
  } while (pageState);
  return { ids, ms: performance.now() - started };
}

async function fanOut(
  client: CassandraClient,
  ks: string,
  queue: MessageQueue,
): Promise<Omit<Measurement, 'peakRssMb' | 'peakHeapMb'>> {
  const started = performance.now();
  const run = benchRun();
  const source = new CassandraIdSource(client);
  const ranges = await planRanges(source, ks, 'user', { ...plan, blockSize: BLOCK_SIZE });
  let next = 0;
  let ids = 0;
  let blocks = 0;
  const scanner = async (): Promise<void> => {
    while (next < ranges.length) {
      const r = ranges[next++]!;
      const result = await scanRange(
        { type: 'scan', run, keyspace: ks, table: 'user', rangeNo: r.rangeNo, start: r.start, end: r.end },
        { ids: source, queue, fetchSize },
      );
      ids += result.ids;
      blocks += result.blocks;
    }
  };
  await Promise.all(Array.from({ length: scanConcurrency }, scanner));
  return { ids, blocks, ms: performance.now() - started };
}

function benchBlocks(count: number): Block[] {
  const run = benchRun();
  const ids = seededUserIds(SEED, count);
  const blocks: Block[] = [];
  for (let i = 0, seq = 0; i < ids.length; i += BLOCK_SIZE)
    blocks.push({ type: 'block', run, rangeNo: 0, seq: seq++, ids: ids.slice(i, i + BLOCK_SIZE) });
  return blocks;
}

/** `concurrency` loops taking blocks in turn; every block must come back 200. */
async function eachBlock(blocks: Block[], fn: (b: Block) => Promise<boolean>): Promise<number> {
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < blocks.length) if (!(await fn(blocks[next++]!))) failed++;
    }),
  );
  return failed;
}

async function workerRaw(
  endpoint: string,
  blocks: Block[],
): Promise<Omit<Measurement, 'peakRssMb' | 'peakHeapMb'>> {
  const url = new URL(endpoint);
  const pool = new Pool(url.origin, { connections: concurrency });
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json',
    authorization: `Bearer ${process.env[API_KEY_ENV]}`,
  };
  const started = performance.now();
  const failed = await eachBlock(blocks, async (b) => {
    const res = await pool.request({
      path: url.pathname,
      method: 'POST',
      headers,
      body: buildSyncRequestBody(b.run.objectType, b.ids),
    });
    await res.body.text();
    return res.statusCode === 200;
  });
  const ms = performance.now() - started;
  await pool.close();
  if (failed) throw new Error(`${failed} raw POSTs were not answered 200`);
  return { ids: blocks.reduce((n, b) => n + b.ids.length, 0), blocks: blocks.length, ms };
}

async function workerOurs(
  endpoint: string,
  blocks: Block[],
  ledger: RunLedger | undefined,
): Promise<Omit<Measurement, 'peakRssMb' | 'peakHeapMb'>> {
  const syncApi = new SyncApiClient({
    endpoint,
    apiKey: process.env[API_KEY_ENV] ?? '',
    connections: concurrency,
  });
  const started = performance.now();
  const failed = await eachBlock(blocks, async (b) => {
    const { outcome } = await processBlock(b, { syncApi, ...(ledger ? { ledger } : {}) });
    return outcome.status === 'succeeded';
  });
  const ms = performance.now() - started;
  await syncApi.close();
  if (failed) throw new Error(`${failed} blocks did not succeed`);
  return { ids: blocks.reduce((n, b) => n + b.ids.length, 0), blocks: blocks.length, ms };
}

/**
 * The ledger as a worker has it after its first block: connected, its statement prepared. (A run is
 * millions of ids; the one-off connect and prepare would otherwise weigh on a measurement of seconds.)
 */
async function warmLedger(client: CassandraClient): Promise<RunLedger> {
  const ledger = new CassandraRunLedger(client, opsKeyspace);
  const [first] = benchBlocks(BLOCK_SIZE);
  await ledger.recordBlock(`warm-up-${randomBytes(4).toString('hex')}`, {
    rangeNo: 0,
    seq: 0,
    stage: 'sync',
    status: 'succeeded',
    ids: first!.ids,
    failedIds: [],
    reason: null,
    attempts: 1,
    httpStatus: 200,
    response: null,
  });
  return ledger;
}

async function child(role: string): Promise<void> {
  let sampled = process.memoryUsage.rss();
  let heap = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    sampled = Math.max(sampled, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 25);
  const client = cassandraClient();
  let sqs: SQSClient | undefined;
  let m: Omit<Measurement, 'peakRssMb' | 'peakHeapMb'>;
  try {
    const ks = values.keyspace!;
    if (role === 'raw-scan') m = await rawScan(client, ks);
    else if (role === 'scan-noop') m = await fanOut(client, ks, { send: async () => {} });
    else if (role === 'fanout-sqs') {
      sqs = createSqsClient({ region: 'us-east-1', endpoint: SQS_ENDPOINT });
      m = await fanOut(client, ks, new SqsQueue(sqs, values['queue-url']!));
    } else {
      const blocks = benchBlocks(Number(values.ids));
      if (role === 'worker-raw') m = await workerRaw(values.endpoint!, blocks);
      else if (role === 'worker-ours') m = await workerOurs(values.endpoint!, blocks, undefined);
      else if (role === 'worker-ledger')
        m = await workerOurs(values.endpoint!, blocks, await warmLedger(client));
      else throw new Error(`unknown role ${role}`);
    }
  } finally {
    clearInterval(sampler);
    await client.shutdown();
    sqs?.destroy();
  }
  const out: Measurement = {
    ...m,
    peakRssMb: peakRssMb(Math.max(sampled, process.memoryUsage.rss())),
    peakHeapMb: heap / 1024 / 1024,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

// ---------------------------------------------------------------------------------------------------
// Parent side: seed, start the stand-in, run the measurements interleaved, print the table.

const self = fileURLToPath(import.meta.url);

function measure(role: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [self, '--role', role, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('error', reject);
    p.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{'))
        reject(new Error(`${role} exited with ${code}: ${out.trim()}`));
      else resolve(JSON.parse(line) as Measurement);
    });
  });
}

/** Exact row count, range by range (server-side counts: nothing but the numbers crosses the wire). */
async function countUsers(client: CassandraClient, ks: string): Promise<number> {
  // Small sub-ranges, few at once: a count(*) is a full read of its range, and a loaded node times out
  // on large ones.
  const ranges = await planRanges(new CassandraIdSource(client), ks, 'user', { splitsPerRange: 16 });
  let next = 0;
  let total = 0;
  await Promise.all(
    Array.from({ length: 2 }, async () => {
      while (next < ranges.length) {
        const r = ranges[next++]!;
        const start = cassandra.types.Long.fromString(r.start);
        const rs =
          r.end === MIN_TOKEN
            ? await client.execute(`SELECT count(*) AS n FROM ${ks}.user WHERE token(id) > ?`, [start])
            : await client.execute(
                `SELECT count(*) AS n FROM ${ks}.user WHERE token(id) > ? AND token(id) <= ?`,
                [start, cassandra.types.Long.fromString(r.end)],
              );
        total += Number(rs.first()?.n ?? 0);
      }
    }),
  );
  return total;
}

async function ensureSeeded(client: CassandraClient, ks: string, count: number): Promise<string> {
  await migrate(client, { keyspaces: { sunbird: ks }, only: ['sunbird'] });
  const have = await countUsers(client, ks);
  if (have === count) return `reused ${ks} (${count.toLocaleString('en')} users)`;
  if (have > 0) await client.execute(`TRUNCATE ${ks}.user`);
  const started = performance.now();
  let last = 0;
  await seed(
    client,
    {
      users: count,
      orgs: 20,
      courses: 0,
      courseUsers: 0,
      contentsPerCourse: 0,
      seed: SEED,
      keyspace: ks,
      coursesKeyspace: ks,
      concurrency: seedConcurrency,
    },
    (p) => {
      if (p.table.endsWith('.user') && (p.done === p.total || performance.now() - last > 5000)) {
        last = performance.now();
        console.error(`  seeding ${p.table}: ${p.done}/${p.total}`);
      }
    },
  );
  const secs = (performance.now() - started) / 1000;
  return `seeded ${ks}: ${count.toLocaleString('en')} users in ${secs.toFixed(1)} s (${Math.round(count / secs).toLocaleString('en')} rows/s)`;
}

async function startSyncStandin(apiKey: string): Promise<{ url: string; proc: ChildProcess }> {
  const s = await startStandin(['--api-key-env', API_KEY_ENV], { [API_KEY_ENV]: apiKey });
  return { url: `${s.url}/v1/data/sync`, proc: s.proc };
}

/** A fresh queue per measurement, so ElasticMQ's memory is given back right after. */
async function withBenchQueue<T>(sqs: SQSClient, fn: (url: string) => Promise<T>): Promise<[T, number]> {
  const name = `sunbird-dataops-bench-sync-${randomBytes(3).toString('hex')}`;
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
  try {
    const result = await fn(url);
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    return [result, Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0)];
  } finally {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {});
  }
}

const rate = (m: Measurement): number => m.ids / (m.ms / 1000);
const fmt = (n: number): string => Math.round(n).toLocaleString('en');

interface Step {
  name: StepName;
  run: () => Promise<Measurement>;
}

/** Everything a measurement needs from the parent: the seeded keyspaces, the stand-in, SQS. */
interface BenchRig {
  client: CassandraClient;
  sqs: SQSClient;
  standinUrl: string;
  apiKey: string;
}

function benchSteps(rig: BenchRig): Step[] {
  const scanArgs = (ks: string) => [
    ...['--keyspace', ks, '--fetch-size', String(fetchSize), '--scan-concurrency', String(scanConcurrency)],
    ...['--min-tasks', String(plan.minTasks), '--rows-per-task', String(plan.rowsPerTask)],
  ];
  const workerArgs = [
    '--endpoint',
    rig.standinUrl,
    '--ids',
    String(workerIds),
    '--concurrency',
    String(concurrency),
  ];
  const env = { [API_KEY_ENV]: rig.apiKey };
  const fanoutSqs = async (ks: string, expectedIds: number): Promise<Measurement> => {
    const [m, queued] = await withBenchQueue(rig.sqs, (url) =>
      measure('fanout-sqs', [...scanArgs(ks), '--queue-url', url]),
    );
    if (m.ids !== expectedIds || queued !== m.blocks)
      throw new Error(`fan-out enumerated ${m.ids} ids into ${m.blocks} blocks, queue holds ${queued}`);
    return m;
  };
  const all: Step[] = [
    { name: 'raw-scan', run: () => measure('raw-scan', scanArgs(keyspace)) },
    { name: 'scan-noop', run: () => measure('scan-noop', scanArgs(keyspace)) },
    { name: 'fanout-sqs', run: () => fanoutSqs(keyspace, users) },
    { name: 'fanout-sqs-small', run: () => fanoutSqs(keyspaceFor(smallUsers), smallUsers) },
    { name: 'worker-raw', run: () => measure('worker-raw', workerArgs, env) },
    { name: 'worker-ours', run: () => measure('worker-ours', workerArgs, env) },
    { name: 'worker-ledger', run: () => measure('worker-ledger', workerArgs, env) },
  ];
  return all.filter((s) => steps.has(s.name) && !(s.name === 'fanout-sqs-small' && smallUsers === users));
}

/** Every step once per round, the order alternating so drift (compaction, other load) favours no side. */
async function interleave(list: Step[]): Promise<Map<StepName, Measurement[]>> {
  const results = new Map<StepName, Measurement[]>(list.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const step of r % 2 ? [...list].reverse() : list) {
      const m = await step.run();
      results.get(step.name)!.push(m);
      console.error(
        `  round ${r + 1}/${rounds} ${step.name.padEnd(16)} ${fmt(rate(m)).padStart(10)} ids/s  RSS ${fmt(m.peakRssMb)} MB, heap ${fmt(m.peakHeapMb)} MB`,
      );
    }
  }
  return results;
}

async function parent(): Promise<void> {
  const client = cassandraClient(4);
  const sqs = createSqsClient({ region: 'us-east-1', endpoint: SQS_ENDPOINT });
  const apiKey = randomBytes(12).toString('hex');
  let standin: ChildProcess | undefined;
  try {
    console.error(`bench sync: ${users.toLocaleString('en')} users, ${rounds} rounds`);
    if (SCAN_STEPS.some((s) => steps.has(s))) {
      console.error(`  ${await ensureSeeded(client, keyspace, users)}`);
      if (smallUsers !== users && steps.has('fanout-sqs-small'))
        console.error(`  ${await ensureSeeded(client, keyspaceFor(smallUsers), smallUsers)}`);
    }
    await migrate(client, { keyspaces: { ops: opsKeyspace }, only: ['ops'] });
    const s = await startSyncStandin(apiKey);
    standin = s.proc;
    const results = await interleave(benchSteps({ client, sqs, standinUrl: s.url, apiKey }));
    const med = (name: StepName) => median(results.get(name)?.map(rate) ?? []);
    printTable(results, med);
    printSummary(med);
  } finally {
    standin?.kill('SIGTERM');
    await client.shutdown();
    sqs.destroy();
  }
}

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const check = (ok: boolean) => (ok ? 'met' : 'MISSED');

function printTable(results: Map<StepName, Measurement[]>, med: (name: StepName) => number): void {
  const has = (...names: StepName[]) => names.every((n) => results.has(n));
  const rss = (name: StepName) => median(results.get(name)!.map((m) => m.peakRssMb));
  const heap = (name: StepName) => median(results.get(name)!.map((m) => m.peakHeapMb));
  const small: StepName = smallUsers === users ? 'fanout-sqs' : 'fanout-sqs-small';
  const versus = (label: string, size: string, ours: StepName, base: StepName, target: number | null) =>
    has(ours, base)
      ? [
          label,
          size,
          `${fmt(med(ours))} ids/s`,
          `${fmt(med(base))} ids/s`,
          ratio(med(ours), med(base)),
          target === null
            ? '(information)'
            : `≥ ${target.toFixed(1)}× (${check(med(ours) >= target * med(base))})`,
        ]
      : null;
  const rows = [
    ['measure', 'size', 'ours (median)', 'baseline (median)', 'ratio', 'target'],
    versus(
      'fan-out: token-range scan → ElasticMQ vs single-stream `SELECT id`',
      `${fmt(users)} ids`,
      'fanout-sqs',
      'raw-scan',
      0.8,
    ),
    versus(
      'token-range scan → no-op queue vs single-stream `SELECT id`',
      `${fmt(users)} ids`,
      'scan-noop',
      'raw-scan',
      1.0,
    ),
    versus(
      `worker (\`processBlock\`) → stand-in vs bare undici POST loop, sleep 0, ${concurrency} in flight`,
      `${fmt(workerIds)} ids`,
      'worker-ours',
      'worker-raw',
      0.7,
    ),
    versus(
      'worker with the Cassandra run ledger (grouped outcome writes) vs the same loop',
      `${fmt(workerIds)} ids`,
      'worker-ledger',
      'worker-raw',
      0.8,
    ),
    has('fanout-sqs', small)
      ? [
          'peak RSS of the ElasticMQ fan-out (VmHWM)',
          `${fmt(smallUsers)} → ${fmt(users)} rows`,
          `${fmt(rss(small))} MB → ${fmt(rss('fanout-sqs'))} MB`,
          '',
          ratio(rss('fanout-sqs'), rss(small)),
          `< 250 MB, heap flat (${check(rss('fanout-sqs') < 250 && heap('fanout-sqs') < heap(small) * 1.5)})`,
        ]
      : null,
    has('fanout-sqs', small)
      ? [
          'peak V8 heap in use during that fan-out (sampled every 25 ms)',
          `${fmt(smallUsers)} → ${fmt(users)} rows`,
          `${fmt(heap(small))} MB → ${fmt(heap('fanout-sqs'))} MB`,
          '',
          ratio(heap('fanout-sqs'), heap(small)),
          '(information)',
        ]
      : null,
  ].filter((row): row is string[] => row !== null);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log('');
  console.log(line(rows[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows.slice(1)) console.log(line(row));
  console.log('');
  console.log(
    `medians of ${rounds} interleaved rounds; block size ${BLOCK_SIZE}, fetch size ${fetchSize} ` +
      `(baseline ${BASELINE_FETCH_SIZE}), ` +
      `${scanConcurrency} ranges scanned at once; node ${process.version}; ` +
      `\`npm run bench -- sync ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'),
  );
}

/** The summary line `bench -- all` reads: each ratio against the issue's target. */
function printSummary(med: (name: StepName) => number): void {
  const summary = (measure: string, ours: StepName, base: StepName, at: number): ResultRow | null =>
    steps.has(ours) && steps.has(base)
      ? {
          measure,
          value: `${fmt(med(ours))} vs ${fmt(med(base))} ids/s`,
          ratio: med(ours) / med(base),
          target: `≥ ${at.toFixed(1)}×`,
          met: med(ours) / med(base) >= at,
        }
      : null;
  printResult({
    bench: 'sync',
    rows: [
      summary(
        'fan-out (token-range scan → ElasticMQ) vs one raw `SELECT id` stream',
        'fanout-sqs',
        'raw-scan',
        0.8,
      ),
      summary('token-range scan → no-op queue vs the raw stream', 'scan-noop', 'raw-scan', 1.0),
      summary('worker (`processBlock`) vs a bare undici loop', 'worker-ours', 'worker-raw', 0.7),
      summary('worker with the run ledger vs a bare undici loop', 'worker-ledger', 'worker-raw', 0.8),
    ].filter((r): r is ResultRow => r !== null),
  });
}

try {
  if (values.role) await child(values.role);
  else await parent();
  process.exit(0);
} catch (err) {
  console.error(
    `bench sync${values.role ? ` (${values.role})` : ''}: ${err instanceof Error ? err.message : err}`,
  );
  process.exit(1);
}
