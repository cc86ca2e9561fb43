/**
 * The local services script. It never stops a managed service: other test files need them up.
 * (`down` was verified by hand; here only its safe path — postgres is never stopped — is tested.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { contextFor, PROJECT_ROOT } from '#scripts/services/common.ts';
import { LOCAL_QUEUES, localQueueUrl, localSqsClient } from '#scripts/services/elasticmq.ts';
import { kafkaService } from '#scripts/services/kafka.ts';
import { OPENSEARCH_URL, opensearchService } from '#scripts/services/opensearch.ts';
import { VERSIONS } from '#scripts/services/versions.ts';
import {
  DEFAULT_SERVICE_NAMES,
  ensureServices,
  SERVICES,
  serviceStatus,
  stopServices,
} from '#scripts/services.ts';

const run = promisify(execFile);
const quiet = () => undefined;

function cli(...args: string[]) {
  return run(process.execPath, [join(PROJECT_ROOT, 'scripts', 'services.ts'), ...args], {
    cwd: PROJECT_ROOT,
  });
}

test('up brings every service up; a second up starts nothing', { timeout: 600_000 }, async () => {
  const first = await ensureServices([], { log: quiet });
  assert.deepEqual(first.map((r) => r.name).sort(), [...DEFAULT_SERVICE_NAMES].sort());

  const second = await ensureServices([], { log: quiet });
  assert.deepEqual(second.map((r) => r.name).sort(), [...DEFAULT_SERVICE_NAMES].sort());
  for (const r of second) {
    // 'foreign' (healthy, served by another checkout's process) is also "nothing started".
    assert.notEqual(r.state, 'started', `${r.name} was started again`);
  }
});

test('the CLI reports everything already running, and status lists every service healthy', async () => {
  const up = await cli('up');
  assert.match(up.stdout, /all \d+ services already running/);
  // Either this checkout started it, or another checkout's healthy process is used as it is.
  for (const name of DEFAULT_SERVICE_NAMES)
    assert.match(
      up.stdout,
      new RegExp(`^${name}: (already running|\\d+ is served by a process we did not start)`, 'm'),
    );
  assert.doesNotMatch(up.stdout, /^\S+: started/m, 'nothing was started');

  const status = await cli('status');
  for (const name of DEFAULT_SERVICE_NAMES)
    assert.match(status.stdout, new RegExp(`^${name}\\s.*\\shealthy`, 'm'));

  for (const row of await serviceStatus(DEFAULT_SERVICE_NAMES)) {
    assert.match(row.health, /^healthy/, `${row.name}: ${row.detail}`);
  }
});

test('down never stops postgres', async () => {
  const [result] = await stopServices(['postgres'], { log: quiet });
  assert.equal(result?.state, 'not-managed');
  const [row] = await serviceStatus(['postgres']);
  assert.equal(row?.health, 'healthy');
});

test('unknown service names are rejected with one line', async () => {
  await assert.rejects(ensureServices(['nope'], { log: quiet }), /unknown service nope/);
  await assert.rejects(cli('up', 'nope'), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /^services: unknown service nope/);
    return true;
  });
});

test('elasticmq has the predeclared queues with dead-letter queues, and creates queues at run time', async () => {
  const sqs = localSqsClient();
  try {
    for (const q of LOCAL_QUEUES) {
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: localQueueUrl(q.name), AttributeNames: ['All'] }),
      );
      assert.equal(Attributes?.QueueArn, `arn:aws:sqs:us-east-1:000000000000:${q.name}`);
      const redrive = JSON.parse(Attributes?.RedrivePolicy ?? '{}');
      assert.equal(redrive.deadLetterTargetArn, `arn:aws:sqs:us-east-1:000000000000:${q.deadLetterQueue}`);
      assert.equal(Number(redrive.maxReceiveCount), 5);
    }
    const name = `services-test-${process.pid}-${Date.now()}`;
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
    assert.equal(QueueUrl, localQueueUrl(name));
    await sqs.send(new DeleteQueueCommand({ QueueUrl }));
  } finally {
    sqs.destroy();
  }
});

test('kafka: produce and consume through a consumer group with the project client', {
  timeout: 120_000,
}, async () => {
  await kafkaService.verify!(contextFor('kafka', quiet));
});

test('every dependency a service declares is registered and comes before it in up order', () => {
  const order = SERVICES.map((s) => s.name);
  const keycloak = SERVICES.find((s) => s.name === 'keycloak');
  assert.deepEqual(keycloak?.dependsOn, ['postgres']);
  for (const def of SERVICES) {
    for (const dep of def.dependsOn ?? []) {
      assert.ok(order.includes(dep), `${def.name} depends on unknown ${dep}`);
      assert.ok(order.indexOf(dep) < order.indexOf(def.name), `${dep} is listed after ${def.name}`);
    }
  }
});

test('opensearch is on demand: a plain up leaves it out, up opensearch brings it up once', {
  timeout: 600_000,
}, async () => {
  assert.ok(!DEFAULT_SERVICE_NAMES.includes('opensearch'));
  const [first] = await ensureServices(['opensearch'], { log: quiet });
  assert.equal(first?.name, 'opensearch');
  const [second] = await ensureServices(['opensearch'], { log: quiet });
  assert.notEqual(second?.state, 'started', 'opensearch was started again');

  const up = await cli('up', 'opensearch');
  assert.match(up.stdout, /^opensearch: (already running|9200 is served by a process we did not start)/m);
  const status = await cli('status', 'opensearch');
  assert.match(status.stdout, /^opensearch\s+2\.19\.\d+\s+9200\/REST 9300\/transport\s.*\shealthy/m);

  const root = (await (await fetch(OPENSEARCH_URL)).json()) as { version: { number: string } };
  // Another checkout's node is used as it is, so only the minor version is certain.
  assert.match(root.version.number, /^2\.19\./);
  if (first?.state !== 'foreign') assert.equal(root.version.number, VERSIONS.opensearch);
  const health = (await (
    await fetch(`${OPENSEARCH_URL}/_cluster/health?wait_for_status=yellow&timeout=10s`)
  ).json()) as { status: string; number_of_nodes: number };
  assert.match(health.status, /^(yellow|green)$/);
  assert.equal(health.number_of_nodes, 1);
});

test('opensearch: an index with an analyzer from analysis-common takes a document and finds it', {
  timeout: 120_000,
}, async () => {
  await opensearchService.verify!(contextFor('opensearch', quiet));
});
