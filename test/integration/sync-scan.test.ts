/**
 * The fan-out's scan: real Cassandra (16 vnodes, so token-range splitting is exercised) and real
 * ElasticMQ as the sync queue.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { seed, seededUserIds } from '#scripts/seed/seed.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { MemoryQueue, type MessageQueue } from '#shared/queue/queue.ts';
import { SqsQueue } from '#shared/queue/sqs.ts';
import { CassandraIdSource } from '#shared/sync/cassandra-ids.ts';
import { CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import { type Block, blockSchema, type ScanTask, scanTaskSchema } from '#shared/sync/messages.ts';
import { startRun } from '#shared/sync/run.ts';
import { scanRange } from '#shared/sync/scan.ts';
import { summarise } from '#shared/sync/summary.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { drain, isolatedQueue, testSqs } from '#test/helpers/sqs.ts';

const ROWS = 100_000;
let client: CassandraClient;
let ks: { sunbird: string; ops: string };
let drop: () => Promise<void>;
let sqs: SQSClient;
let ledger: CassandraRunLedger;

before(async () => {
  const iso = await isolatedKeyspaces('scan', ['sunbird', 'ops']);
  ({ client, drop } = iso);
  ks = iso.ks;
  await seed(client, {
    users: ROWS,
    orgs: 0,
    courses: 0,
    courseUsers: 0,
    contentsPerCourse: 0,
    seed: 7,
    keyspace: ks.sunbird,
    coursesKeyspace: 'unused',
    concurrency: 512,
  });
  sqs = testSqs();
  ledger = new CassandraRunLedger(client, ks.ops);
});

after(async () => {
  await drop();
  sqs.destroy();
});

/** Collects scan tasks from startRun without a queue service in between. */
async function planTasks(
  runOverrides: Partial<ScanTask['run']> = {},
  blockQueue: MessageQueue = new MemoryQueue(1),
): Promise<ScanTask[]> {
  const scanQueue = new MemoryQueue(Number.MAX_SAFE_INTEGER);
  await startRun(
    {
      job: 'sync',
      objectType: 'user',
      table: 'user',
      keyspace: ks.sunbird,
      dryRun: false,
      verify: false,
      blockSize: 100,
      sleepMs: 0,
      source: 'test',
      plan: { minTasks: 32 },
      ...runOverrides,
    },
    { ids: new CassandraIdSource(client), ledger, scanQueue, blockQueue },
  );
  scanQueue.close();
  const tasks: ScanTask[] = [];
  for (let b = await scanQueue.take(); b !== null; b = await scanQueue.take())
    tasks.push(scanTaskSchema.parse(JSON.parse(b)));
  return tasks;
}

function idsOf(bodies: string[]): string[] {
  return bodies.flatMap((b) => blockSchema.parse(JSON.parse(b)).ids);
}

describe('full scan fan-out', () => {
  test('a full scan of a 100,000-row table enqueues every id exactly as the table holds them', async () => {
    const q = await isolatedQueue(sqs, 'scan-all');
    try {
      const tasks = await planTasks();
      assert.ok(tasks.length >= 32, `the ring is cut into many sub-ranges (got ${tasks.length})`);
      const queue = new SqsQueue(sqs, q.url);
      let enumerated = 0;
      for (const task of tasks) {
        const r = await scanRange(task, { ids: new CassandraIdSource(client), queue, ledger });
        assert.equal(r.done, true);
        enumerated += r.ids;
      }
      const bodies = await drain(sqs, q.url);
      const ids = idsOf(bodies);
      assert.equal(enumerated, ROWS, 'the scan reports every row it enumerated');
      assert.equal(ids.length, ROWS, 'no id is enqueued twice in a clean run');
      assert.deepEqual(
        new Set(ids),
        new Set(seededUserIds(7, ROWS)),
        'the enqueued ids are exactly the table’s',
      );
      for (const b of bodies)
        assert.ok(blockSchema.parse(JSON.parse(b)).ids.length <= 100, 'blocks respect the block size');
      const runId = tasks[0]!.run.runId;
      const summary = await summarise(ledger, runId);
      assert.equal(summary?.idsEnumerated, ROWS, 'the ledger says how many ids were enumerated');
      assert.equal(summary?.ranges.done, tasks.length);
    } finally {
      await q.drop();
    }
  });

  test('a small table is planned as few tasks, so its blocks stay full (not one partial block per vnode)', async () => {
    await seed(client, {
      users: 0,
      orgs: 230,
      courses: 0,
      courseUsers: 0,
      contentsPerCourse: 0,
      seed: 9,
      keyspace: ks.sunbird,
      coursesKeyspace: 'unused',
    });
    const scanQueue = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    const blockQueue = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    const started = await startRun(
      {
        job: 'sync',
        objectType: 'organisation',
        table: 'organisation',
        keyspace: ks.sunbird,
        dryRun: true,
        verify: false,
        blockSize: 100,
        sleepMs: 0,
        source: 'test',
        plan: { minTasks: 64 },
      },
      { ids: new CassandraIdSource(client), ledger, scanQueue, blockQueue },
    );
    scanQueue.close();
    assert.equal(started.tasks, 1, 'one task covers the whole ring');
    for (let b = await scanQueue.take(); b !== null; b = await scanQueue.take()) {
      await scanRange(scanTaskSchema.parse(JSON.parse(b)), {
        ids: new CassandraIdSource(client),
        queue: blockQueue,
      });
    }
    blockQueue.close();
    const sizes: number[] = [];
    const ids: string[] = [];
    for (let b = await blockQueue.take(); b !== null; b = await blockQueue.take()) {
      const block = blockSchema.parse(JSON.parse(b));
      sizes.push(block.ids.length);
      ids.push(...block.ids);
    }
    assert.deepEqual(sizes, [100, 100, 30], 'three Sync API calls, as the original would make');
    assert.equal(new Set(ids).size, 230);
  });

  test('a scan stopped by its time budget resumes from its checkpoint without losing or repeating ids', async () => {
    const tasks = await planTasks();
    const queue = new MemoryQueue(Number.MAX_SAFE_INTEGER);
    let continuations = 0;
    for (const first of tasks) {
      let task: ScanTask = first;
      for (;;) {
        let pages = 0;
        // A tiny page size and a budget of one page force several checkpoints per sub-range.
        const r = await scanRange(task, {
          ids: new CassandraIdSource(client),
          queue,
          fetchSize: 250,
          shouldStop: () => ++pages >= 1,
        });
        if (r.done) break;
        continuations++;
        // The continuation travels as a queue message: it must survive serialisation.
        task = scanTaskSchema.parse(JSON.parse(JSON.stringify(r.continuation)));
      }
    }
    queue.close();
    const bodies: string[] = [];
    for (let b = await queue.take(); b !== null; b = await queue.take()) bodies.push(b);
    const ids = idsOf(bodies);
    assert.ok(continuations > tasks.length, `checkpoints were taken (${continuations})`);
    assert.equal(ids.length, ROWS);
    assert.deepEqual(new Set(ids), new Set(seededUserIds(7, ROWS)));
    const keys = bodies.map((b) => {
      const blk: Block = blockSchema.parse(JSON.parse(b));
      return `${blk.rangeNo}/${blk.seq}`;
    });
    assert.equal(new Set(keys).size, keys.length, 'block numbers continue across checkpoints');
  });

  test('an invocation killed mid-range and retried from its message loses no id (at-least-once)', async () => {
    const tasks = await planTasks();
    const delivered: string[] = [];
    let killArmed = false;
    // The first attempt of every task dies after its first page is enqueued, as if the Lambda were killed.
    const flaky: MessageQueue = {
      send: async (bodies) => {
        delivered.push(...bodies);
        if (killArmed) {
          killArmed = false;
          throw new Error('invocation killed');
        }
      },
    };
    let killed = 0;
    for (const task of tasks) {
      killArmed = true;
      try {
        await scanRange(task, { ids: new CassandraIdSource(client), queue: flaky, fetchSize: 1000 });
      } catch {
        killed++;
      }
      // SQS redelivers the same message: the scan restarts from the message's own checkpoint.
      const r = await scanRange(task, { ids: new CassandraIdSource(client), queue: flaky, fetchSize: 1000 });
      assert.equal(r.done, true);
    }
    assert.equal(killed, tasks.length, 'every first attempt was killed');
    const ids = new Set(idsOf(delivered));
    assert.deepEqual(ids, new Set(seededUserIds(7, ROWS)), 'every id reached the queue at least once');
  });
});
