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
import { DEFAULT_SERVICE_NAMES, ensureServices, serviceStatus, stopServices } from '#scripts/services.ts';

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
