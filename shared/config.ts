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

/**
 * A whole number in [min, max]: every numeric setting has a range, so a value the drivers or timers cannot
 * take (a block size of 3000000000 overflows Cassandra's int; a sleep over 2^31 ms overflows a timer) is
 * refused up front with what is allowed, instead of crashing later with a RangeError. `note` explains
 * special values (e.g. "≤ 0 means 100").
 */
function intIn(min: number, max: number, note?: string) {
  const allowed = `expected a whole number from ${min} to ${max}${note ? ` (${note})` : ''}`;
  return z.coerce
    .number({ error: allowed })
    .int({ error: allowed })
    .min(min, { error: allowed })
    .max(max, { error: allowed });
}
/** A duration in ms: at least `min`, at most `max` (default 10 minutes). */
const ms = (min: number, max = 600_000) => intIn(min, max, 'milliseconds');
/** Cassandra's int (the ledger's columns) and Node's timers both stop at 2^31 - 1. */
const INT32_MIN = -2_147_483_648;
const port = intIn(1, 65535);
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
  'cassandra.connectTimeoutMs': {
    env: 'CASSANDRA_CONNECT_TIMEOUT_MS',
    flag: '--cassandra-connect-timeout',
    default: '5000',
    schema: ms(100),
    description: 'Timeout for opening a Cassandra connection (TCP, TLS, CQL handshake), in ms',
  },
  'cassandra.readTimeoutMs': {
    env: 'CASSANDRA_READ_TIMEOUT_MS',
    flag: '--cassandra-read-timeout',
    default: '12000',
    schema: ms(100),
    description:
      'Timeout for one Cassandra request, in ms (keep above the server-side range timeout, 10 s by default); the connection is then replaced',
  },
  'cassandra.retryWindowMs': {
    env: 'CASSANDRA_RETRY_WINDOW_MS',
    flag: '--cassandra-retry-window',
    default: '60000',
    schema: intIn(0, 3_600_000, 'milliseconds; 0 means no retry'),
    description:
      'How long reads (scan pages, look-ups) and ledger upserts are retried across a Cassandra outage before the run stops with exit 3, in ms',
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
    schema: intIn(0, 20),
    description: 'Retries per block on 429, 5xx and network errors',
  },
  'syncApi.timeoutMs': {
    env: 'SYNC_API_TIMEOUT_MS',
    flag: '--sync-api-timeout',
    default: '30000',
    schema: ms(100),
    description: 'Timeout for one Sync API call (headers and body; connecting: at most 5 s), in ms',
  },
  'sync.blockSize': {
    env: 'SYNC_BLOCK_SIZE',
    flag: '--block-size',
    original: 'sunbird_sync_block_size',
    default: '100',
    schema: intIn(INT32_MIN, 100_000, '≤ 0 means 100'),
    description: 'Ids per Sync API call; a value ≤ 0 falls back to 100',
  },
  'sync.sleepMs': {
    env: 'SYNC_SLEEP_TIME',
    flag: '--sleep-time',
    original: 'sunbird_sync_sleep_time',
    default: '5000',
    schema: intIn(INT32_MIN, 3_600_000, 'milliseconds; ≤ 0 means block size × 100'),
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
  'sync.pace': {
    env: 'SYNC_PACE',
    flag: '--pace',
    default: 'fixed',
    schema: z.enum(['fixed', 'auto'], { error: 'expected fixed or auto' }),
    description:
      "`fixed`: the sleep time between calls, as the original; `auto`: find the Sync API's capacity (faster while answers are healthy, slower on 429/503/timeouts or rising latency, Retry-After obeyed) and do not sleep",
  },
  'sync.maxRate': {
    env: 'SYNC_MAX_RATE',
    flag: '--max-rate',
    default: '0',
    schema: z.coerce
      .number({ error: 'expected a number from 0 to 10000 (calls per second; 0 means no cap)' })
      .min(0, { error: 'expected a number from 0 to 10000 (calls per second; 0 means no cap)' })
      .max(10_000, { error: 'expected a number from 0 to 10000 (calls per second; 0 means no cap)' }),
    description:
      'With `--pace auto`, the most Sync API calls per second of the whole run (0: no cap; a gateway limit of 5000 requests/hour is 1.38)',
  },
  'sync.workers': {
    env: 'SYNC_WORKERS',
    flag: '--sync-workers',
    default: '1',
    schema: intIn(1, 10_000),
    description:
      "Deployed sync-block containers calling at once (the sync queue's maximum concurrency); each takes an equal share of `--max-rate`",
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
    schema: ms(1),
    description: 'Timeout for one search engine call (connect, headers, body), in ms',
  },
  'es.maxRetries': {
    env: 'ES_MAX_RETRIES',
    flag: '--es-max-retries',
    default: '3',
    schema: intIn(0, 20),
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
  'postgres.timeoutMs': {
    env: 'KEYCLOAK_DB_TIMEOUT_MS',
    flag: '--keycloak-db-timeout',
    default: '30000',
    schema: ms(100),
    description: "Timeout for connecting to Keycloak's PostgreSQL and for each statement, in ms",
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
    schema: intIn(1, 1_000_000),
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
    schema: intIn(1, 64),
    description: 'Parallel Admin API deletions (and Cassandra look-ups of up to 100 ids each)',
  },
  'keycloak.maxRetries': {
    env: 'KEYCLOAK_MAX_RETRIES',
    flag: '--keycloak-max-retries',
    default: '3',
    schema: intIn(0, 20),
    description: 'Retries of one Admin API call on 5xx, 429 and network errors',
  },
  'keycloak.timeoutMs': {
    env: 'KEYCLOAK_TIMEOUT_MS',
    flag: '--keycloak-timeout',
    default: '30000',
    schema: ms(100),
    description: 'Timeout for one Admin API call (connecting, then the answer), in ms',
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
  'kafka.timeoutMs': {
    env: 'KAFKA_TIMEOUT_MS',
    flag: '--kafka-timeout',
    default: '30000',
    schema: ms(100, 300_000),
    description:
      'Bound on connecting to Kafka (brokers, TLS, SASL) and on one produce, in ms; past it the merge stops with exit 3',
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
    schema: intIn(1, 1024),
    description:
      'Concurrent write round trips while applying one merge (each one partition’s writes, as one unlogged batch)',
  },
  'merge.reportBatchItemFailures': {
    env: 'MERGE_REPORT_BATCH_ITEM_FAILURES',
    flag: '--report-batch-item-failures',
    default: 'true',
    schema: bool,
    description:
      'Answer an MSK batch with a Kafka partial batch response (the stack enables ReportBatchItemFailures on its provisioned-mode mapping); false throws, so Lambda retries the whole batch',
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
  'sqs.timeoutMs': {
    env: 'SQS_TIMEOUT_MS',
    flag: '--sqs-timeout',
    default: '30000',
    schema: ms(100),
    description:
      'Timeout for one SQS request, in ms (never below 25 s, as a long poll waits 20 s; connecting: at most 10 s)',
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
    schema: intIn(1000, 1_000_000_000),
    description: 'Target rows per token sub-range task (sized from system.size_estimates)',
  },
  'scan.fetchSize': {
    env: 'SCAN_FETCH_SIZE',
    flag: '--fetch-size',
    // 1000-row pages scan as fast as 5000-row ones here, but the larger pages, held while their blocks
    // are enqueued, made V8 grow the heap: peak RSS of a 1M-row fan-out ~290 MB at 5000, ~220 MB at 1000.
    default: '1000',
    schema: intIn(10, 100_000),
    description: 'Ids read per Cassandra page during a scan (a checkpoint can be taken after each page)',
  },
  'scan.minTasks': {
    env: 'SCAN_MIN_TASKS',
    flag: '--min-tasks',
    default: '64',
    schema: intIn(1, 65_536),
    description: 'Minimum number of token sub-range tasks per full scan (parallelism on small tables)',
  },
  'ledger.kind': {
    env: 'LEDGER',
    flag: '--ledger',
    default: 'auto',
    schema: z.enum(['auto', 'embedded', 'cassandra'], { error: 'expected auto, embedded or cassandra' }),
    description:
      'Where runs are recorded: `embedded` (a SQLite file in the state directory), `cassandra` (the ops keyspace), `auto` (embedded on the CLI, Cassandra on AWS)',
  },
  'ledger.stateDir': {
    env: 'SUNBIRD_DATAOPS_STATE_DIR',
    flag: '--state-dir',
    default: '',
    schema: str,
    description:
      'Directory of the embedded ledger; empty means `$XDG_STATE_HOME/sunbird-dataops` or `~/.local/state/sunbird-dataops`',
  },
  'sync.stallMs': {
    env: 'SYNC_STALL_TIMEOUT_MS',
    flag: '--stall-timeout',
    default: '600000',
    schema: ms(1000, 86_400_000),
    description:
      "With a shared queue: give up (exit 3, resumable) when none of the run's blocks arrived for this long, in ms",
  },
  'lambda.reserveMs': {
    env: 'LAMBDA_RESERVE_MS',
    flag: '--lambda-reserve',
    default: '60000',
    schema: ms(1000),
    description:
      'Lambda only: a block or scan task is not started with less than this left of the invocation (it returns to its queue unstarted), and a scan checkpoints this long before the timeout, in ms',
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

/** Without `--concurrency`: one call at a time with fixed pacing (as the original), a ceiling of 8 with auto. */
export const AUTO_PACE_CONCURRENCY = 8;

/** Sync API calls in flight: the `--concurrency` given (a ceiling under auto pacing), else the pace's default. */
export function effectiveConcurrency(given: number | undefined, pace: 'fixed' | 'auto'): number {
  return given ?? (pace === 'auto' ? AUTO_PACE_CONCURRENCY : 1);
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
