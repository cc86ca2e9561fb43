/**
 * merge-user-courses with Kafka down, against real Cassandra and the real local Kafka broker, as an
 * operator runs it (a child process): a closed port, SASL/TLS against the plaintext broker and a broker
 * that never answers each end in exit 3 within the Kafka timeout, naming the brokers, before anything is
 * written; Kafka lost between the merge's writes and its events leaves the merge in the journal. Either
 * way the next run of the same pair completes it, and the batch-enrolment-sync events are published
 * exactly once in total.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { samplePair, seedPair } from '#scripts/seed/merge-data.ts';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { createConsumer, createProducer, type KafkaOptions } from '#shared/clients/kafka.ts';
import { ServiceUnavailableError } from '#shared/core/errors.ts';
import { CassandraMergeStore } from '#shared/merge/cassandra-store.ts';
import { runMerge } from '#shared/merge/merge.ts';
import { kafkaPublisher } from '#shared/merge/runtime.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { type CliResult, lastLine, runCli } from '#test/helpers/cli.ts';
import { startTcpProxy } from '#test/helpers/tcp-proxy.ts';

/** A Sunbird environment of this file's own, so its topics are its own. */
const ENV = `kdown${randomBytes(3).toString('hex')}`;
const COURSE_BATCH_TOPIC = `${ENV}.coursebatch.job.request`;
const kafka: KafkaOptions = { brokers: ['127.0.0.1:9092'], clientId: `kdown-${ENV}` };
/** The sample pair's to-account ends with three enrolments: one event each. */
const EVENTS_PER_MERGE = 3;

let client: CassandraClient;
let ks: { courses: string; ops: string };
let drop: () => Promise<void>;

before(async () => {
  const iso = await isolatedKeyspaces('kdown', ['courses', 'ops']);
  ({ client, drop } = iso);
  ks = { courses: iso.ks.courses, ops: iso.ks.ops };
});

after(async () => {
  await drop?.();
});

async function seededPair(): Promise<{ from: string; to: string }> {
  const pair = { from: `from-${randomUUID()}`, to: `to-${randomUUID()}` };
  await seedPair(client, ks.courses, samplePair(pair.from, pair.to));
  return pair;
}

function merge(pair: { from: string; to: string }, env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(['merge-user-courses', '--from', pair.from, '--to', pair.to], {
    COURSES_KEYSPACE: ks.courses,
    DATAOPS_KEYSPACE: ks.ops,
    SUNBIRD_ENV: ENV,
    LOG_LEVEL: 'WARN',
    ...env,
  });
}

/** The journal rows of a pair, and the to-account's content rows: what a merge writes first. */
async function written(pair: { from: string; to: string }): Promise<{ journal: number; toRows: number }> {
  const journal = await client.execute(
    `SELECT status FROM ${ks.ops}.merge_journal WHERE from_id = ? AND to_id = ?`,
    [pair.from, pair.to],
  );
  const toRows = await client.execute(
    `SELECT contentid FROM ${ks.courses}.user_content_consumption WHERE userid = ?`,
    [pair.to],
  );
  return { journal: journal.rowLength, toRows: toRows.rowLength };
}

/** Every batch-enrolment-sync event for `to` on the topic, read from the start until it stays quiet. */
async function eventsFor(to: string, quietMs = 3000): Promise<Array<{ batchId: string }>> {
  const consumer = createConsumer({ ...kafka, groupId: `kdown-reader-${randomUUID()}` });
  const stream = await consumer.consume({ topics: [COURSE_BATCH_TOPIC], mode: 'earliest' });
  const got: Array<{ batchId: string }> = [];
  let quiet = setTimeout(() => void stream.close(), quietMs * 3);
  try {
    for await (const m of stream) {
      const event = JSON.parse(m.value) as { edata: { userId: string; batchId: string } };
      if (event.edata.userId === to) got.push({ batchId: event.edata.batchId });
      clearTimeout(quiet);
      quiet = setTimeout(() => void stream.close(), quietMs);
    }
  } finally {
    clearTimeout(quiet);
    await stream.close().catch(() => undefined);
    await consumer.close(true);
  }
  return got;
}

/** The run that completes a merge once Kafka is back, and the events published for it in total. */
async function completesOnceKafkaIsBack(pair: { from: string; to: string }, mode: RegExp): Promise<void> {
  const seededToRows = samplePair(pair.from, pair.to).consumption.filter((r) => r.userid === pair.to).length;
  const r = await merge(pair);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, mode);
  assert.match(r.stdout, new RegExp(`batch-enrolment-sync events ${EVENTS_PER_MERGE}`));
  const events = await eventsFor(pair.to);
  assert.equal(events.length, EVENTS_PER_MERGE, 'each enrolment’s event published exactly once in total');
  assert.equal(new Set(events.map((e) => e.batchId)).size, EVENTS_PER_MERGE);
  const after = await written(pair);
  assert.equal(after.journal, 1, 'the merge is in the journal');
  assert.ok(after.toRows > seededToRows, 'the from-account’s content rows were copied');
}

describe('merge-user-courses with Kafka down', { timeout: 240_000 }, () => {
  test('a closed port: exit 3 naming the brokers, nothing written; the next run merges, events once', async () => {
    const pair = await seededPair();
    const before = await written(pair);
    const r = await merge(pair, { KAFKA_BROKERS: '127.0.0.1:1', KAFKA_TIMEOUT_MS: '5000' });
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    assert.match(
      lastLine(r),
      /^sunbird-dataops: merge did not complete: Kafka is not reachable at 127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
    assert.deepEqual(await written(pair), before, 'no write before Kafka answered');
    await completesOnceKafkaIsBack(pair, /: merged \(plan /);
  });

  test('SASL over TLS against the plaintext broker: exit 3 naming the broker and why, nothing written', async () => {
    const pair = await seededPair();
    const before = await written(pair);
    const r = await merge(pair, {
      KAFKA_AUTH: 'scram',
      KAFKA_SASL_USERNAME: 'dataops',
      KAFKA_SASL_PASSWORD: 'not-a-real-password',
      KAFKA_TIMEOUT_MS: '5000',
    });
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    assert.match(lastLine(r), /Kafka is not reachable at 127\.0\.0\.1:9092: .*TLS handshake failed/);
    assert.ok(!r.stderr.includes('not-a-real-password'), 'the password is never printed');
    assert.deepEqual(await written(pair), before);
    await completesOnceKafkaIsBack(pair, /: merged \(plan /);
  });

  test('a broker that accepts connections but never answers: exit 3 once the Kafka timeout is spent', async () => {
    const pair = await seededPair();
    const proxy = await startTcpProxy({ port: 9092 });
    proxy.cut('blackhole');
    try {
      const r = await merge(pair, { KAFKA_BROKERS: `127.0.0.1:${proxy.port}`, KAFKA_TIMEOUT_MS: '3000' });
      assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(
          `Kafka (at 127\\.0\\.0\\.1:${proxy.port} did not answer within 3 s|is not reachable at 127\\.0\\.0\\.1:${proxy.port})`,
        ),
      );
      assert.ok(proxy.accepted > 0, 'the broker was asked');
      assert.equal((await written(pair)).journal, 0);
    } finally {
      await proxy.close();
    }
  });

  test('Kafka lost after the writes: the journal keeps the merge, the next run only publishes — once in total', async () => {
    const pair = await seededPair();
    // The merge core on real Cassandra, publishing to a broker that is gone (the preflight passed earlier).
    const deadProducer = createProducer({ brokers: ['127.0.0.1:1'], clientId: 'kdown-dead', timeout: 3000 });
    try {
      const err = await runMerge(
        { fromAccountId: pair.from, toAccountId: pair.to },
        {
          store: new CassandraMergeStore(client, {
            tables: {
              coursesKeyspace: ks.courses,
              opsKeyspace: ks.ops,
              consumption: 'user_content_consumption',
              enrolments: 'user_enrolments',
              activityAgg: 'user_activity_agg',
            },
          }),
          publisher: kafkaPublisher(deadProducer),
          courseBatchTopic: COURSE_BATCH_TOPIC,
        },
      ).then(
        () => assert.fail('publishing must fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ServiceUnavailableError, String(err));
      assert.equal(err.service, 'Kafka');
    } finally {
      await deadProducer.close(true);
    }
    const journal = await client.execute(
      `SELECT status FROM ${ks.ops}.merge_journal WHERE from_id = ? AND to_id = ?`,
      [pair.from, pair.to],
    );
    assert.equal(journal.first()?.status, 'applied', 'the merge is kept');
    assert.equal((await eventsFor(pair.to, 1500)).length, 0, 'no event got out');
    await completesOnceKafkaIsBack(pair, /: already-applied \(plan /);
  });
});
