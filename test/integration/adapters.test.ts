/** Each shared adapter against its real server. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import cassandra from 'cassandra-driver';
import {
  cassandraTypes,
  consistencyOf,
  createCassandraClient,
  pagedRows,
} from '#shared/clients/cassandra.ts';
import { createPgPool } from '#shared/clients/postgres.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import { SqsQueue } from '#shared/queue/sqs.ts';
import { BLOCKS_PER_CHUNK, CassandraRunLedger } from '#shared/sync/cassandra-ledger.ts';
import type { BlockOutcome, RangeProgress } from '#shared/sync/ports.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { drain, isolatedQueue, testSqs } from '#test/helpers/sqs.ts';

const sqs = testSqs();
after(() => sqs.destroy());

describe('Cassandra client factory', () => {
  test('connects with the configured local DC and consistency, prepares statements and pages results', async () => {
    const iso = await isolatedKeyspaces('adapter', ['sunbird']);
    const client = createCassandraClient({
      hosts: ['127.0.0.1'],
      port: 9042,
      localDataCenter: 'datacenter1',
      consistency: 'LOCAL_QUORUM',
      keyspace: iso.ks.sunbird,
    });
    try {
      for (let i = 0; i < 25; i++)
        await client.execute('INSERT INTO user (id, firstname) VALUES (?, ?)', [`a${i}`, `n${i}`]);
      const rs = await client.execute('SELECT id FROM user WHERE id = ?', ['a3']);
      assert.equal(rs.info.achievedConsistency, cassandraTypes.consistencies.localQuorum);
      const seen: string[] = [];
      for await (const row of pagedRows(client, 'SELECT id FROM user', [], 4)) seen.push(row.id);
      assert.equal(seen.length, 25, 'all rows across pages of 4');
      assert.equal(consistencyOf('local_one'), cassandraTypes.consistencies.localOne);
      assert.throws(() => consistencyOf('SOMETIMES'), /unknown consistency level/);
    } finally {
      await client.shutdown();
      await iso.drop();
    }
  });

  test('a configured user gets a plain-text auth provider; an empty user connects without one', async () => {
    const withAuth = createCassandraClient({
      hosts: ['127.0.0.1'],
      port: 9042,
      localDataCenter: 'datacenter1',
      username: 'someone',
      password: 'pw',
    });
    const without = createCassandraClient({
      hosts: ['127.0.0.1'],
      port: 9042,
      localDataCenter: 'datacenter1',
      username: '',
    });
    try {
      const provider = (c: unknown) => (c as { options: { authProvider?: unknown } }).options.authProvider;
      assert.ok(provider(withAuth) instanceof cassandra.auth.PlainTextAuthProvider);
      assert.ok(!(provider(without) instanceof cassandra.auth.PlainTextAuthProvider));
      // The local node runs without authentication, so both connect.
      for (const c of [withAuth, without])
        assert.ok(
          (await c.execute('SELECT release_version FROM system.local'))
            .first()
            .release_version.startsWith('5.'),
        );
    } finally {
      await Promise.all([withAuth.shutdown(), without.shutdown()]);
    }
  });
});

describe('Cassandra run ledger', () => {
  const outcome = (rangeNo: number, seq: number, ids: string[], failed: string[] = []): BlockOutcome => ({
    rangeNo,
    seq,
    stage: 'sync',
    status: failed.length ? 'failed' : 'succeeded',
    ids,
    failedIds: failed,
    reason: failed.length ? 'HTTP 500' : null,
    attempts: 1,
    httpStatus: failed.length ? 500 : 200,
    response: null,
  });
  const range = (rangeNo: number, blocks: number): RangeProgress => ({
    rangeNo,
    start: '0',
    end: '1',
    ids: 0,
    blocks,
    done: true,
    hops: 0,
  });

  test('concurrent outcomes are written in groups (one batch per partition) and all read back exactly', async () => {
    const iso = await isolatedKeyspaces('ledgergc', ['ops']);
    const ledger = new CassandraRunLedger(iso.client, iso.ks.ops);
    let batches = 0;
    const batch = iso.client.batch.bind(iso.client);
    iso.client.batch = ((...args: Parameters<typeof batch>) => {
      batches++;
      return batch(...args);
    }) as typeof batch;
    try {
      // Three ranges; range 1 crosses a chunk boundary, so one group may span two partitions.
      const written: BlockOutcome[] = [];
      for (let seq = 0; seq < 60; seq++) written.push(outcome(0, seq, [randomUUID(), randomUUID()]));
      for (let seq = BLOCKS_PER_CHUNK - 30; seq < BLOCKS_PER_CHUNK + 30; seq++)
        written.push(outcome(1, seq, [`r1-${seq}`], seq % 7 === 0 ? [`r1-${seq}`] : []));
      written.push(outcome(2, 0, ['odd\nid', '[bracketed'], ['odd\nid']));
      await Promise.all(written.map((o) => ledger.recordBlock('run-gc', o)));
      assert.ok(batches > 0, 'outcomes that arrived together were written as batches');

      const read: BlockOutcome[] = [];
      for await (const b of ledger.blocks('run-gc', 'sync', [
        range(0, 60),
        range(1, BLOCKS_PER_CHUNK + 30),
        range(2, 1),
      ]))
        read.push(b);
      const key = (b: BlockOutcome) => `${b.rangeNo}/${b.seq}`;
      const byKey = new Map(read.map((b) => [key(b), b]));
      assert.equal(read.length, written.length, 'every outcome was written once');
      for (const w of written) {
        const r = byKey.get(key(w));
        assert.ok(r, `block ${key(w)} read back`);
        assert.deepEqual(r.ids, w.ids);
        assert.deepEqual(r.failedIds, w.failedIds);
        assert.equal(r.status, w.status);
      }
    } finally {
      iso.client.batch = batch;
      await iso.drop();
    }
  });

  test('rows written by 0.1 (ids in list columns) still read back after migrate adds the packed columns', async () => {
    const iso = await isolatedKeyspaces('ledgerold', ['ops']);
    const ledger = new CassandraRunLedger(iso.client, iso.ks.ops);
    try {
      await iso.client.execute(
        `ALTER TABLE ${iso.ks.ops}.run_blocks ADD (ids list<text>, failed_ids list<text>)`,
      );
      await iso.client.execute(
        `INSERT INTO ${iso.ks.ops}.run_blocks (run_id, range_no, chunk, seq, stage, status, ids, failed_ids, attempts) VALUES (?,?,?,?,?,?,?,?,?)`,
        ['old-run', 0, 0, 0, 'sync', 'failed', ['u1', 'u2'], ['u2'], 1],
        { prepare: true },
      );
      const read: BlockOutcome[] = [];
      for await (const b of ledger.blocks('old-run', 'sync', [range(0, 1)])) read.push(b);
      assert.equal(read.length, 1);
      assert.deepEqual(read[0]!.ids, ['u1', 'u2']);
      assert.deepEqual(read[0]!.failedIds, ['u2']);
    } finally {
      await iso.drop();
    }
  });
});

describe('PostgreSQL pool', () => {
  test('runs queries on the local server', async () => {
    const pool = createPgPool({ url: 'postgres://postgres@127.0.0.1:5432/postgres' });
    try {
      const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(rows[0]?.one, 1);
    } finally {
      await pool.end();
    }
  });
});

describe('PostgreSQL pool, idle connection lost', () => {
  test('a backend terminated under an idle connection is reported, not a crash, and the pool recovers', async () => {
    const seen: string[] = [];
    const pool = createPgPool({
      url: 'postgres://postgres@127.0.0.1:5432/postgres',
      max: 1,
      onIdleError: (e) => seen.push(e.message),
    });
    const admin = createPgPool({ url: 'postgres://postgres@127.0.0.1:5432/postgres', max: 1 });
    try {
      const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(seen[0] ?? '', /terminating connection due to administrator command/);
      const again = await pool.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(again.rows[0]?.one, 1, 'the next query gets a fresh connection');
    } finally {
      await Promise.all([pool.end(), admin.end()]);
    }
  });
});

describe('SQS queue adapter', () => {
  test('sends any number of messages in batches of at most 10 and 256 KB', async () => {
    const q = await isolatedQueue(sqs, 'adapter');
    try {
      const queue = new SqsQueue(sqs, q.url, { concurrency: 3 });
      const big = 'x'.repeat(60_000); // five of these exceed one batch's 256 KB
      const bodies = [
        ...Array.from({ length: 23 }, (_, i) => `m${i}`),
        ...Array.from({ length: 6 }, (_, i) => `${big}${i}`),
      ];
      await queue.send(bodies);
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ['ApproximateNumberOfMessages'] }),
      );
      assert.equal(attrs.Attributes?.ApproximateNumberOfMessages, '29');
      assert.deepEqual((await drain(sqs, q.url)).sort(), bodies.sort());
    } finally {
      await q.drop();
    }
  });
});

describe('in-process queue', () => {
  test('applies backpressure: a sender waits while the queue is full', async () => {
    const q = new MemoryQueue(2);
    let sent = false;
    const sending = q.send(['a', 'b', 'c']).then(() => {
      sent = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sent, false, 'the third message waits for room');
    assert.equal(await q.take(), 'a');
    await sending;
    assert.equal(sent, true);
    q.close();
    assert.deepEqual([await q.take(), await q.take(), await q.take()], ['b', 'c', null]);
  });
});
