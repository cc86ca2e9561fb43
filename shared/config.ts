/**
 * One configuration object for every job, built from (lowest to highest precedence):
 * built-in defaults → environment variables → explicit overrides (CLI flags, Lambda payloads).
 *
 * Every setting can be named three ways: its key (`sync.blockSize`), its environment variable
 * (`SYNC_BLOCK_SIZE`) and, where the Talend jobs had one, the original parameter name
 * (`sunbird_sync_block_size`), so operators' existing runbooks keep working.
 */
import { z } from 'zod';
import { BadInputError } from '#shared/core/errors.ts';
import { registerSecret } from '#shared/redact.ts';

export class ConfigError extends BadInputError {
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
/** A Kafka topic or group name; `{env}` stands for SUNBIRD_ENV (see `resolveEnvName`). */
const topic = str.regex(/^[\w.{}-]+$/, { error: 'expected a topic name (letters, digits, . _ - and {env})' });
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
  'sync.onlyMissing': {
    env: 'SYNC_ONLY_MISSING',
    flag: '--only-missing',
    default: 'false',
    schema: bool,
    description:
      'Sync only the ids the search index lacks: each scanned page is checked against `es.index` first (drift repair)',
  },
  'sync.stale': {
    env: 'SYNC_STALE',
    flag: '--stale',
    default: 'false',
    schema: bool,
    description:
      "With --only-missing (and in `diff`): also the ids whose Cassandra `updateddate` is newer than the indexed document's",
  },
  'es.url': {
    env: 'ES_URL',
    flag: '--es-url',
    default: '',
    schema: z.union([z.literal(''), z.url({ error: 'expected an http(s) URL' })]),
    description:
      'Elasticsearch / OpenSearch base URL (for `diff` and `--only-missing`); credentials go in ES_USERNAME/ES_PASSWORD or ES_API_KEY',
  },
  'es.index': {
    env: 'ES_INDEX',
    flag: '--es-index',
    default: '',
    schema: str.regex(/^[^\\/*?"<>| ,#A-Z:]*$/, { error: 'expected an index or alias name (lowercase)' }),
    description:
      "Index or alias of the table's documents; empty = userorg-service's `user_alias` / `org_alias`",
  },
  'es.username': {
    env: 'ES_USERNAME',
    flag: '--es-username',
    default: '',
    schema: str,
    description: 'User for basic authentication to the search engine',
  },
  'es.password': {
    env: 'ES_PASSWORD',
    flag: '--es-password',
    default: '',
    secret: true,
    schema: str,
    description: "Search engine user's password (secret)",
  },
  'es.apiKey': {
    env: 'ES_API_KEY',
    flag: '--es-api-key',
    default: '',
    secret: true,
    schema: str,
    description: 'Search engine API key (the encoded form), sent as `Authorization: ApiKey <key>` (secret)',
  },
  'es.caFile': {
    env: 'ES_CA_FILE',
    flag: '--es-ca-file',
    default: '',
    schema: str,
    description: "PEM file of the CA that signed the search engine's certificate (https URLs)",
  },
  'es.timeoutMs': {
    env: 'ES_TIMEOUT_MS',
    flag: '--es-timeout',
    default: '30000',
    schema: int.min(1),
    description: 'Timeout for one search engine call (connect, headers, body), in ms',
  },
  'es.maxRetries': {
    env: 'ES_MAX_RETRIES',
    flag: '--es-max-retries',
    default: '3',
    schema: int.min(0),
    description: 'Retries of one search engine read on 429, 5xx and network errors',
  },
  'es.updatedField': {
    env: 'ES_UPDATED_FIELD',
    flag: '--es-updated-field',
    default: 'updateddate',
    schema: str.regex(/^[\w.@-]+$/, { error: 'expected a field name' }),
    description: "The documents' field holding the row's `updateddate` (for --stale)",
  },
  'es.paging': {
    env: 'ES_PAGING',
    flag: '--es-paging',
    default: 'auto',
    schema: z.enum(['auto', 'pit', 'scroll'], { error: 'expected auto, pit or scroll' }),
    description:
      'How an index is listed: `pit` (point in time + search_after), `scroll`, or `auto` (pit on Elasticsearch ≥ 7.12, else scroll)',
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
  'keycloak.baseUrl': {
    env: 'KEYCLOAK_BASE_URL',
    flag: '--keycloak-url',
    default: '',
    schema: z.union([z.literal(''), z.url({ error: 'expected an http(s) URL' })]),
    description: 'Keycloak base URL (e.g. `https://host/auth` for Keycloak < 17); empty means no Admin API',
  },
  'keycloak.realm': {
    env: 'KEYCLOAK_REALM',
    flag: '--keycloak-realm',
    default: '',
    schema: str,
    description: 'Only delete users of this realm (by name); empty means every realm',
  },
  'keycloak.adminRealm': {
    env: 'KEYCLOAK_ADMIN_REALM',
    flag: '--keycloak-admin-realm',
    default: 'master',
    schema: str.min(1),
    description: 'Realm the admin user or client logs in to',
  },
  'keycloak.adminUser': {
    env: 'KEYCLOAK_ADMIN_USER',
    flag: '--keycloak-admin-user',
    default: '',
    schema: str,
    description: 'Admin user for the password grant (with `admin-cli`)',
  },
  'keycloak.adminPassword': {
    env: 'KEYCLOAK_ADMIN_PASSWORD',
    flag: '--keycloak-admin-password',
    default: '',
    secret: true,
    schema: str,
    description: "Admin user's password (secret)",
  },
  'keycloak.clientId': {
    env: 'KEYCLOAK_CLIENT_ID',
    flag: '--keycloak-client-id',
    default: 'admin-cli',
    schema: str.min(1),
    description: 'Client used to obtain the admin token',
  },
  'keycloak.clientSecret': {
    env: 'KEYCLOAK_CLIENT_SECRET',
    flag: '--keycloak-client-secret',
    default: '',
    secret: true,
    schema: str,
    description:
      'Client secret; when set, the client-credentials grant is used instead of the password grant (secret)',
  },
  'keycloak.protectedRoles': {
    env: 'KEYCLOAK_PROTECTED_ROLES',
    flag: '--keycloak-protected-roles',
    default: 'admin',
    schema: list.pipe(z.array(z.string()).min(1, { error: 'expected at least one role name' })),
    description: 'Role names (realm or client) whose holders are never deleted (comma-separated)',
  },
  'keycloak.limit': {
    env: 'KEYCLOAK_DELETE_LIMIT',
    flag: '--keycloak-limit',
    default: '20000',
    schema: int.min(1),
    description: 'Most Keycloak users selected per run',
  },
  'keycloak.deleteMode': {
    env: 'KEYCLOAK_DELETE_MODE',
    flag: '--keycloak-delete-mode',
    default: 'admin-api',
    schema: z.enum(['admin-api', 'sql'], { error: 'expected admin-api or sql' }),
    description: '`admin-api` (Keycloak deletes and drops its caches) or `sql` (one transaction per block)',
  },
  'keycloak.concurrency': {
    env: 'KEYCLOAK_CONCURRENCY',
    flag: '--keycloak-concurrency',
    default: '4',
    schema: int.min(1),
    description: 'Parallel Admin API deletions (and 8× as many Cassandra look-ups)',
  },
  'keycloak.maxRetries': {
    env: 'KEYCLOAK_MAX_RETRIES',
    flag: '--keycloak-max-retries',
    default: '3',
    schema: int.min(0),
    description: 'Retries of one Admin API call on 5xx, 429 and network errors',
  },
  'keycloak.timeoutMs': {
    env: 'KEYCLOAK_TIMEOUT_MS',
    flag: '--keycloak-timeout',
    default: '30000',
    schema: int.min(1),
    description: 'Timeout for one Admin API call, in ms',
  },
  'kafka.brokers': {
    env: 'KAFKA_BROKERS',
    flag: '--kafka-brokers',
    default: '127.0.0.1:9092',
    schema: list.pipe(z.array(z.string()).min(1)),
    description: 'Kafka bootstrap brokers (comma-separated)',
  },
  'kafka.auth': {
    env: 'KAFKA_AUTH',
    flag: '--kafka-auth',
    default: 'none',
    schema: z.enum(['none', 'scram', 'iam'], { error: 'expected none, scram or iam' }),
    description:
      'Kafka client authentication: `none`, `scram` (SASL/SCRAM-SHA-512 over TLS) or `iam` (MSK IAM: SASL/OAUTHBEARER over TLS)',
  },
  'kafka.saslUsername': {
    env: 'KAFKA_SASL_USERNAME',
    flag: '--kafka-sasl-username',
    default: '',
    schema: str,
    description: 'SASL/SCRAM user name (with `KAFKA_AUTH=scram`)',
  },
  'kafka.saslPassword': {
    env: 'KAFKA_SASL_PASSWORD',
    flag: '--kafka-sasl-password',
    default: '',
    secret: true,
    schema: str,
    description: 'SASL/SCRAM password (with `KAFKA_AUTH=scram`) (secret)',
  },
  'kafka.tls': {
    env: 'KAFKA_TLS',
    flag: '--kafka-tls',
    default: 'false',
    schema: bool,
    description: 'Connect to Kafka over TLS (always on with `KAFKA_AUTH=scram` or `iam`)',
  },
  'kafka.env': {
    env: 'SUNBIRD_ENV',
    flag: '--env',
    default: 'local',
    schema: str.regex(/^[\w.-]+$/),
    description: 'Sunbird environment name used in topic names (`{env}.lms.user.account.merge`)',
  },
  'kafka.clientId': {
    env: 'KAFKA_CLIENT_ID',
    flag: '--kafka-client-id',
    default: 'sunbird-dataops',
    schema: str.min(1),
    description: 'Kafka client id of producers and consumers',
  },
  'merge.inputTopic': {
    env: 'MERGE_INPUT_TOPIC',
    flag: '--input-topic',
    original: 'kafka.input.topic',
    default: '{env}.lms.user.account.merge',
    schema: topic,
    description: 'Topic of merge requests (`{env}` is replaced by SUNBIRD_ENV)',
  },
  'merge.failedTopic': {
    env: 'MERGE_FAILED_TOPIC',
    flag: '--failed-topic',
    original: 'kafka.output.failed.topic',
    default: '{env}.learning.events.failed',
    schema: topic,
    description: 'Topic of failed events (`{env}` is replaced by SUNBIRD_ENV)',
  },
  'merge.courseBatchTopic': {
    env: 'MERGE_COURSE_BATCH_TOPIC',
    flag: '--course-batch-topic',
    original: 'kafka.output.course.batch.updater.topic',
    default: '{env}.coursebatch.job.request',
    schema: topic,
    description: 'Topic of batch-enrolment-sync requests (`{env}` is replaced by SUNBIRD_ENV)',
  },
  'merge.groupId': {
    env: 'MERGE_GROUP_ID',
    flag: '--group-id',
    original: 'kafka.groupId',
    default: '{env}-merge-user-courses-group',
    schema: topic,
    description: 'Consumer group of the local MSK bridge (`{env}` is replaced by SUNBIRD_ENV)',
  },
  'merge.consumptionTable': {
    env: 'MERGE_CONSUMPTION_TABLE',
    flag: '--consumption-table',
    default: 'user_content_consumption',
    schema: str.regex(/^\w+$/, { error: 'expected a table name' }),
    description: 'Content-consumption table in the courses keyspace',
  },
  'merge.enrolmentsTable': {
    env: 'MERGE_ENROLMENTS_TABLE',
    flag: '--enrolments-table',
    default: 'user_enrolments',
    schema: str.regex(/^\w+$/, { error: 'expected a table name' }),
    description: 'Enrolments table in the courses keyspace',
  },
  'merge.activityAggTable': {
    env: 'MERGE_ACTIVITY_AGG_TABLE',
    flag: '--activity-agg-table',
    default: 'user_activity_agg',
    schema: str.regex(/^\w+$/, { error: 'expected a table name' }),
    description: 'Activity-aggregates table in the courses keyspace',
  },
  'merge.writeConcurrency': {
    env: 'MERGE_WRITE_CONCURRENCY',
    flag: '--write-concurrency',
    default: '32',
    schema: int.min(1, { error: 'expected at least 1' }),
    description: 'Concurrent Cassandra writes while applying one merge',
  },
  'merge.reportBatchItemFailures': {
    env: 'MERGE_REPORT_BATCH_ITEM_FAILURES',
    flag: '--report-batch-item-failures',
    default: 'false',
    schema: bool,
    description:
      'Answer an MSK batch with a partial batch response instead of throwing (needs ReportBatchItemFailures on a provisioned-mode event source mapping)',
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
  'queues.scan': {
    env: 'SCAN_QUEUE_URL',
    flag: '--scan-queue-url',
    default: '',
    schema: str,
    description: 'URL of the scan-task queue (token sub-ranges handed to the fan-out function)',
  },
  'queues.sync': {
    env: 'SYNC_QUEUE_URL',
    flag: '--queue-url',
    default: '',
    schema: str,
    description:
      'URL of the sync queue (blocks for the sync-block function); empty in the CLI = in-process queue',
  },
  'queues.delete': {
    env: 'DELETE_QUEUE_URL',
    flag: '--delete-queue-url',
    default: '',
    schema: str,
    description: 'URL of the delete queue (synced blocks for the Keycloak deletion function)',
  },
  'scan.rowsPerTask': {
    env: 'SCAN_ROWS_PER_TASK',
    flag: '--rows-per-task',
    default: '2000000',
    schema: int.min(1000),
    description: 'Target rows per token sub-range task (sized from system.size_estimates)',
  },
  'scan.fetchSize': {
    env: 'SCAN_FETCH_SIZE',
    flag: '--fetch-size',
    // 1000-row pages scan as fast as 5000-row ones here, but the larger pages, held while their blocks
    // are enqueued, made V8 grow the heap: peak RSS of a 1M-row fan-out ~290 MB at 5000, ~220 MB at 1000.
    default: '1000',
    schema: int.min(10).max(100_000),
    description: 'Ids read per Cassandra page during a scan (a checkpoint can be taken after each page)',
  },
  'scan.minTasks': {
    env: 'SCAN_MIN_TASKS',
    flag: '--min-tasks',
    default: '64',
    schema: int.min(1),
    description: 'Minimum number of token sub-range tasks per full scan (parallelism on small tables)',
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

/** Replaces `{env}` in a topic or group name with the Sunbird environment (`kafka.env`). */
export function resolveEnvName(name: string, env: string): string {
  return name.replaceAll('{env}', env);
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
