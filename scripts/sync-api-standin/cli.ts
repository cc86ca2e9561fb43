/**
 * `npm run sync-api-standin -- --port 9000 --api-key-env SYNC_API_KEY --cassandra 127.0.0.1:9042`:
 * the Sync API stand-in as a process of its own (`--help` lists every knob).
 */
import { Command, InvalidArgumentError } from 'commander';
import { SYNC_ROUTES, VERIFY_TIMEOUT_MS } from './contract.ts';
import { cassandraExists, type ExistsFn } from './existence.ts';
import { startSyncApiStandin } from './server.ts';

async function main(): Promise<void> {
  const num = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError('not a number');
    return n;
  };
  const program = new Command('sync-api-standin')
    .description('Local stand-in for the Sunbird Sync API (POST /v1/data/sync, /api/data/v1/index/sync)')
    .option('--port <n>', 'port (0 = any free port)', num, 9000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--api-key <key>', 'required Bearer key (prefer --api-key-env: argv is visible to other users)')
    .option('--api-key-env <name>', 'read the required Bearer key from this environment variable')
    .option('--acl-deny <key...>', 'keys that authenticate but are refused with 403')
    .option('--rate-limit <n>', 'requests allowed per window per key (gateway: 5000/hour)', num)
    .option('--rate-window-ms <ms>', 'rate-limit window', num, 3_600_000)
    .option('--verify-timeout-ms <ms>', 'verified mode answers 500 after this long', num, VERIFY_TIMEOUT_MS)
    .option('--failure-rate <f>', 'fraction of requests answered with --failure-status', num)
    .option('--failure-status <n>', 'status for --failure-rate', num, 500)
    .option('--reset-rate <f>', 'fraction of connections destroyed', num)
    .option('--latency-ms <ms>', 'added to every answer', num)
    .option('--seed <n>', 'seed for --failure-rate/--reset-rate', num)
    .option('--cassandra [host:port]', 'verified mode checks ids against Cassandra (default 127.0.0.1:9042)')
    .option('--keyspace <name>', 'keyspace of the user/organisation tables', 'sunbird')
    .option('--local-dc <name>', 'Cassandra local data centre', 'datacenter1')
    .option('--no-record', 'do not record requests (for long benchmarks)')
    .parse();
  const o = program.opts<{
    port: number;
    host: string;
    apiKey?: string;
    apiKeyEnv?: string;
    aclDeny?: string[];
    rateLimit?: number;
    rateWindowMs: number;
    verifyTimeoutMs: number;
    failureRate?: number;
    failureStatus: number;
    resetRate?: number;
    latencyMs?: number;
    seed?: number;
    cassandra?: string | true;
    keyspace: string;
    localDc: string;
    record: boolean;
  }>();

  const apiKey = o.apiKeyEnv ? process.env[o.apiKeyEnv] : o.apiKey;
  if (o.apiKeyEnv && !apiKey) program.error(`environment variable ${o.apiKeyEnv} is empty`);

  let cassandraClient: { shutdown(): Promise<void> } | undefined;
  let exists: ExistsFn | undefined;
  if (o.cassandra) {
    const { createCassandraClient } = await import('#shared/clients/cassandra.ts');
    const [h, p] = (o.cassandra === true ? '127.0.0.1:9042' : o.cassandra).split(':');
    const client = createCassandraClient({
      hosts: [h || '127.0.0.1'],
      port: Number(p || 9042),
      localDataCenter: o.localDc,
      consistency: 'LOCAL_ONE',
    });
    await client.connect();
    cassandraClient = client;
    exists = cassandraExists({ client, keyspace: o.keyspace });
  }

  const standin = await startSyncApiStandin({
    port: o.port,
    host: o.host,
    ...(apiKey ? { apiKey } : {}),
    ...(o.aclDeny ? { aclDeniedKeys: o.aclDeny } : {}),
    ...(o.rateLimit ? { rateLimit: { limit: o.rateLimit, windowMs: o.rateWindowMs } } : {}),
    ...(exists ? { exists } : {}),
    onExistsError: (err) =>
      console.error(`existence lookup failed: ${err instanceof Error ? err.message : err}`),
    verifyTimeoutMs: o.verifyTimeoutMs,
    record: o.record,
    faults: {
      ...(o.failureRate !== undefined ? { failureRate: o.failureRate, failureStatus: o.failureStatus } : {}),
      ...(o.resetRate !== undefined ? { resetRate: o.resetRate } : {}),
      ...(o.latencyMs !== undefined ? { latencyMs: o.latencyMs } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
    },
  });
  console.error(
    `Sync API stand-in listening on ${standin.url} (routes ${SYNC_ROUTES.join(', ')}; ` +
      `auth ${apiKey ? 'on' : 'off'}; existence ${exists ? `Cassandra keyspace ${o.keyspace}` : 'all ids exist'})`,
  );
  const stop = async () => {
    await standin.close();
    await cassandraClient?.shutdown();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
