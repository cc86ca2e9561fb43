/**
 * One configuration object for every job, built from (lowest to highest precedence):
 * built-in defaults → environment variables → explicit overrides (CLI flags, Lambda payloads).
 *
 * Every setting can be named three ways: its key (`sync.blockSize`), its environment variable
 * (`SYNC_BLOCK_SIZE`) and, where the Talend jobs had one, the original parameter name
 * (`sunbird_sync_block_size`), so operators' existing runbooks keep working.
 */
import { z } from 'zod';
import { registerSecret } from '#shared/redact.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const bool = z.preprocess(
  (v) => {
    if (typeof v === 'boolean') return v;
    if (typeof v !== 'string') return v;
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'y', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'n', 'off'].includes(s)) return false;
    return v;
  },
  z.boolean({ error: 'expected true or false' }),
);

const int = z.coerce.number({ error: 'expected a whole number' }).int({ error: 'expected a whole number' });
const port = int
  .min(1, { error: 'expected a port 1-65535' })
  .max(65535, { error: 'expected a port 1-65535' });
const str = z.string();
const list = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z.array(z.string()),
);

const CONSISTENCIES = [
  'ONE',
  'TWO',
  'THREE',
  'QUORUM',
  'ALL',
  'LOCAL_QUORUM',
  'EACH_QUORUM',
  'LOCAL_ONE',
] as const;

interface SettingDef {
  env: string;
  flag: string;
  original?: string;
  default?: string;
  secret?: boolean;
  schema: z.ZodType;
  description: string;
}

/** The single registry of settings: README's configuration table is generated from this. */
export const SETTINGS = {
  'cassandra.hosts': {
    env: 'CASSANDRA_HOSTS',
    flag: '--cassandra-host',
    original: 'sunbird_cassandra_server',
    default: '127.0.0.1',
    schema: list.pipe(z.array(z.string()).min(1, { error: 'expected at least one host' })),
    description: 'Cassandra contact points (comma-separated)',
  },
  'cassandra.port': {
    env: 'CASSANDRA_PORT',
    flag: '--cassandra-port',
    original: 'sunbird_cassandra_port',
    default: '9042',
    schema: port,
    description: 'Cassandra CQL port',
  },
  'cassandra.username': {
    env: 'CASSANDRA_USERNAME',
    flag: '--cassandra-username',
    original: 'sunbird_cassandra_username',
    default: '',
    schema: str,
    description: 'Cassandra user; empty means no authentication',
  },
  'cassandra.password': {
    env: 'CASSANDRA_PASSWORD',
    flag: '--cassandra-password',
    original: 'sunbird_cassandra_password',
    default: '',
    secret: true,
    schema: str,
    description: 'Cassandra password (secret)',
  },
  'cassandra.localDataCenter': {
    env: 'CASSANDRA_LOCAL_DC',
    flag: '--cassandra-local-dc',
    default: 'datacenter1',
    schema: str.min(1),
    description: 'Cassandra local data centre for the load-balancing policy',
  },
  'cassandra.tls': {
    env: 'CASSANDRA_TLS',
    flag: '--cassandra-tls',
    default: 'false',
    schema: bool,
    description: 'Connect to Cassandra over TLS',
  },
  'cassandra.consistency': {
    env: 'CASSANDRA_CONSISTENCY',
    flag: '--cassandra-consistency',
    default: 'LOCAL_QUORUM',
    schema: z.preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), z.enum(CONSISTENCIES)),
    description: 'Consistency level for reads and writes',
  },
  'cassandra.keyspace': {
    env: 'SUNBIRD_KEYSPACE',
    flag: '--keyspace',
    default: 'sunbird',
    schema: str.regex(/^\w+$/, { error: 'expected a keyspace name' }),
    description: 'Keyspace of the user and organisation tables',
  },
  'cassandra.coursesKeyspace': {
    env: 'COURSES_KEYSPACE',
    flag: '--courses-keyspace',
    original: 'lms-cassandra.keyspace',
    default: 'sunbird_courses',
    schema: str.regex(/^\w+$/, { error: 'expected a keyspace name' }),
    description: 'Keyspace of the course-progress tables',
  },
  'cassandra.opsKeyspace': {
    env: 'DATAOPS_KEYSPACE',
    flag: '--ops-keyspace',
    default: 'sunbird_dataops',
    schema: str.regex(/^\w+$/, { error: 'expected a keyspace name' }),
    description: "This tool's own keyspace (run ledger, merge journal)",
  },
  'sync.table': {
    env: 'SYNC_TABLE',
    flag: '--table',
    original: 'sunbird_cassandra_table',
    default: '',
    schema: z.enum(['', 'user', 'organisation'], { error: 'expected user or organisation' }),
    description: 'Table whose ids are synced (`user` or `organisation`)',
  },
  'sync.objectType': {
    env: 'SYNC_OBJECT_TYPE',
    flag: '--object-type',
    original: 'sunbird_sync_object_type',
    default: '',
    schema: z.enum(['', 'user', 'organisation', 'location'], {
      error: 'expected user, organisation or location',
    }),
    description: "The Sync API's objectType (defaults to the table)",
  },
  'syncApi.endpoint': {
    env: 'SYNC_API_ENDPOINT',
    flag: '--sync-api-endpoint',
    original: 'sunbird_sync_api_endpoint',
    default: 'http://localhost:9000/v1/data/sync',
    schema: z.url({ error: 'expected an http(s) URL' }),
    description: 'Sync API URL (`{domain}/api/data/v1/index/sync` behind the gateway)',
  },
  'syncApi.apiKey': {
    env: 'SYNC_API_KEY',
    flag: '--sync-api-key',
    original: 'sunbird_sync_api_key',
    default: '',
    secret: true,
    schema: str,
    description: 'Sync API key, sent as `Authorization: Bearer <key>` (secret)',
  },
  'syncApi.maxRetries': {
    env: 'SYNC_API_MAX_RETRIES',
    flag: '--max-retries',
    default: '5',
    schema: int.min(0),
    description: 'Retries per block on 429, 5xx and network errors',
  },
  'syncApi.timeoutMs': {
    env: 'SYNC_API_TIMEOUT_MS',
    flag: '--sync-api-timeout',
    default: '30000',
    schema: int.min(1),
    description: 'Timeout for one Sync API call (headers and body), in ms',
  },
  'sync.blockSize': {
    env: 'SYNC_BLOCK_SIZE',
    flag: '--block-size',
    original: 'sunbird_sync_block_size',
    default: '100',
    schema: int,
    description: 'Ids per Sync API call; a value ≤ 0 falls back to 100',
  },
  'sync.sleepMs': {
    env: 'SYNC_SLEEP_TIME',
    flag: '--sleep-time',
    original: 'sunbird_sync_sleep_time',
    default: '5000',
    schema: int,
    description: 'Pause between Sync API calls in ms; a value ≤ 0 falls back to block size × 100',
  },
  'sync.idFile': {
    env: 'SYNC_ID_FILE',
    flag: '--id-file',
    original: 'sunbird_sync_id_file',
    default: '',
    schema: str,
    description: 'File of ids, one per line; when given, Cassandra is not scanned',
  },
  'sync.dryRun': {
    env: 'DRY_RUN',
    flag: '--dry-run',
    original: 'dry_run',
    default: 'true',
    schema: bool,
    description: 'When true no Sync API call (and no deletion) is made',
  },
  'sync.verify': {
    env: 'SYNC_VERIFY',
    flag: '--verify',
    default: 'false',
    schema: bool,
    description: 'Ask the Sync API to index synchronously and record unconfirmed ids as failed',
  },
  'postgres.url': {
    env: 'KEYCLOAK_DB_URL',
    flag: '--keycloak-db-url',
    default: 'postgres://postgres@127.0.0.1:5432/keycloak',
    schema: str.min(1),
    description: "Keycloak's PostgreSQL connection URL (the password may come from KEYCLOAK_DB_PASSWORD)",
  },
  'postgres.password': {
    env: 'KEYCLOAK_DB_PASSWORD',
    flag: '--keycloak-db-password',
    default: '',
    secret: true,
    schema: str,
    description: "Keycloak's PostgreSQL password (secret)",
  },
  'kafka.brokers': {
    env: 'KAFKA_BROKERS',
    flag: '--kafka-brokers',
    default: '127.0.0.1:9092',
    schema: list.pipe(z.array(z.string()).min(1)),
    description: 'Kafka bootstrap brokers (comma-separated)',
  },
  'kafka.env': {
    env: 'SUNBIRD_ENV',
    flag: '--env',
    default: 'local',
    schema: str.regex(/^[\w.-]+$/),
    description: 'Sunbird environment name used in topic names (`{env}.lms.user.account.merge`)',
  },
  'aws.region': {
    env: 'AWS_REGION',
    flag: '--region',
    default: 'us-east-1',
    schema: str.min(1),
    description: 'AWS region',
  },
  'sqs.endpoint': {
    env: 'SQS_ENDPOINT',
    flag: '--sqs-endpoint',
    default: '',
    schema: str,
    description: 'SQS endpoint override (ElasticMQ locally); empty means AWS',
  },
  'log.level': {
    env: 'LOG_LEVEL',
    flag: '--log-level',
    default: 'INFO',
    schema: z.preprocess(
      (v) => (typeof v === 'string' ? v.toUpperCase() : v),
      z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT']),
    ),
    description: 'Log level',
  },
} as const satisfies Record<string, SettingDef>;

export type SettingKey = keyof typeof SETTINGS;
type SettingValue<K extends SettingKey> = z.output<(typeof SETTINGS)[K]['schema']>;
export type FlatConfig = { [K in SettingKey]: SettingValue<K> };

const byAlias = new Map<string, SettingKey>();
for (const [key, def] of Object.entries(SETTINGS) as [SettingKey, SettingDef][]) {
  byAlias.set(key.toLowerCase(), key);
  byAlias.set(def.env.toLowerCase(), key);
  byAlias.set(def.flag.replace(/^--/, '').toLowerCase(), key);
  if (def.original) byAlias.set(def.original.toLowerCase(), key);
}

/** Resolve any accepted name of a setting (key, env var, flag or original Talend name). */
export function settingKeyFor(name: string): SettingKey | undefined {
  return byAlias.get(name.replace(/^--/, '').toLowerCase());
}

export interface LoadConfigOptions {
  env?: Record<string, string | undefined>;
  /** Highest precedence; keys may be any accepted name of a setting. */
  overrides?: Record<string, unknown>;
}

function describe(key: SettingKey): string {
  const def: SettingDef = SETTINGS[key];
  return [def.original, def.flag, def.env].filter(Boolean).join(' / ');
}

export function loadFlatConfig(opts: LoadConfigOptions = {}): FlatConfig {
  const env = opts.env ?? process.env;
  const raw: Partial<Record<SettingKey, unknown>> = {};
  for (const [key, def] of Object.entries(SETTINGS) as [SettingKey, SettingDef][]) {
    raw[key] = def.default;
    const fromOriginalEnv = def.original ? env[def.original] : undefined;
    if (fromOriginalEnv !== undefined) raw[key] = fromOriginalEnv;
    if (env[def.env] !== undefined) raw[key] = env[def.env];
  }
  for (const [name, value] of Object.entries(opts.overrides ?? {})) {
    if (value === undefined) continue;
    const key = settingKeyFor(name);
    if (!key) throw new ConfigError(`unknown setting "${name}"`);
    raw[key] = value;
  }
  const out: Partial<Record<SettingKey, unknown>> = {};
  for (const [key, def] of Object.entries(SETTINGS) as [SettingKey, SettingDef][]) {
    const parsed = def.schema.safeParse(raw[key]);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => i.message).join('; ');
      const shown = def.secret ? '<secret>' : JSON.stringify(raw[key]);
      throw new ConfigError(`invalid ${describe(key)}: ${why} (got ${shown})`);
    }
    out[key] = parsed.data;
    if (def.secret && typeof parsed.data === 'string') registerSecret(parsed.data);
  }
  return out as FlatConfig;
}

/** The original jobs' fallbacks: block size ≤ 0 → 100; sleep ≤ 0 → block size × 100 ms. */
export function effectivePacing(blockSize: number, sleepMs: number): { blockSize: number; sleepMs: number } {
  const size = blockSize > 0 ? blockSize : 100;
  return { blockSize: size, sleepMs: sleepMs > 0 ? sleepMs : size * 100 };
}

/**
 * Parse Talend-style `--context_param name=value` pairs (also `name="value"`), as in the old runbooks.
 * Returns the pairs keyed by name; unknown names are reported by loadFlatConfig.
 */
export function parseContextParams(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--context_param expects name=value, got "${pair}"`);
    const name = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && (value.startsWith('"') || value.startsWith("'")) && value.endsWith(value[0]!)) {
      value = value.slice(1, -1);
    }
    out[name] = value;
  }
  return out;
}

/** Markdown rows for the README configuration table. */
export function settingsTable(): string {
  const rows = [
    '| setting | env var | CLI flag | original name | default | meaning |',
    '|---|---|---|---|---|---|',
  ];
  for (const [key, def] of Object.entries(SETTINGS) as [SettingKey, SettingDef][]) {
    rows.push(
      `| \`${key}\` | \`${def.env}\` | \`${def.flag}\` | ${def.original ? `\`${def.original}\`` : '—'} | ${
        def.default === '' ? '""' : `\`${def.default}\``
      } | ${def.description} |`,
    );
  }
  return rows.join('\n');
}
