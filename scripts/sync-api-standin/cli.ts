/**
 * `npm run sync-api-standin -- --port 9000 --api-key-env SYNC_API_KEY [--cassandra 127.0.0.1:9042]
 * [--opensearch http://127.0.0.1:9200]`: the Sync API stand-in as a process of its own (`--help` lists
 * every knob). With `--opensearch` it indexes accepted ids for real, reading rows from Cassandra.
 */
import { Command, InvalidArgumentError } from 'commander';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import { SYNC_ROUTES, VERIFY_TIMEOUT_MS } from './contract.ts';
import { cassandraExists } from './existence.ts';
import { DEFAULT_INDEX_NAMES } from './indexer.ts';
import { type SyncApiStandinOptions, startSyncApiStandin } from './server.ts';

interface CliOptions {
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
  opensearch?: string | true;
  userIndex: string;
  orgIndex: string;
  opensearchTimeoutMs: number;
  record: boolean;
  capacity?: number;
  capacityBurst?: number;
  capacityLatencyMs?: number;
}

const DEFAULT_CASSANDRA = '127.0.0.1:9042';
const DEFAULT_OPENSEARCH = 'http://127.0.0.1:9200';

function num(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('not a number');
  return n;
}

function program(): Command {
  return new Command('sync-api-standin')
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
    .option(
      '--cassandra [host:port]',
      `verified mode checks ids against Cassandra (default ${DEFAULT_CASSANDRA})`,
    )
    .option('--keyspace <name>', 'keyspace of the user/organisation tables', 'sunbird')
    .option('--local-dc <name>', 'Cassandra local data centre', 'datacenter1')
    .option(
      '--opensearch [url]',
      `index accepted ids for real, rows read from Cassandra (default ${DEFAULT_OPENSEARCH})`,
    )
    .option(
      '--user-index <name>',
      "index of users (userorg-service's user_index_alias)",
      DEFAULT_INDEX_NAMES.user,
    )
    .option(
      '--org-index <name>',
      "index of organisations (userorg-service's org_index_alias)",
      DEFAULT_INDEX_NAMES.organisation,
    )
    .option('--opensearch-timeout-ms <ms>', 'longest wait for one OpenSearch call', num, 30_000)
    .option('--no-record', 'do not record requests (for long benchmarks)')
    .option(
      '--capacity <rps>',
      'admit this many requests per second (token bucket); beyond it 429 with Retry-After (change it with POST /__admin/capacity)',
      num,
    )
    .option('--capacity-burst <n>', 'tokens the bucket holds (default: 0.1 s worth, at least 1)', num)
    .option(
      '--capacity-latency-ms <ms>',
      'latency at no load; it doubles at full capacity (default 20)',
      num,
    );
}

function connectCassandra(address: string, localDc: string): CassandraClient {
  const [h, p] = address.split(':');
  return createCassandraClient({
    hosts: [h || '127.0.0.1'],
    port: Number(p || 9042),
    localDataCenter: localDc,
    consistency: 'LOCAL_ONE',
  });
}

/** Where verified mode's answers come from: the index, Cassandra, or "every id exists". */
function backing(o: CliOptions, cassandra: CassandraClient | undefined): Partial<SyncApiStandinOptions> {
  if (!cassandra) return {};
  if (o.opensearch) {
    return {
      index: {
        cassandra,
        keyspace: o.keyspace,
        opensearch: {
          url: o.opensearch === true ? DEFAULT_OPENSEARCH : o.opensearch,
          timeoutMs: o.opensearchTimeoutMs,
        },
        indexNames: { user: o.userIndex, organisation: o.orgIndex },
      },
    };
  }
  return { exists: cassandraExists({ client: cassandra, keyspace: o.keyspace }) };
}

function describe(o: CliOptions, opts: Partial<SyncApiStandinOptions>): string {
  if (opts.index) {
    return `indexing into ${opts.index.opensearch.url} (${o.userIndex}, ${o.orgIndex}) from Cassandra keyspace ${o.keyspace}`;
  }
  return `existence ${opts.exists ? `Cassandra keyspace ${o.keyspace}` : 'all ids exist'}`;
}

async function main(): Promise<void> {
  const cmd = program().parse();
  const o = cmd.opts<CliOptions>();
  const apiKey = o.apiKeyEnv ? process.env[o.apiKeyEnv] : o.apiKey;
  if (o.apiKeyEnv && !apiKey) cmd.error(`environment variable ${o.apiKeyEnv} is empty`);

  const cassandraAt =
    o.cassandra === true
      ? DEFAULT_CASSANDRA
      : (o.cassandra ?? (o.opensearch ? DEFAULT_CASSANDRA : undefined));
  const cassandra = cassandraAt ? connectCassandra(cassandraAt, o.localDc) : undefined;
  await cassandra?.connect();
  const backed = backing(o, cassandra);

  const standin = await startSyncApiStandin({
    port: o.port,
    host: o.host,
    ...(apiKey ? { apiKey } : {}),
    ...(o.aclDeny ? { aclDeniedKeys: o.aclDeny } : {}),
    ...(o.rateLimit ? { rateLimit: { limit: o.rateLimit, windowMs: o.rateWindowMs } } : {}),
    ...backed,
    onExistsError: (err) =>
      console.error(`existence lookup failed: ${err instanceof Error ? err.message : err}`),
    verifyTimeoutMs: o.verifyTimeoutMs,
    record: o.record,
    ...(o.capacity
      ? {
          capacity: {
            requestsPerSecond: o.capacity,
            ...(o.capacityBurst ? { burst: o.capacityBurst } : {}),
            ...(o.capacityLatencyMs !== undefined ? { baseLatencyMs: o.capacityLatencyMs } : {}),
          },
        }
      : {}),
    faults: {
      ...(o.failureRate !== undefined ? { failureRate: o.failureRate, failureStatus: o.failureStatus } : {}),
      ...(o.resetRate !== undefined ? { resetRate: o.resetRate } : {}),
      ...(o.latencyMs !== undefined ? { latencyMs: o.latencyMs } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
    },
  });
  console.error(
    `Sync API stand-in listening on ${standin.url} (routes ${SYNC_ROUTES.join(', ')}; ` +
      `auth ${apiKey ? 'on' : 'off'}; ${describe(o, backed)}${o.capacity ? `; capacity ${o.capacity} requests/s` : ''})`,
  );
  const stop = async () => {
    await standin.close();
    await cassandra?.shutdown();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(`sync-api-standin: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    process.exit(1);
  });
}
