/**
 * The deployable stack: `serverless package --stage dev` (osls 4 + serverless-esbuild), run offline
 * with no AWS credentials, and the CloudFormation it writes. Packaging takes about a minute, so it runs
 * once per file, and not at all when `.serverless/` is newer than every input.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '../..');
const OUT = path.join(ROOT, '.serverless');
const TEMPLATE = path.join(OUT, 'cloudformation-template-update-stack.json');
const PREFIX = 'sunbird-dataops-dev';

type Json = Record<string, unknown>;
interface Resource {
  Type: string;
  Properties: Json;
  DependsOn?: string[];
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
  fanout: { role: 'FanoutRole', secrets: ['CASSANDRA_PASSWORD'] },
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

function packageStack(): void {
  if (existsSync(TEMPLATE) && statSync(TEMPLATE).mtimeMs > newestInput()) return;
  const env: NodeJS.ProcessEnv = { ...process.env, DATAOPS_ESBUILD_FOLDER: '.esbuild-package' };
  // Prove that packaging needs no AWS access.
  for (const k of ['AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
    delete env[k];
  const run = spawnSync(
    path.join(ROOT, 'node_modules/.bin/serverless'),
    ['package', '--stage', 'dev', '--package', OUT],
    { cwd: ROOT, env, encoding: 'utf8', timeout: 300_000 },
  );
  assert.equal(run.status, 0, `serverless package failed:\n${run.stdout}\n${run.stderr}`);
}

let template: { Resources: Record<string, Resource>; Conditions: Json };
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

function mappingFor(fnLogicalId: string): Resource[] {
  return byType('AWS::Lambda::EventSourceMapping')
    .map(([, r]) => r)
    .filter((r) => getAtt(r.Properties.FunctionName) === fnLogicalId);
}

/** Every statement of a role, both branches of each `Fn::If` included. */
function statements(roleId: string): Statement[] {
  const role = template.Resources[roleId];
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

/** Evaluates a template condition made of Fn::Not / Fn::Equals over literals (all the stage resolves to). */
function holds(condition: unknown): boolean {
  const c = condition as { 'Fn::Not'?: unknown[]; 'Fn::Equals'?: unknown[] };
  if (c['Fn::Not']) return !holds(c['Fn::Not'][0]);
  if (c['Fn::Equals']) return json(c['Fn::Equals'][0]) === json(c['Fn::Equals'][1]);
  throw new Error(`cannot evaluate condition ${json(condition)}`);
}

/** A grant that is there in this stage: `Fn::If` on a false condition grants nothing. */
const inThisStage = (r: unknown): boolean => {
  const iff = (r as { 'Fn::If'?: [string, unknown, unknown] })['Fn::If'];
  return !iff || holds(template.Conditions[iff[0]]);
};

before(() => {
  packageStack();
  template = JSON.parse(readFileSync(TEMPLATE, 'utf8'));
});

describe('serverless package --stage dev', () => {
  test('resolves everything from the stage file: no SSM lookups, no unresolved variables', () => {
    const text = readFileSync(TEMPLATE, 'utf8');
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

  test('full user and organisation resync schedules deliver a start payload, disabled in dev', () => {
    const [fanoutId] = lambda('fanout');
    const rules = byType('AWS::Events::Rule').map(([, r]) => r.Properties);
    const inputs = rules.map((r) => {
      const target = (r.Targets as { Arn: unknown; Input: string }[])[0]!;
      assert.equal(getAtt(target.Arn), fanoutId);
      assert.equal(r.State, 'DISABLED');
      return JSON.parse(target.Input);
    });
    assert.deepEqual(
      inputs.sort((a, b) => a.objectType.localeCompare(b.objectType)),
      [
        { job: 'sync', objectType: 'organisation', dryRun: true },
        { job: 'sync', objectType: 'user', dryRun: true },
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

  test('an alarm on every dead-letter queue as soon as it holds a message', () => {
    const alarmed = byType('AWS::CloudWatch::Alarm').map(([, a]) => {
      const p = a.Properties;
      assert.equal(p.Namespace, 'AWS/SQS');
      assert.equal(p.MetricName, 'ApproximateNumberOfMessagesVisible');
      assert.equal(p.Threshold, 0);
      assert.equal(p.ComparisonOperator, 'GreaterThanThreshold');
      return getAtt((p.Dimensions as { Value: unknown }[])[0]!.Value);
    });
    assert.deepEqual(alarmed.sort(), ['DeleteDeadLetterQueue', 'ScanDeadLetterQueue', 'SyncDeadLetterQueue']);
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
