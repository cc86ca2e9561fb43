/**
 * The stack's monitoring, generated from the lists below so that every function and every queue gets
 * the same treatment (serverless.yml: `resources: [ …, ${file(./config/monitoring.cjs):resources} ]`):
 *
 * - an SNS topic `<service>-<stage>-alarms`; its subscription's protocol and endpoint are CloudFormation
 *   parameters whose defaults come from the stage file (`alarms.notify`), no subscription when empty;
 * - per function: `Errors` and `Throttles` alarms (AWS/Lambda, dimension FunctionName);
 * - per dead-letter queue (and the merge mapping's on-failure queue): a message is visible;
 * - merge-user-courses: the MSK mapping's consumer lag (`OffsetLag` of the function) stays high;
 * - per work queue: the run is stalled — messages wait but none was completed for a whole window;
 * - a CloudWatch dashboard: per function invocations/errors/throttles/duration, queue depth and age of
 *   the oldest message, merge lag, and the job metrics the functions emit as EMF (namespace
 *   SunbirdDataOps, dimension `service`).
 *
 * Every alarm notifies the topic (AlarmActions and OKActions). Thresholds, periods and evaluation
 * periods are stage settings (`alarms.*`); the README's "Operating on AWS" says what each alarm means.
 */
'use strict';

const { list: tagList } = require('./tags.cjs');

const NAMESPACE = 'SunbirdDataOps';

/** The functions, and the EMF metrics each emits (dimension `service` = the function's short name). */
const FUNCTIONS = [
  { name: 'fanout', metrics: ['scan-tasks-done', 'ids-enumerated'] },
  { name: 'sync-block', metrics: ['ids-synced', 'ids-failed', 'blocks-failed'] },
  { name: 'delete-keycloak-users', metrics: ['users-deleted', 'users-delete-failed'] },
  {
    name: 'merge-user-courses',
    metrics: ['success-events-count', 'failed-events-count', 'skipped-event-count'],
  },
];

/** Work queues with their dead-letter queues (logical ids in serverless.yml). */
const QUEUES = [
  { short: 'scan', id: 'ScanQueue', dlq: 'ScanDeadLetterQueue', consumer: 'fanout' },
  { short: 'sync', id: 'SyncQueue', dlq: 'SyncDeadLetterQueue', consumer: 'sync-block' },
  { short: 'delete', id: 'DeleteQueue', dlq: 'DeleteDeadLetterQueue', consumer: 'delete-keycloak-users' },
];

/** Where discarded MSK batches go (the merge mapping's on-failure destination). */
const MERGE_FAILURES = { short: 'merge', id: 'MergeFailureQueue' };

/** `sync-block` → `SyncBlock`; osls names the function resource `SyncDashblockLambdaFunction`. */
const pascal = (name) => name.replace(/(^|-)(\w)/g, (_m, _d, c) => c.toUpperCase());
const lambdaLogicalId = (name) =>
  `${name.charAt(0).toUpperCase()}${name.slice(1).replace(/-/g, 'Dash')}LambdaFunction`;

const queueName = (id) => ({ 'Fn::GetAtt': [id, 'QueueName'] });

/** Checks one `alarms.<key>` block of the stage file: whole numbers, periods CloudWatch accepts. */
function setting(alarms, key, { threshold = false } = {}) {
  const s = alarms?.[key];
  const where = `alarms.${key} in the stage file`;
  if (!s || typeof s !== 'object') throw new Error(`${where} is missing`);
  for (const field of ['period', 'evaluationPeriods', ...(threshold ? ['threshold'] : [])]) {
    if (!Number.isFinite(s[field]) || s[field] < 0)
      throw new Error(`${where}: ${field} must be a number ≥ 0`);
  }
  if (s.period < 60 || s.period % 60 !== 0) throw new Error(`${where}: period must be a multiple of 60 s`);
  if (s.evaluationPeriods < 1) throw new Error(`${where}: evaluationPeriods must be at least 1`);
  return s;
}

function alarm({ name, description, metric, s, threshold, ctx }) {
  return {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmName: `${ctx.prefix}-${name}`,
      AlarmDescription: `${description} See the README, "Operating on AWS".`,
      ...metric,
      EvaluationPeriods: s.evaluationPeriods,
      DatapointsToAlarm: s.evaluationPeriods,
      Threshold: threshold,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: 'AlarmTopic' }],
      OKActions: [{ Ref: 'AlarmTopic' }],
      Tags: ctx.tags,
    },
  };
}

const simpleMetric = (namespace, metricName, dimension, value, statistic, period) => ({
  Namespace: namespace,
  MetricName: metricName,
  Dimensions: [{ Name: dimension, Value: value }],
  Statistic: statistic,
  Period: period,
});

function functionAlarms(ctx) {
  const out = {};
  const errors = setting(ctx.alarms, 'functionErrors', { threshold: true });
  const throttles = setting(ctx.alarms, 'functionThrottles', { threshold: true });
  for (const { name } of FUNCTIONS) {
    const fn = { Ref: lambdaLogicalId(name) };
    out[`${pascal(name)}ErrorsAlarm`] = alarm({
      name: `${name}-errors`,
      description: `${name} failed (threw, timed out or crashed at start) more than ${errors.threshold} time(s) in ${errors.period} s.`,
      metric: simpleMetric('AWS/Lambda', 'Errors', 'FunctionName', fn, 'Sum', errors.period),
      s: errors,
      threshold: errors.threshold,
      ctx,
    });
    out[`${pascal(name)}ThrottlesAlarm`] = alarm({
      name: `${name}-throttles`,
      description: `${name} was throttled more than ${throttles.threshold} time(s) in ${throttles.period} s: the account's concurrency is exhausted.`,
      metric: simpleMetric('AWS/Lambda', 'Throttles', 'FunctionName', fn, 'Sum', throttles.period),
      s: throttles,
      threshold: throttles.threshold,
      ctx,
    });
  }
  return out;
}

function deadLetterAlarms(ctx) {
  const s = setting(ctx.alarms, 'deadLetterQueues');
  const queues = [
    ...QUEUES.map((q) => ({ id: q.dlq, name: `${q.short}-dlq-not-empty`, what: `${q.short} messages` })),
    {
      id: MERGE_FAILURES.id,
      name: 'merge-dlq-not-empty',
      what: 'MSK batches merge-user-courses gave up on (the mapping’s on-failure destination)',
    },
  ];
  const out = {};
  for (const q of queues) {
    out[`${q.id}Alarm`] = alarm({
      name: q.name,
      description: `Failed ${q.what} are waiting in a dead-letter queue: inspect, fix the cause, then redrive or replay.`,
      metric: simpleMetric(
        'AWS/SQS',
        'ApproximateNumberOfMessagesVisible',
        'QueueName',
        queueName(q.id),
        'Maximum',
        s.period,
      ),
      s,
      threshold: 0,
      ctx,
    });
  }
  return out;
}

function mergeLagAlarm(ctx) {
  const s = setting(ctx.alarms, 'mergeOffsetLag', { threshold: true });
  const fn = { Ref: lambdaLogicalId('merge-user-courses') };
  return {
    MergeUserCoursesOffsetLagAlarm: alarm({
      name: 'merge-user-courses-offset-lag',
      description: `merge-user-courses is more than ${s.threshold} records behind its input topic (OffsetLag) for ${s.evaluationPeriods} × ${s.period} s.`,
      metric: simpleMetric('AWS/Lambda', 'OffsetLag', 'FunctionName', fn, 'Maximum', s.period),
      s,
      threshold: s.threshold,
      ctx,
    }),
  };
}

/** Messages wait (visible) but none was deleted, i.e. completed, during the whole window. */
function stalledAlarms(ctx) {
  const s = setting(ctx.alarms, 'runStalled');
  const out = {};
  for (const q of QUEUES) {
    const stat = (id, metricName, stat) => ({
      Id: id,
      MetricStat: {
        Metric: {
          Namespace: 'AWS/SQS',
          MetricName: metricName,
          Dimensions: [{ Name: 'QueueName', Value: queueName(q.id) }],
        },
        Period: s.period,
        Stat: stat,
      },
      ReturnData: false,
    });
    out[`${pascal(q.short)}QueueStalledAlarm`] = alarm({
      name: `${q.short}-stalled`,
      description: `Messages wait on ${ctx.prefix}-${q.short} but ${q.consumer} completed none for ${s.evaluationPeriods} × ${s.period} s: the run is stalled.`,
      metric: {
        Metrics: [
          stat('waiting', 'ApproximateNumberOfMessagesVisible', 'Maximum'),
          stat('done', 'NumberOfMessagesDeleted', 'Sum'),
          {
            Id: 'stalled',
            Label: 'waiting and nothing completed',
            Expression: 'IF(FILL(waiting, 0) > 0 AND FILL(done, 0) == 0, 1, 0)',
            ReturnData: true,
          },
        ],
      },
      s,
      threshold: 0,
      ctx,
    });
  }
  return out;
}

function notification(ctx) {
  const notify = ctx.alarms?.notify ?? {};
  return {
    Parameters: {
      AlarmNotificationProtocol: {
        Type: 'String',
        Description: 'How the alarm topic notifies (SNS subscription protocol)',
        Default: notify.protocol ?? 'email',
        AllowedValues: ['email', 'email-json', 'https', 'http', 'sqs', 'lambda', 'sms'],
      },
      AlarmNotificationEndpoint: {
        Type: 'String',
        Description: 'Who the alarm topic notifies (an address, URL or ARN); empty = no subscription',
        Default: notify.endpoint ?? '',
      },
    },
    Conditions: {
      HasAlarmEndpoint: { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'AlarmNotificationEndpoint' }, ''] }] },
    },
    Resources: {
      AlarmTopic: {
        Type: 'AWS::SNS::Topic',
        Properties: {
          TopicName: `${ctx.prefix}-alarms`,
          DisplayName: `${ctx.prefix} alarms`,
          Tags: ctx.tags,
        },
      },
      AlarmSubscription: {
        Type: 'AWS::SNS::Subscription',
        Condition: 'HasAlarmEndpoint',
        Properties: {
          TopicArn: { Ref: 'AlarmTopic' },
          Protocol: { Ref: 'AlarmNotificationProtocol' },
          Endpoint: { Ref: 'AlarmNotificationEndpoint' },
        },
      },
    },
  };
}

/** CloudWatch dashboard body: a grid of 12 × 6 widgets, two per row. */
function dashboardBody(ctx) {
  // Replaced by CloudFormation: the body is the template string of an Fn::Sub.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub placeholder
  const region = '${AWS::Region}';
  const fnName = (name) => `${ctx.prefix}-${name}`;
  const sqs = (metric, queue, stat) => ['AWS/SQS', metric, 'QueueName', `${ctx.prefix}-${queue}`, { stat }];
  const allQueues = [...QUEUES.flatMap((q) => [q.short, `${q.short}-dlq`]), `${MERGE_FAILURES.short}-dlq`];
  const widgets = [
    ...FUNCTIONS.map(({ name }) => ({
      title: `${name}: invocations, errors, throttles, duration`,
      metrics: [
        ['AWS/Lambda', 'Invocations', 'FunctionName', fnName(name), { stat: 'Sum' }],
        ['.', 'Errors', '.', '.', { stat: 'Sum' }],
        ['.', 'Throttles', '.', '.', { stat: 'Sum' }],
        ['.', 'Duration', '.', '.', { stat: 'p99', yAxis: 'right' }],
      ],
    })),
    {
      title: 'Queue depth (messages waiting)',
      metrics: allQueues.map((q) => sqs('ApproximateNumberOfMessagesVisible', q, 'Maximum')),
    },
    {
      title: 'Age of the oldest message (s)',
      metrics: allQueues.map((q) => sqs('ApproximateAgeOfOldestMessage', q, 'Maximum')),
    },
    {
      title: 'merge-user-courses consumer lag (records)',
      metrics: [
        ['AWS/Lambda', 'OffsetLag', 'FunctionName', fnName('merge-user-courses'), { stat: 'Maximum' }],
      ],
    },
    ...FUNCTIONS.map(({ name, metrics }) => ({
      title: `${name}: job metrics`,
      metrics: metrics.map((m) => [NAMESPACE, m, 'service', name, { stat: 'Sum' }]),
    })),
  ].map((w) => ({
    type: 'metric',
    properties: {
      title: w.title,
      metrics: w.metrics,
      region,
      view: 'timeSeries',
      stacked: false,
      period: 300,
    },
  }));
  widgets.push({
    type: 'log',
    properties: {
      title: 'Sync blocks per run (sync-block logs)',
      region,
      view: 'table',
      query: `SOURCE '/aws/lambda/${fnName('sync-block')}' | filter message = 'block done' | stats count(*) as blocks, sum(failed) as idsFailed by runId | sort idsFailed desc | limit 50`,
    },
  });
  return {
    widgets: widgets.map((w, i) => ({
      ...w,
      x: (i % 2) * 12,
      y: Math.floor(i / 2) * 6,
      width: 12,
      height: 6,
    })),
  };
}

/** @param {{ resolveVariable: (v: string) => Promise<unknown> }} context */
async function resources(context) {
  const [prefix, alarms, tags] = await Promise.all([
    context.resolveVariable('self:custom.prefix'),
    context.resolveVariable('self:custom.stage.alarms'),
    tagList(context),
  ]);
  const ctx = { prefix: String(prefix), alarms, tags };
  const topic = notification(ctx);
  return {
    Parameters: topic.Parameters,
    Conditions: topic.Conditions,
    Resources: {
      ...topic.Resources,
      ...functionAlarms(ctx),
      ...deadLetterAlarms(ctx),
      ...mergeLagAlarm(ctx),
      ...stalledAlarms(ctx),
      Dashboard: {
        Type: 'AWS::CloudWatch::Dashboard',
        Properties: {
          DashboardName: ctx.prefix,
          DashboardBody: { 'Fn::Sub': JSON.stringify(dashboardBody(ctx)) },
          Tags: tags,
        },
      },
    },
  };
}

module.exports = { resources, FUNCTIONS, QUEUES };
