/**
 * The deployable stack: `serverless package --stage dev` (osls 4 + serverless-esbuild), run offline
 * with no AWS credentials, and the CloudFormation it writes: resources, IAM, alarms, dashboard, tags,
 * logging, the MSK mapping's error handling, bundle sizes, and conformance to the CloudFormation
 * resource specification. `--stage prod` is packaged too, for what only its stage file turns on
 * (Secrets Manager secrets), and `--stage local`, whose search url is empty (drift repair not
 * configured). Packaging takes up to a minute per stage, so it runs once per file, and not at all when
 * the output is newer than every input.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { loadFlatConfig, SETTINGS } from '#shared/config.ts';
import { parseStartPayload } from '#shared/fanout/payload.ts';
import { METRIC } from '#shared/merge/process.ts';
import { checkTemplate } from '#test/support/cfn-spec.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const OUT = path.join(ROOT, '.serverless');
const PROD_OUT = path.join(ROOT, '.serverless-prod');
const LOCAL_OUT = path.join(ROOT, '.serverless-local');
const TEMPLATE_FILE = 'cloudformation-template-update-stack.json';
const PREFIX = 'sunbird-dataops-dev';
/** Lambda's limit is 50 MB; ours is what keeps cold starts and deployments light (issue 13). */
const MAX_ZIP_BYTES = 1_500_000;

type Json = Record<string, unknown>;
interface Resource {
  Type: string;
  Properties: Json;
  DependsOn?: string[];
  Condition?: string;
}
interface Template {
  Resources: Record<string, Resource>;
  Conditions: Json;
  Parameters?: Record<string, { Type: string; Default?: string; AllowedValues?: string[] }>;
}
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Json;
}

/** Actions that cannot name a resource (EC2 has no resource-level permissions for these). */
const STAR_ALLOWED = new Set([
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
  'ec2:DescribeVpcs',
  'ec2:DescribeSubnets',
  'ec2:DescribeSecurityGroups',
]);

const FUNCTIONS = {
  // dev's search engine takes basic auth: the fan-out also reads its password (drift repair).
  fanout: { role: 'FanoutRole', secrets: ['CASSANDRA_PASSWORD', 'ES_PASSWORD'] },
  'sync-block': { role: 'SyncBlockRole', secrets: ['CASSANDRA_PASSWORD', 'SYNC_API_KEY'] },
  'delete-keycloak-users': {
    role: 'DeleteKeycloakUsersRole',
    secrets: [
      'CASSANDRA_PASSWORD',
      'KEYCLOAK_DB_PASSWORD',
      'KEYCLOAK_ADMIN_PASSWORD',
      'KEYCLOAK_CLIENT_SECRET',
    ],
  },
  'merge-user-courses': { role: 'MergeUserCoursesRole', secrets: ['CASSANDRA_PASSWORD'] },
} as const;
type FnName = keyof typeof FUNCTIONS;

function newestInput(): number {
  let newest = 0;
  const visit = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(path.join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['serverless.yml', 'package.json', 'config', 'functions', 'shared'])
    visit(path.join(ROOT, p));
  return newest;
}

function packageStack(stage: string, out: string): Template {
  const file = path.join(out, TEMPLATE_FILE);
  if (!existsSync(file) || statSync(file).mtimeMs <= newestInput()) {
    const env: NodeJS.ProcessEnv = { ...process.env, DATAOPS_ESBUILD_FOLDER: `.esbuild-package-${stage}` };
    // Prove that packaging needs no AWS access.
    for (const k of ['AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
      delete env[k];
    const run = spawnSync(
      path.join(ROOT, 'node_modules/.bin/serverless'),
      ['package', '--stage', stage, '--package', out],
      // serverless-esbuild waits forever on a failed build: the timeout turns that into a failure.
      { cwd: ROOT, env, encoding: 'utf8', timeout: 300_000 },
    );
    assert.equal(run.status, 0, `serverless package --stage ${stage} failed:\n${run.stdout}\n${run.stderr}`);
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Template;
}

let template: Template;
let prodTemplate: Template;
let localTemplate: Template;
const byType = (type: string) =>
  Object.entries(template.Resources).filter(([, r]) => r.Type === type) as [string, Resource][];
const getAtt = (v: unknown): string | undefined => (v as { 'Fn::GetAtt'?: string[] })?.['Fn::GetAtt']?.[0];

function lambda(name: FnName): [string, Resource] {
  const found = byType('AWS::Lambda::Function').find(
    ([, r]) => r.Properties.FunctionName === `${PREFIX}-${name}`,
  );
  assert.ok(found, `function ${name} is in the stack`);
  return found;
}

function mappingFor(fnLogicalId: string, t: Template = template): Resource[] {
  return Object.values(t.Resources).filter(
    (r) => r.Type === 'AWS::Lambda::EventSourceMapping' && getAtt(r.Properties.FunctionName) === fnLogicalId,
  );
}

/** Every statement of a role, both branches of each `Fn::If` included. */
function statements(roleId: string, t: Template = template): Statement[] {
  const role = t.Resources[roleId];
  assert.ok(role, `role ${roleId} exists`);
  const out: Statement[] = [];
  for (const policy of role.Properties.Policies as { PolicyDocument: { Statement: unknown[] } }[]) {
    for (const s of policy.PolicyDocument.Statement) {
      const iff = (s as { 'Fn::If'?: unknown[] })['Fn::If'];
      for (const branch of iff ? iff.slice(1) : [s]) {
        if ((branch as Json).Ref === 'AWS::NoValue') continue;
        out.push(branch as Statement);
      }
    }
  }
  return out;
}

const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resources = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);
const json = (v: unknown) => JSON.stringify(v);

/**
 * Evaluates a template condition made of Fn::Not / Fn::Equals / Fn::Or / Fn::And over literals and
 * other conditions (all a stage resolves to).
 */
function holds(condition: unknown, t: Template = template): boolean {
  const c = condition as {
    'Fn::Not'?: unknown[];
    'Fn::Equals'?: unknown[];
    'Fn::Or'?: unknown[];
    'Fn::And'?: unknown[];
    Condition?: string;
  };
  if (c.Condition) return holds(t.Conditions[c.Condition], t);
  if (c['Fn::Not']) return !holds(c['Fn::Not'][0], t);
  if (c['Fn::Or']) return c['Fn::Or'].some((x) => holds(x, t));
  if (c['Fn::And']) return c['Fn::And'].every((x) => holds(x, t));
  if (c['Fn::Equals']) return json(c['Fn::Equals'][0]) === json(c['Fn::Equals'][1]);
  throw new Error(`cannot evaluate condition ${json(condition)}`);
}

/** A grant that is there in this stage: `Fn::If` on a false condition grants nothing. */
const inThisStage = (r: unknown): boolean => {
  const iff = (r as { 'Fn::If'?: [string, unknown, unknown] })['Fn::If'];
  return !iff || holds(template.Conditions[iff[0]]);
};

/** The value a stage gives: `Fn::If` resolved with the stage's conditions, AWS::NoValue dropped. */
function resolved(v: unknown, t: Template): unknown {
  if (Array.isArray(v)) return v.map((e) => resolved(e, t)).filter((e) => e !== undefined);
  if (typeof v !== 'object' || v === null) return v;
  const iff = (v as { 'Fn::If'?: [string, unknown, unknown] })['Fn::If'];
  if (iff) return resolved(holds(t.Conditions[iff[0]], t) ? iff[1] : iff[2], t);
  if ((v as Json).Ref === 'AWS::NoValue') return undefined;
  return Object.fromEntries(
    Object.entries(v)
      .map(([k, e]) => [k, resolved(e, t)])
      .filter(([, e]) => e !== undefined),
  );
}

/** A stage's function: its logical id and its environment. */
function fnOf(t: Template, stage: string, name: FnName): { id: string; env: Record<string, unknown> } {
  const found = Object.entries(t.Resources).find(
    ([, r]) =>
      r.Type === 'AWS::Lambda::Function' && r.Properties.FunctionName === `sunbird-dataops-${stage}-${name}`,
  );
  assert.ok(found, `function ${name} is in the ${stage} stack`);
  const env = (found[1].Properties.Environment as { Variables: Record<string, unknown> }).Variables;
  return { id: found[0], env };
}

/** What a role may read in a stage (conditions resolved): SSM parameter and Secrets Manager ARNs, as JSON. */
function secretGrants(t: Template, role: string): { ssm: string[]; secretsManager: string[] } {
  const policies = t.Resources[role]!.Properties.Policies as { PolicyDocument: { Statement: unknown[] } }[];
  const live = policies.flatMap((p) => resolved(p.PolicyDocument.Statement, t) as Statement[]);
  const on = (action: string) =>
    live.filter((s) => actions(s).includes(action)).flatMap((s) => resources(s).map(json));
  return { ssm: on('ssm:GetParameter'), secretsManager: on('secretsmanager:GetSecretValue') };
}

before(() => {
  // local and prod first: packaging any stage empties `.serverless/`, whatever `--package` says.
  localTemplate = packageStack('local', LOCAL_OUT);
  prodTemplate = packageStack('prod', PROD_OUT);
  template = packageStack('dev', OUT);
});

describe('serverless package --stage dev', () => {
  test('resolves everything from the stage file: no SSM lookups, no unresolved variables', () => {
    const text = readFileSync(path.join(OUT, TEMPLATE_FILE), 'utf8');
    assert.doesNotMatch(text, /\$\{(ssm|self|file|opt|env|sls|aws):/);
  });

  for (const name of Object.keys(FUNCTIONS) as FnName[]) {
    test(`${name}: nodejs24.x on arm64, its own role, VPC, an ESM bundle in its own zip`, () => {
      const [id, fn] = lambda(name);
      const p = fn.Properties;
      assert.equal(p.Runtime, 'nodejs24.x');
      assert.deepEqual(p.Architectures, ['arm64']);
      assert.equal(getAtt(p.Role), FUNCTIONS[name].role);
      assert.ok((p.VpcConfig as Json | undefined)?.SubnetIds, 'runs in the stage VPC');
      assert.equal(p.Handler, `functions/${name}.handler`);
      const zip = path.join(OUT, `${name}.zip`);
      assert.ok(existsSync(zip), `${zip} exists`);
      const listing = spawnSync('unzip', ['-l', zip], { encoding: 'utf8' }).stdout;
      assert.match(listing, new RegExp(`functions/${name}\\.mjs\\n`), 'ESM bundle');
      assert.doesNotMatch(listing, /node_modules\//, 'everything is bundled');
      assert.ok(template.Resources[id.replace('LambdaFunction', 'LogGroup')], 'has a log group');
    });

    test(`${name}: secrets only by SSM parameter name, readable by exactly its own role`, () => {
      const [, fn] = lambda(name);
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      const granted = statements(FUNCTIONS[name].role)
        .filter((s) => actions(s).includes('ssm:GetParameter'))
        .flatMap(resources)
        .filter(inThisStage)
        .map((r) => json(r));
      for (const secret of FUNCTIONS[name].secrets) {
        assert.equal(env[secret], undefined, `no ${secret} value in the environment`);
        const param = env[`${secret}_SSM`];
        assert.match(String(param), /^\/sunbird-dataops\/dev\//, `${secret}_SSM names a parameter`);
        assert.ok(
          granted.some((g) => g.includes(`:parameter${param}`)),
          `${FUNCTIONS[name].role} may read ${param}`,
        );
      }
      assert.equal(granted.length, FUNCTIONS[name].secrets.length, 'and no other parameter');
    });
  }

  test('no default shared execution role', () => {
    assert.equal(template.Resources.IamRoleLambdaExecution, undefined);
  });

  test('queues: scan, sync and delete, each with a DLQ, redrive and visibility ≥ 6 × function timeout', () => {
    const cases = [
      ['ScanQueue', 'ScanDeadLetterQueue', 'fanout', 'scan'],
      ['SyncQueue', 'SyncDeadLetterQueue', 'sync-block', 'sync'],
      ['DeleteQueue', 'DeleteDeadLetterQueue', 'delete-keycloak-users', 'delete'],
    ] as const;
    for (const [queueId, dlqId, fn, short] of cases) {
      const q = template.Resources[queueId];
      const dlq = template.Resources[dlqId];
      assert.equal(q?.Type, 'AWS::SQS::Queue');
      assert.equal(dlq?.Type, 'AWS::SQS::Queue');
      assert.equal(q.Properties.QueueName, `${PREFIX}-${short}`);
      assert.equal(dlq.Properties.QueueName, `${PREFIX}-${short}-dlq`);
      const redrive = q.Properties.RedrivePolicy as { deadLetterTargetArn: unknown; maxReceiveCount: number };
      assert.equal(getAtt(redrive.deadLetterTargetArn), dlqId);
      assert.ok(redrive.maxReceiveCount >= 3 && redrive.maxReceiveCount <= 10);
      assert.equal(dlq.Properties.MessageRetentionPeriod, 1209600, 'DLQ keeps messages 14 days');
      const timeout = Number(lambda(fn)[1].Properties.Timeout);
      assert.ok(
        Number(q.Properties.VisibilityTimeout) >= 6 * timeout,
        `${queueId} visibility ≥ 6 × ${timeout}`,
      );
    }
  });

  test('SQS triggers: batch size, partial batch responses and a maximum concurrency ≥ 2', () => {
    const expect = [
      ['fanout', 'ScanQueue', 1],
      ['sync-block', 'SyncQueue', undefined],
      ['delete-keycloak-users', 'DeleteQueue', 1],
    ] as const;
    for (const [fn, queueId, batch] of expect) {
      const mappings = mappingFor(lambda(fn)[0]);
      assert.equal(mappings.length, 1, `${fn} has one event source`);
      const m = mappings[0]!.Properties;
      assert.equal(getAtt(m.EventSourceArn), queueId);
      if (batch) assert.equal(m.BatchSize, batch);
      else assert.ok(Number(m.BatchSize) >= 1);
      assert.deepEqual(m.FunctionResponseTypes, ['ReportBatchItemFailures']);
      const max = (m.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency;
      assert.ok(max >= 2, `${fn} MaximumConcurrency ${max} ≥ 2`);
    }
  });

  test('fanout may continue its own scan chain past the recursive-loop limit', () => {
    assert.equal(lambda('fanout')[1].Properties.RecursiveLoop, 'Allow');
  });

  test('full user and organisation resync schedules deliver a start payload keyed by the event id, disabled in dev', () => {
    const [fanoutId] = lambda('fanout');
    const rules = byType('AWS::Events::Rule').map(([, r]) => r.Properties);
    const eventId = '7bf73129-1428-4cd3-a780-95db273d1602';
    const inputs = rules.map((r) => {
      const target = (r.Targets as { Arn: unknown; InputTransformer: Record<string, unknown> }[])[0]!;
      assert.equal(getAtt(target.Arn), fanoutId);
      assert.equal(r.State, 'DISABLED');
      const t = target.InputTransformer as { InputPathsMap: Record<string, string>; InputTemplate: string };
      assert.deepEqual(t.InputPathsMap, { eventId: '$.id' });
      // EventBridge puts the JSON value of each path where its <name> stands; the result is the payload.
      return parseStartPayload(JSON.parse(t.InputTemplate.replace('<eventId>', JSON.stringify(eventId))));
    });
    assert.deepEqual(
      inputs.sort((a, b) => a.objectType.localeCompare(b.objectType)),
      [
        { job: 'sync', objectType: 'organisation', dryRun: true, idempotencyKey: eventId },
        { job: 'sync', objectType: 'user', dryRun: true, idempotencyKey: eventId },
      ],
    );
  });

  test('MSK trigger: cluster, topic, consumer group, starting position and batch size', () => {
    const mappings = mappingFor(lambda('merge-user-courses')[0]);
    assert.equal(mappings.length, 1);
    const m = mappings[0]!.Properties;
    assert.deepEqual(m.Topics, ['dev.lms.user.account.merge']);
    assert.match(json(m.EventSourceArn), /:kafka:.*:cluster\/dev-kafka\//);
    assert.deepEqual(m.AmazonManagedKafkaEventSourceConfig, {
      ConsumerGroupId: 'dev-merge-user-courses-group',
    });
    assert.equal(m.StartingPosition, 'LATEST');
    assert.equal(m.BatchSize, 100);
    assert.equal(m.Enabled, true);
  });

  test("least privilege: `Resource: '*'` only for the listed VPC network-interface actions", () => {
    for (const { role } of Object.values(FUNCTIONS)) {
      for (const s of statements(role)) {
        assert.equal(s.Effect, 'Allow');
        assert.ok(!actions(s).some((a) => a.endsWith(':*') || a === '*'), `${role}: no wildcard actions`);
        if (resources(s).includes('*')) {
          for (const a of actions(s)) assert.ok(STAR_ALLOWED.has(a), `${role}: ${a} on '*' is not allowed`);
        }
      }
    }
  });

  test('each role reaches only its own queues and log group', () => {
    const sqsResources = (role: string, action: string) =>
      statements(role)
        .filter((s) => actions(s).includes(action))
        .flatMap(resources)
        .map(getAtt)
        .sort();
    assert.deepEqual(sqsResources('FanoutRole', 'sqs:ReceiveMessage'), ['ScanQueue']);
    assert.deepEqual(sqsResources('FanoutRole', 'sqs:SendMessage'), ['ScanQueue', 'SyncQueue']);
    assert.deepEqual(sqsResources('SyncBlockRole', 'sqs:ReceiveMessage'), ['SyncQueue']);
    assert.deepEqual(sqsResources('SyncBlockRole', 'sqs:SendMessage'), ['DeleteQueue']);
    assert.deepEqual(sqsResources('DeleteKeycloakUsersRole', 'sqs:ReceiveMessage'), ['DeleteQueue']);
    assert.deepEqual(sqsResources('DeleteKeycloakUsersRole', 'sqs:SendMessage'), []);
    assert.deepEqual(sqsResources('MergeUserCoursesRole', 'sqs:ReceiveMessage'), []);
    assert.deepEqual(sqsResources('MergeUserCoursesRole', 'sqs:SendMessage'), ['MergeFailureQueue']);
    for (const [name, { role }] of Object.entries(FUNCTIONS)) {
      const logs = statements(role).filter((s) => actions(s).includes('logs:PutLogEvents'));
      assert.equal(logs.length, 1);
      assert.match(json(logs[0]!.Resource), new RegExp(`log-group:/aws/lambda/${PREFIX}-${name}:\\*`));
    }
  });

  test('merge-user-courses with MSK IAM auth: Kafka data-plane rights on its cluster, group and three topics', () => {
    const kafka = statements('MergeUserCoursesRole').filter((s) =>
      actions(s).some((a) => a.startsWith('kafka-cluster:')),
    );
    const text = json(kafka);
    assert.match(text, /topic\/dev-kafka\/[^/]+\/dev\.lms\.user\.account\.merge/);
    assert.match(text, /topic\/dev-kafka\/[^/]+\/dev\.learning\.events\.failed/);
    assert.match(text, /topic\/dev-kafka\/[^/]+\/dev\.coursebatch\.job\.request/);
    assert.match(text, /group\/dev-kafka\/[^/]+\/dev-merge-user-courses-group/);
    const writes = kafka.filter((s) => actions(s).includes('kafka-cluster:WriteData'));
    assert.doesNotMatch(json(writes), /lms\.user\.account\.merge/, 'never writes to its input topic');
  });
});

/** Dev stage file values the template must carry (config/stages/dev.yml). */
const DEV = {
  tags: { service: 'sunbird-dataops', stage: 'dev', project: 'sunbird', owner: 'sunbird-ops' },
  alarmEndpoint: 'sunbird-dataops-dev@example.org',
  functionErrors: { threshold: 0, period: 300, evaluationPeriods: 1 },
  functionThrottles: { threshold: 0, period: 300, evaluationPeriods: 1 },
  deadLetterQueues: { period: 60, evaluationPeriods: 1 },
  mergeOffsetLag: { threshold: 1000, period: 300, evaluationPeriods: 3 },
  runStalled: { period: 900, evaluationPeriods: 2 },
  logRetentionInDays: 14,
};

type Alarm = Json & {
  AlarmName: string;
  AlarmActions: unknown[];
  OKActions: unknown[];
  Dimensions?: { Name: string; Value: unknown }[];
  Metrics?: {
    Id: string;
    Expression?: string;
    MetricStat?: { Metric: Json; Period: number; Stat: string };
  }[];
};
const alarms = (): Alarm[] => byType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties as Alarm);
const alarmNamed = (name: string): Alarm => {
  const found = alarms().find((a) => a.AlarmName === `${PREFIX}-${name}`);
  assert.ok(found, `alarm ${PREFIX}-${name} exists`);
  return found;
};
const ref = (v: unknown) => (v as { Ref?: string })?.Ref;
const tagsOf = (r: Resource) =>
  Object.fromEntries(
    (r.Properties.Tags as { Key: string; Value: string }[] | undefined)?.map((t) => [t.Key, t.Value]) ?? [],
  );

describe('alarms notify an SNS topic of the stack', () => {
  test('one topic; its subscription endpoint and protocol are stack parameters defaulting to the stage file', () => {
    const topics = byType('AWS::SNS::Topic');
    assert.equal(topics.length, 1);
    const [topicId, topic] = topics[0]!;
    assert.equal(topic.Properties.TopicName, `${PREFIX}-alarms`);
    assert.equal(template.Parameters?.AlarmNotificationEndpoint?.Default, DEV.alarmEndpoint);
    assert.equal(template.Parameters?.AlarmNotificationProtocol?.Default, 'email');
    const [, sub] = byType('AWS::SNS::Subscription')[0]!;
    assert.equal(ref(sub.Properties.TopicArn), topicId);
    assert.equal(ref(sub.Properties.Endpoint), 'AlarmNotificationEndpoint');
    assert.equal(ref(sub.Properties.Protocol), 'AlarmNotificationProtocol');
    // An empty endpoint means no subscription at all, not a broken one.
    assert.ok(sub.Condition && holds(template.Conditions[sub.Condition]), 'subscribed in dev');
    const empty = { ...template.Parameters?.AlarmNotificationEndpoint, Default: '' };
    assert.deepEqual(template.Conditions[sub.Condition], {
      'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'AlarmNotificationEndpoint' }, empty.Default] }],
    });
  });

  test('every alarm notifies the topic when it fires and when it clears', () => {
    const all = alarms();
    assert.ok(all.length >= 4 * 2 + 4 + 1 + 3, `${all.length} alarms`);
    for (const a of all) {
      assert.deepEqual(a.AlarmActions.map(ref), ['AlarmTopic'], `${a.AlarmName} AlarmActions`);
      assert.deepEqual(a.OKActions.map(ref), ['AlarmTopic'], `${a.AlarmName} OKActions`);
      assert.match(String(a.AlarmDescription), /README/, `${a.AlarmName} says where the runbook is`);
    }
  });

  test("the README's runbook says what every alarm means and what to do", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const runbook = readme.slice(readme.indexOf('### Alarms: what they mean and what to do'));
    const rows = runbook
      .slice(0, runbook.indexOf('\n### '))
      .split('\n')
      .filter((l) => l.startsWith('| `'));
    const named = rows.flatMap((r) => [...r.split(' | ')[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
    for (const a of alarms()) {
      const suffix = a.AlarmName.slice(PREFIX.length + 1);
      const generic = suffix.replace(new RegExp(`^(${Object.keys(FUNCTIONS).join('|')})-`), '<function>-');
      assert.ok(named.includes(suffix) || named.includes(generic), `README explains ${suffix}`);
    }
  });

  test('every function has an Errors and a Throttles alarm with the stage thresholds and periods', () => {
    const functions = byType('AWS::Lambda::Function');
    assert.equal(functions.length, Object.keys(FUNCTIONS).length);
    for (const [fnId, fn] of functions) {
      const name = String(fn.Properties.FunctionName).slice(PREFIX.length + 1);
      for (const [metric, s] of [
        ['Errors', DEV.functionErrors],
        ['Throttles', DEV.functionThrottles],
      ] as const) {
        const a = alarmNamed(`${name}-${metric.toLowerCase()}`);
        assert.equal(a.Namespace, 'AWS/Lambda');
        assert.equal(a.MetricName, metric);
        assert.deepEqual(a.Dimensions, [{ Name: 'FunctionName', Value: { Ref: fnId } }]);
        assert.equal(a.Statistic, 'Sum');
        assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
        assert.deepEqual(
          [a.Threshold, a.Period, a.EvaluationPeriods],
          [s.threshold, s.period, s.evaluationPeriods],
        );
      }
    }
  });

  test('every dead-letter queue, the MSK on-failure queue included, alarms on its first message', () => {
    const dlqs = ['ScanDeadLetterQueue', 'SyncDeadLetterQueue', 'DeleteDeadLetterQueue', 'MergeFailureQueue'];
    const alarmed = alarms()
      .filter((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible' && a.Namespace === 'AWS/SQS')
      .map((a) => {
        assert.equal(a.Threshold, 0);
        assert.equal(a.ComparisonOperator, 'GreaterThanThreshold');
        assert.equal(a.Statistic, 'Maximum');
        assert.deepEqual([a.Period, a.EvaluationPeriods], [DEV.deadLetterQueues.period, 1]);
        return getAtt(a.Dimensions![0]!.Value);
      });
    assert.deepEqual(alarmed.sort(), dlqs.sort());
  });

  test("merge-user-courses' consumer lag: OffsetLag of the mapping's function above the stage threshold", () => {
    const a = alarmNamed('merge-user-courses-offset-lag');
    assert.equal(a.Namespace, 'AWS/Lambda');
    assert.equal(a.MetricName, 'OffsetLag');
    assert.deepEqual(a.Dimensions, [
      { Name: 'FunctionName', Value: { Ref: lambda('merge-user-courses')[0] } },
    ]);
    const s = DEV.mergeOffsetLag;
    assert.deepEqual(
      [a.Threshold, a.Period, a.EvaluationPeriods],
      [s.threshold, s.period, s.evaluationPeriods],
    );
  });

  test('a run is stalled when messages wait on the scan, sync or delete queue and none completes', () => {
    for (const [short, queueId] of [
      ['scan', 'ScanQueue'],
      ['sync', 'SyncQueue'],
      ['delete', 'DeleteQueue'],
    ] as const) {
      const a = alarmNamed(`${short}-stalled`);
      const byId = Object.fromEntries(a.Metrics!.map((m) => [m.Id, m]));
      assert.equal(byId.waiting?.MetricStat?.Metric.MetricName, 'ApproximateNumberOfMessagesVisible');
      assert.equal(byId.done?.MetricStat?.Metric.MetricName, 'NumberOfMessagesDeleted');
      for (const id of ['waiting', 'done']) {
        const stat = byId[id]!.MetricStat!;
        assert.equal(getAtt((stat.Metric.Dimensions as { Value: unknown }[])[0]!.Value), queueId);
        assert.equal(stat.Period, DEV.runStalled.period);
      }
      assert.equal(byId.stalled?.Expression, 'IF(FILL(waiting, 0) > 0 AND FILL(done, 0) == 0, 1, 0)');
      assert.equal(a.EvaluationPeriods, DEV.runStalled.evaluationPeriods);
      assert.equal(a.Threshold, 0);
    }
  });
});

describe('the MSK mapping gives up on a failing batch, with a trace', () => {
  test('provisioned pollers, bounded retries, bisection, partial batch responses and an on-failure queue', () => {
    const m = mappingFor(lambda('merge-user-courses')[0])[0]!.Properties;
    assert.deepEqual(m.ProvisionedPollerConfig, { MinimumPollers: 1, MaximumPollers: 2 });
    assert.equal(m.MaximumRetryAttempts, 10);
    assert.equal(m.BisectBatchOnFunctionError, true);
    assert.deepEqual(m.FunctionResponseTypes, ['ReportBatchItemFailures']);
    const onFailure = (m.DestinationConfig as { OnFailure: { Destination: unknown } }).OnFailure;
    assert.deepEqual(onFailure.Destination, { 'Fn::GetAtt': ['MergeFailureQueue', 'Arn'] });
    const q = template.Resources.MergeFailureQueue!;
    assert.equal(q.Properties.QueueName, `${PREFIX}-merge-dlq`);
    assert.equal(q.Properties.MessageRetentionPeriod, 1209600);
  });
});

describe('logs, tags and dashboard', () => {
  test('every function logs in Lambda JSON format with the stage levels; log groups keep the stage retention', () => {
    for (const [id, fn] of byType('AWS::Lambda::Function')) {
      assert.deepEqual(fn.Properties.LoggingConfig, {
        LogFormat: 'JSON',
        ApplicationLogLevel: 'INFO',
        SystemLogLevel: 'INFO',
      });
      assert.equal((fn.Properties.Environment as { Variables: Json }).Variables.LOG_LEVEL, 'INFO');
      const group = template.Resources[id.replace('LambdaFunction', 'LogGroup')]!;
      assert.equal(group.Properties.RetentionInDays, DEV.logRetentionInDays);
    }
  });

  test('service, stage and the stage tags on every function, queue, topic, alarm, dashboard and the MSK mapping', () => {
    const types = [
      'AWS::Lambda::Function',
      'AWS::SQS::Queue',
      'AWS::SNS::Topic',
      'AWS::CloudWatch::Alarm',
      'AWS::CloudWatch::Dashboard',
    ];
    const tagged = Object.entries(template.Resources).filter(([, r]) => types.includes(r.Type));
    assert.ok(tagged.length >= 4 + 7 + 1 + 16 + 1, `${tagged.length} resources`);
    for (const [id, r] of [
      ...tagged,
      [
        'MergeUserCoursesMskEventSourceMapping',
        template.Resources.MergeUserCoursesMskEventSourceMapping!,
      ] as const,
    ])
      assert.deepEqual(tagsOf(r), DEV.tags, `${id} tags`);
  });

  test('the dashboard shows every function, the queues and DLQs, merge lag and the job metrics', () => {
    const [, dash] = byType('AWS::CloudWatch::Dashboard')[0]!;
    assert.equal(dash.Properties.DashboardName, PREFIX);
    const body = JSON.parse(
      String((dash.Properties.DashboardBody as { 'Fn::Sub': string })['Fn::Sub']).replaceAll(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the Fn::Sub placeholder CloudFormation fills
        '${AWS::Region}',
        'ap-south-1',
      ),
    ) as { widgets: { type: string; properties: { metrics?: unknown[][]; query?: string } }[] };
    // Metric rows use "." for "same as the row above"; expand them to [namespace, name, dimension, value].
    const rows: string[] = [];
    for (const w of body.widgets) {
      let prev: unknown[] = [];
      for (const m of w.properties.metrics ?? []) {
        const row = m.slice(0, 4).map((v, i) => (v === '.' ? prev[i] : v));
        prev = row;
        rows.push(row.join(' '));
      }
    }
    const has = (row: string) => assert.ok(rows.includes(row), `dashboard shows ${row}`);
    for (const fn of Object.keys(FUNCTIONS))
      for (const metric of ['Invocations', 'Errors', 'Throttles', 'Duration'])
        has(`AWS/Lambda ${metric} FunctionName ${PREFIX}-${fn}`);
    for (const q of ['scan', 'sync', 'delete', 'scan-dlq', 'sync-dlq', 'delete-dlq', 'merge-dlq'])
      for (const metric of ['ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage'])
        has(`AWS/SQS ${metric} QueueName ${PREFIX}-${q}`);
    has(`AWS/Lambda OffsetLag FunctionName ${PREFIX}-merge-user-courses`);
    const jobMetrics: Record<string, string[]> = {
      fanout: ['scan-tasks-done', 'ids-enumerated'],
      'sync-block': ['ids-synced', 'ids-failed', 'blocks-failed'],
      'delete-keycloak-users': ['users-deleted', 'users-delete-failed'],
      'merge-user-courses': [METRIC.success, METRIC.failed, METRIC.skipped],
    };
    for (const [service, names] of Object.entries(jobMetrics))
      for (const name of names) has(`SunbirdDataOps ${name} service ${service}`);
    const logs = body.widgets.filter((w) => w.type === 'log');
    assert.match(
      String(logs[0]?.properties.query),
      new RegExp(`SOURCE '/aws/lambda/${PREFIX}-sync-block'.*by runId`),
    );
  });
});

describe('lean bundles', () => {
  for (const name of Object.keys(FUNCTIONS)) {
    test(`${name}: the zip holds its function's chunks only, and every chunk they import`, () => {
      const zip = path.join(OUT, `${name}.zip`);
      const files = spawnSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      const code = files.filter((f) => f.endsWith('.mjs'));
      assert.deepEqual(
        code.filter((f) => !path.basename(f).startsWith(`${name}.`)),
        [],
        'another function’s files',
      );
      for (const file of code) {
        const text = spawnSync('unzip', ['-p', zip, file], {
          encoding: 'utf8',
          maxBuffer: 64 * 1024 * 1024,
        }).stdout;
        for (const [, spec] of text.matchAll(/["'](\.\/[^"']+\.mjs)["']/g)) {
          assert.ok(
            files.includes(path.posix.join(path.posix.dirname(file), spec!)),
            `${file} imports ${spec}`,
          );
        }
      }
    });

    test(`${name}: the zip is under ${MAX_ZIP_BYTES} bytes and its source map embeds no sources`, () => {
      const zip = path.join(OUT, `${name}.zip`);
      const bytes = statSync(zip).size;
      assert.ok(bytes < MAX_ZIP_BYTES, `${name}.zip is ${bytes} bytes`);
      const map = spawnSync('unzip', ['-p', zip, `functions/${name}.mjs.map`], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      }).stdout;
      const parsed = JSON.parse(map) as { sources: string[]; sourcesContent?: unknown };
      assert.ok(
        parsed.sources.some((s) => s.includes(`functions/${name}.ts`)),
        'maps back to the TypeScript source',
      );
      assert.equal(parsed.sourcesContent, undefined);
    });
  }
});

/** Stage file values of the pacing and search settings (config/stages/*.yml). */
const STAGES = {
  dev: {
    t: () => template,
    syncConcurrency: 2,
    pacing: { pace: 'fixed', maxRate: '0' },
    search: {
      ES_URL: 'https://vpc-sunbird-dev-search-abc123.ap-south-1.es.amazonaws.com',
      ES_INDEX: '',
      ES_USERNAME: 'dataops',
      ES_UPDATED_FIELD: 'updateddate',
      ES_PASSWORD_SSM: '/sunbird-dataops/dev/es-password',
      ES_API_KEY_SSM: '',
    },
  },
  prod: {
    t: () => prodTemplate,
    syncConcurrency: 4,
    pacing: { pace: 'fixed', maxRate: '0' },
    search: {
      ES_URL: 'https://search.prod.sunbirded.org:9243',
      ES_INDEX: '',
      ES_USERNAME: '',
      ES_UPDATED_FIELD: 'updateddate',
      ES_PASSWORD_SSM: '',
      ES_API_KEY_SSM: '/aws/reference/secretsmanager/sunbird-dataops/prod/es-api-key',
    },
  },
  local: {
    t: () => localTemplate,
    syncConcurrency: 2,
    pacing: { pace: 'fixed', maxRate: '0' },
    search: {
      ES_URL: '',
      ES_INDEX: '',
      ES_USERNAME: '',
      ES_UPDATED_FIELD: 'updateddate',
      ES_PASSWORD_SSM: '',
      ES_API_KEY_SSM: '',
    },
  },
} as const;
type Stage = keyof typeof STAGES;
const STAGE_NAMES = Object.keys(STAGES) as Stage[];
const FN_NAMES = Object.keys(FUNCTIONS) as FnName[];

describe('every function is configured with settings the functions read', () => {
  test('dev, prod and local: each variable is a setting (or <SECRET>_SSM of a secret one) and its value passes the setting’s check', () => {
    const byEnv = new Map(Object.values(SETTINGS).map((d) => [d.env as string, d]));
    for (const stage of STAGE_NAMES) {
      for (const name of FN_NAMES) {
        const { env } = fnOf(STAGES[stage].t(), stage, name);
        for (const key of Object.keys(env)) {
          if (key === 'NODE_OPTIONS') continue;
          const secretOf = key.endsWith('_SSM') ? byEnv.get(key.slice(0, -'_SSM'.length)) : undefined;
          if (secretOf) {
            // shared/secrets.ts reads <ENV>_SSM for exactly the settings marked secret.
            assert.ok(
              'secret' in secretOf && secretOf.secret,
              `${stage} ${name}: ${key} names a secret setting`,
            );
            continue;
          }
          assert.ok(byEnv.has(key), `${stage} ${name}: ${key} is a setting`);
        }
        // Queue URLs are the stack's own (Ref) on AWS: only the literal values are checked here.
        const literal = Object.fromEntries(
          Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'),
        );
        assert.doesNotThrow(() => loadFlatConfig({ env: literal }), `${stage} ${name}`);
      }
    }
  });
});

describe('auto pacing: set per stage, stamped into each run by the fan-out, maxRate shared by the sync-block containers', () => {
  test('fanout: SYNC_PACE and SYNC_MAX_RATE are the stage’s pacing.pace and pacing.maxRate; no other function has them', () => {
    for (const stage of STAGE_NAMES) {
      const { pacing } = STAGES[stage];
      const { env } = fnOf(STAGES[stage].t(), stage, 'fanout');
      assert.deepEqual(
        { pace: env.SYNC_PACE, maxRate: String(env.SYNC_MAX_RATE) },
        pacing,
        `${stage} fanout`,
      );
      for (const name of FN_NAMES.filter((n) => n !== 'fanout')) {
        const other = fnOf(STAGES[stage].t(), stage, name).env;
        assert.equal(
          other.SYNC_PACE,
          undefined,
          `${stage} ${name}: the run carries its pace, not the function`,
        );
        assert.equal(other.SYNC_MAX_RATE, undefined, `${stage} ${name}`);
      }
    }
  });

  test('sync-block: SYNC_WORKERS equals the sync queue mapping’s MaximumConcurrency (pacing.syncConcurrency)', () => {
    for (const stage of ['dev', 'prod'] as const) {
      const t = STAGES[stage].t();
      const { id, env } = fnOf(t, stage, 'sync-block');
      const [mapping] = mappingFor(id, t);
      assert.ok(mapping, `${stage}: sync-block has its sync queue mapping`);
      const max = (mapping.Properties.ScalingConfig as { MaximumConcurrency: unknown }).MaximumConcurrency;
      assert.equal(Number(max), STAGES[stage].syncConcurrency, `${stage}: the stage's syncConcurrency`);
      assert.equal(Number(env.SYNC_WORKERS), Number(max), `${stage}: SYNC_WORKERS`);
    }
  });
});

describe('drift repair on Lambda: only the fan-out reaches the search engine', () => {
  test('fanout has the stage’s search settings and secret names; no other function has an ES_ variable', () => {
    for (const stage of STAGE_NAMES) {
      const t = STAGES[stage].t();
      const { env } = fnOf(t, stage, 'fanout');
      const es = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('ES_')));
      assert.deepEqual(es, STAGES[stage].search, `${stage} fanout`);
      assert.equal(env.ES_PASSWORD, undefined, 'no secret value in the environment');
      assert.equal(env.ES_API_KEY, undefined, 'no secret value in the environment');
      for (const name of FN_NAMES.filter((n) => n !== 'fanout')) {
        const keys = Object.keys(fnOf(t, stage, name).env).filter((k) => k.startsWith('ES_'));
        assert.deepEqual(keys, [], `${stage} ${name}`);
      }
    }
  });

  test('the fan-out role may read exactly the search secrets its stage names; no other role may read one', () => {
    const searchSecret = /es-password|es-api-key/;
    const expected: Record<Stage, { ssm: string[]; secretsManager: string[] }> = {
      // dev: basic auth, the password in an SSM parameter.
      dev: { ssm: [':parameter/sunbird-dataops/dev/es-password'], secretsManager: [] },
      // prod: an API key in Secrets Manager, read through SSM's reference path.
      prod: {
        ssm: [':parameter/aws/reference/secretsmanager/sunbird-dataops/prod/es-api-key'],
        secretsManager: [':secret:sunbird-dataops/prod/es-api-key-??????'],
      },
      // local: empty search url and secrets: drift repair not configured, nothing granted.
      local: { ssm: [], secretsManager: [] },
    };
    for (const stage of STAGE_NAMES) {
      const t = STAGES[stage].t();
      for (const { role } of Object.values(FUNCTIONS)) {
        const granted = secretGrants(t, role);
        const found = {
          ssm: granted.ssm.filter((g) => searchSecret.test(g)),
          secretsManager: granted.secretsManager.filter((g) => searchSecret.test(g)),
        };
        if (role !== 'FanoutRole') {
          assert.deepEqual(found, { ssm: [], secretsManager: [] }, `${stage} ${role}`);
          continue;
        }
        const want = expected[stage];
        assert.equal(found.ssm.length, want.ssm.length, `${stage}: ${found.ssm.join(', ')}`);
        assert.equal(found.secretsManager.length, want.secretsManager.length, `${stage} Secrets Manager`);
        for (const w of want.ssm)
          assert.ok(
            found.ssm.some((g) => g.endsWith(`${w}"}`)),
            `${stage}: ${w}`,
          );
        for (const w of want.secretsManager)
          assert.ok(
            found.secretsManager.some((g) => g.endsWith(`${w}"}`)),
            `${stage}: ${w}`,
          );
      }
    }
  });

  test('local: a stage with an empty search url packages, and its fan-out bundle is there', () => {
    assert.equal(fnOf(localTemplate, 'local', 'fanout').env.ES_URL, '');
    for (const name of FN_NAMES) {
      const zip = path.join(LOCAL_OUT, `${name}.zip`);
      assert.ok(existsSync(zip), `${zip} exists`);
      assert.ok(statSync(zip).size < MAX_ZIP_BYTES, `${name}.zip is under ${MAX_ZIP_BYTES} bytes`);
    }
  });
});

describe('Secrets Manager secrets (prod reads its Keycloak client secret and its search API key from one each)', () => {
  const roles = Object.values(FUNCTIONS).map((f) => f.role);

  test('dev names only SSM parameters: no role may read any Secrets Manager secret', () => {
    for (const role of roles) {
      const [policy] = template.Resources[role]!.Properties.Policies as {
        PolicyDocument: { Statement: unknown[] };
      }[];
      const live = resolved(policy!.PolicyDocument.Statement, template) as Statement[];
      assert.ok(
        !live.some((s) => s.Sid === 'ReadSecretsManagerSecrets'),
        `${role}: no Secrets Manager grant in dev`,
      );
    }
  });

  test('prod: each Secrets Manager secret is readable by exactly the role that uses it, with its SSM reference', () => {
    const secretOf: Record<string, string> = {
      DeleteKeycloakUsersRole: 'sunbird-dataops/prod/keycloak-client-secret',
      FanoutRole: 'sunbird-dataops/prod/es-api-key',
    };
    for (const role of roles) {
      const [policy] = prodTemplate.Resources[role]!.Properties.Policies as {
        PolicyDocument: { Statement: unknown[] };
      }[];
      const live = resolved(policy!.PolicyDocument.Statement, prodTemplate) as Statement[];
      const sm = live.filter((s) => actions(s).some((a) => a.startsWith('secretsmanager:')));
      const secret = secretOf[role];
      if (!secret) {
        assert.deepEqual(sm, [], `${role} reads no Secrets Manager secret`);
        continue;
      }
      assert.equal(sm.length, 1, role);
      assert.deepEqual(sm[0]!.Action, 'secretsmanager:GetSecretValue');
      assert.deepEqual(sm[0]!.Resource, [
        {
          // The Fn::Sub placeholders (escaped) are CloudFormation's to fill.
          'Fn::Sub': `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${secret}-??????`,
        },
      ]);
      const ssm = live.filter((s) => actions(s).includes('ssm:GetParameter')).flatMap(resources);
      assert.ok(
        json(ssm).includes(`:parameter/aws/reference/secretsmanager/${secret}`),
        `${role}: and the SSM reference parameter it is read through`,
      );
    }
  });
});

describe('the template conforms to the CloudFormation resource specification', () => {
  test('dev, prod and local: known resource types, known properties of the right types, required ones present', async () => {
    assert.deepEqual(await checkTemplate(template), [], 'dev');
    assert.deepEqual(await checkTemplate(prodTemplate), [], 'prod');
    assert.deepEqual(await checkTemplate(localTemplate), [], 'local');
  });

  test('the check catches an unknown property, a wrong type, a bad nested value and a missing required property', async () => {
    const broken = structuredClone(template);
    broken.Resources.SyncQueue!.Properties.VisibilityTimeOut = 30;
    broken.Resources.AlarmTopic!.Properties.Tags = [{ Key: 'service' }];
    (
      broken.Resources.MergeUserCoursesMskEventSourceMapping!.Properties.ProvisionedPollerConfig as Json
    ).MinimumPollers = 'one';
    delete broken.Resources[lambda('fanout')[0]]!.Properties.Role;
    const errors = await checkTemplate(broken);
    assert.equal(errors.length, 4, errors.join('\n'));
    assert.match(errors.join('\n'), /SyncQueue \(AWS::SQS::Queue\): unknown property VisibilityTimeOut/);
    assert.match(errors.join('\n'), /AlarmTopic .*Tags\[0\]: expected a \{Key, Value\} tag/);
    assert.match(errors.join('\n'), /ProvisionedPollerConfig\.MinimumPollers: expected a number, got "one"/);
    assert.match(errors.join('\n'), /FanoutLambdaFunction .*missing required property Role/);
  });
});
