/**
 * merge-user-courses against real Cassandra 5 and Kafka 4 (npm run services -- up). Each run uses its own
 * keyspaces (`merge_<random>_courses`, `merge_<random>_ops`) and its own topics, and each scenario its
 * own account ids, so runs never see each other's data.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { MSKEvent } from 'aws-lambda';
import { type AccountPairData, samplePair, seedPair } from '#scripts/seed/merge-data.ts';
import { type CassandraClient, createCassandraClient } from '#shared/clients/cassandra.ts';
import {
  createConsumer,
  createProducer,
  ensureTopics,
  type KafkaOptions,
  produce,
  type StringProducer,
} from '#shared/clients/kafka.ts';
import { TallyMetrics } from '#shared/core/metrics.ts';
import { CassandraMergeStore, type MergeTableNames } from '#shared/merge/cassandra-store.ts';
import { type MergeStore, type OutgoingMessage, runMerge } from '#shared/merge/merge.ts';
import { processMskEvent } from '#shared/merge/msk.ts';
import { type ProcessDeps, processMergeMessage } from '#shared/merge/process.ts';
import { kafkaPublisher } from '#shared/merge/runtime.ts';
import type { Row } from '#shared/merge/types.ts';
import { migrate } from '#shared/schema.ts';

const suffix = randomBytes(4).toString('hex');
const ks = { courses: `merge_${suffix}_courses`, ops: `merge_${suffix}_ops` };
const topics = {
  input: `merge-it-${suffix}.lms.user.account.merge`,
  failed: `merge-it-${suffix}.learning.events.failed`,
  courseBatch: `merge-it-${suffix}.coursebatch.job.request`,
};
const kafka: KafkaOptions = { brokers: ['127.0.0.1:9092'], clientId: `merge-it-${suffix}` };
const tables: MergeTableNames = {
  coursesKeyspace: ks.courses,
  opsKeyspace: ks.ops,
  consumption: 'user_content_consumption',
  enrolments: 'user_enrolments',
  activityAgg: 'user_activity_agg',
};
const COURSES = ['do_course_1', 'do_course_2', 'do_course_3'];

let client: CassandraClient;
let store: CassandraMergeStore;
let producer: StringProducer;

before(async () => {
  client = createCassandraClient({ hosts: ['127.0.0.1'], port: 9042, localDataCenter: 'datacenter1' });
  await migrate(client, { keyspaces: ks, only: ['courses', 'ops'] });
  store = new CassandraMergeStore(client, { tables, fetchSize: 2 });
  await ensureTopics(kafka, Object.values(topics));
  producer = createProducer(kafka);
});

after(async () => {
  try {
    for (const k of Object.values(ks)) await client.execute(`DROP KEYSPACE IF EXISTS ${k}`);
  } finally {
    await Promise.allSettled([client.shutdown(), producer.close(true)]);
  }
});

// biome-ignore lint/suspicious/noExplicitAny: decoded Kafka JSON, checked field by field below
type SentEvent = Record<string, any>;

function newPair(): { from: string; to: string } {
  return { from: `from-${randomUUID()}`, to: `to-${randomUUID()}` };
}

/** Captures what a merge publishes, in memory, for tests that do not check Kafka itself. */
class CapturingPublisher {
  readonly sent: Array<{ topic: string } & OutgoingMessage> = [];
  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    for (const m of messages) this.sent.push({ topic, ...m });
  }
}

/**
 * Merges planned at one fixed moment: agg_last_updated takes the plan's time, so the states of separate
 * clean runs (the baseline of every exactly-once test) compare equal.
 */
const PLAN_TIME = Date.parse('2026-12-01T10:00:00Z');

function deps(overrides: Partial<ProcessDeps> = {}): ProcessDeps {
  return {
    store,
    publisher: kafkaPublisher(producer),
    courseBatchTopic: topics.courseBatch,
    failedTopic: topics.failed,
    metrics: new TallyMetrics(),
    writeConcurrency: 4,
    clock: { now: () => PLAN_TIME, uuid: () => randomUUID() },
    ...overrides,
  };
}

function normalise(value: unknown, userId: string): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => normalise(v, userId));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v, userId)]));
  return value === userId ? '<account>' : value;
}

async function rows(cql: string, params: unknown[]): Promise<Row[]> {
  const out: Row[] = [];
  let pageState: string | undefined;
  do {
    const rs = await client.execute(cql, params, {
      prepare: true,
      fetchSize: 1000,
      ...(pageState ? { pageState } : {}),
    });
    for (const row of rs.rows) out.push(Object.fromEntries(row.keys().map((k) => [k, row.get(k)])));
    pageState = rs.pageState ?? undefined;
  } while (pageState);
  return out;
}

/** Everything the merge can touch for one account, with the account id blanked so pairs compare. */
interface AccountState {
  consumption: string[];
  enrolments: string[];
  agg: string[];
}

async function accountState(userId: string): Promise<AccountState> {
  const consumption = await rows(`SELECT * FROM ${ks.courses}.user_content_consumption WHERE userid = ?`, [
    userId,
  ]);
  const enrolments = await rows(`SELECT * FROM ${ks.courses}.user_enrolments WHERE userid = ?`, [userId]);
  const agg: Row[] = [];
  for (const c of COURSES)
    agg.push(
      ...(await rows(
        `SELECT * FROM ${ks.courses}.user_activity_agg WHERE activity_type = 'Course' AND activity_id = ? AND user_id = ?`,
        [c, userId],
      )),
    );
  const sorted = (list: Row[]) => list.map((r) => JSON.stringify(normalise(r, userId))).sort();
  return { consumption: sorted(consumption), enrolments: sorted(enrolments), agg: sorted(agg) };
}

async function seeded(data: (from: string, to: string) => AccountPairData = samplePair) {
  const pair = newPair();
  await seedPair(client, ks.courses, data(pair.from, pair.to));
  return pair;
}

/** Reads `count` messages from a topic with a fresh consumer group (from the earliest offset). */
async function readTopic(topic: string, count: number, filter: (v: string) => boolean, timeoutMs = 20_000) {
  const consumer = createConsumer({ ...kafka, groupId: `merge-it-reader-${randomUUID()}` });
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
  const got: Array<{ key: string | undefined; value: string }> = [];
  const timer = setTimeout(() => void stream.close(), timeoutMs);
  try {
    for await (const m of stream) {
      if (filter(m.value)) got.push({ key: m.key, value: m.value });
      if (got.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    await stream.close().catch(() => undefined);
    await consumer.close(true);
  }
  return got;
}

let cleanState: { from: AccountState; to: AccountState } | undefined;
/** The state of one clean merge of the sample pair (computed once). */
async function cleanRun(): Promise<{ from: AccountState; to: AccountState }> {
  if (cleanState) return cleanState;
  const { from, to } = await seeded();
  await runMerge({ fromAccountId: from, toAccountId: to }, deps({ publisher: new CapturingPublisher() }));
  cleanState = { from: await accountState(from), to: await accountState(to) };
  return cleanState;
}

describe('merge-user-courses on real Cassandra and Kafka', () => {
  test('enrolments the to-account lacks are copied with certificates, maps and lists intact; its own batch is untouched', async () => {
    const { from, to } = await seeded();
    const toB2Before = await rows(
      `SELECT * FROM ${ks.courses}.user_enrolments WHERE userid = ? AND courseid = ? AND batchid = ?`,
      [to, 'do_course_2', 'b2'],
    );
    const outcome = await runMerge(
      { fromAccountId: from, toAccountId: to },
      deps({ publisher: new CapturingPublisher() }),
    );
    assert.equal(outcome.mode, 'merged');
    assert.equal(outcome.summary.enrolmentsCopied, 1);
    assert.equal(outcome.summary.enrolmentsKept, 1);

    const [fromB1] = await rows(
      `SELECT * FROM ${ks.courses}.user_enrolments WHERE userid = ? AND courseid = ? AND batchid = ?`,
      [from, 'do_course_1', 'b1'],
    );
    const [copied] = await rows(
      `SELECT * FROM ${ks.courses}.user_enrolments WHERE userid = ? AND courseid = ? AND batchid = ?`,
      [to, 'do_course_1', 'b1'],
    );
    assert.ok(copied && fromB1);
    assert.deepEqual({ ...copied, userid: from }, fromB1);
    assert.deepEqual(copied.certificates, [
      { id: 'cert-1', lastIssuedOn: '2022-03-05', name: 'Course completion', token: 'T1' },
      { id: 'cert-1b', name: 'Merit' },
    ]);
    assert.deepEqual(copied.contentstatus, { do_content_1: 2, do_content_2: 1 });
    assert.deepEqual(copied.issued_certificates, [
      { identifier: 'ic-1', name: 'Completion', url: 'https://example.org/c/1' },
    ]);

    const toB2After = await rows(
      `SELECT * FROM ${ks.courses}.user_enrolments WHERE userid = ? AND courseid = ? AND batchid = ?`,
      [to, 'do_course_2', 'b2'],
    );
    assert.deepEqual(toB2After, toB2Before);
  });

  test('content consumption: the matched row follows every column rule, unmatched rows are copied, from stays', async () => {
    const { from, to } = await seeded();
    const fromBefore = await accountState(from);
    await runMerge({ fromAccountId: from, toAccountId: to }, deps({ publisher: new CapturingPublisher() }));
    const consumption = await rows(`SELECT * FROM ${ks.courses}.user_content_consumption WHERE userid = ?`, [
      to,
    ]);
    assert.equal(consumption.length, 4);
    const matched = consumption.find((r) => r.contentid === 'do_content_1')!;
    assert.equal(matched.courseid, 'do_course_1', 'the to-row keeps its own key casing');
    assert.equal(matched.status, 2);
    assert.equal(matched.progress, 100);
    assert.equal(matched.viewcount, 7);
    assert.equal(matched.completedcount, 1);
    assert.deepEqual(matched.datetime, new Date('2022-03-03T10:00:00Z'));
    assert.deepEqual(matched.last_access_time, new Date('2022-03-05T10:00:00Z'));
    assert.deepEqual(matched.last_completed_time, new Date('2022-02-01T10:00:00Z'));
    assert.deepEqual(matched.last_updated_time, new Date('2022-03-05T10:00:00Z'));
    assert.equal(matched.lastaccesstime, '2022-03-05 10:00:00:000+0000');
    assert.equal(matched.lastcompletedtime, '2022-02-01 10:00:00:000+0000', 'unparsable from keeps to');
    assert.equal(matched.lastupdatedtime, '2022-03-05 10:00:00:000+0000', 'unparsable to keeps from');
    assert.equal(matched.completionpercentage, 40);
    assert.equal(matched.progressdetails, '{"to":true}');
    const copy = consumption.find((r) => r.contentid === 'do_content_9')!;
    assert.equal(copy.viewcount, 5);
    assert.deepEqual(copy.last_completed_time, new Date('2022-01-01T00:00:00Z'));
    assert.deepEqual(await accountState(from), fromBefore, 'nothing of the from-account changes');
  });

  test('activity aggregates: completedCount is the true max and every other key stays', async () => {
    const { from, to } = await seeded();
    await runMerge({ fromAccountId: from, toAccountId: to }, deps({ publisher: new CapturingPublisher() }));
    const [c1] = await rows(
      `SELECT * FROM ${ks.courses}.user_activity_agg WHERE activity_type = 'Course' AND activity_id = ? AND user_id = ?`,
      ['do_course_1', to],
    );
    assert.deepEqual(c1?.aggregates, { completedCount: 2 });
    assert.deepEqual(c1?.agg, { completedCount: 2 });
    const [c2] = await rows(
      `SELECT * FROM ${ks.courses}.user_activity_agg WHERE activity_type = 'Course' AND activity_id = ? AND user_id = ?`,
      ['do_course_2', to],
    );
    assert.deepEqual(c2?.aggregates, { completedCount: 3, 'score:y': 7 });
    assert.deepEqual(c2?.agg, { completedCount: 1, other: 4 });
    assert.deepEqual(c2?.agg_details, ['to-detail']);
  });

  test('one batch-enrolment-sync event per enrolment of the to-account is read back from Kafka', async () => {
    const { from, to } = await seeded();
    const outcome = await runMerge({ fromAccountId: from, toAccountId: to }, deps());
    assert.equal(outcome.eventsEmitted, 3);
    const got = await readTopic(topics.courseBatch, 3, (v) => v.includes(to));
    assert.equal(got.length, 3);
    const events = got.map((m) => JSON.parse(m.value) as SentEvent);
    assert.deepEqual(events.map((e) => e.edata.batchId).sort(), ['b1', 'b2', 'b3']);
    for (const [i, e] of events.entries()) {
      assert.equal(got[i]!.key, to);
      assert.deepEqual(Object.keys(e).sort(), ['actor', 'context', 'edata', 'eid', 'ets', 'mid', 'object']);
      assert.deepEqual(e.actor, { id: 'Course Batch Updater', type: 'System' });
      assert.equal(e.eid, 'BE_JOB_REQUEST');
      assert.deepEqual(e.edata, {
        action: 'batch-enrolment-sync',
        iteration: 1,
        batchId: e.edata.batchId,
        userId: to,
        courseId: { b1: 'do_course_1', b2: 'do_course_2', b3: 'do_course_3' }[e.edata.batchId as string],
        reset: ['completionPercentage', 'status', 'progress'],
      });
      assert.match(e.mid, new RegExp(`^LP\\.${e.ets}\\.[0-9a-f-]{36}$`));
      assert.deepEqual(e.object, { id: `${e.edata.batchId}_${to}`, type: 'CourseBatchEnrolment' });
      assert.deepEqual(e.context, { pdata: { ver: '1.0', id: 'org.sunbird.platform' } });
    }
  });

  test('every invalid event fixture goes to the failed topic with its reason and the original event', async () => {
    const files = readdirSync(new URL('../../events/', import.meta.url)).filter((f) =>
      f.startsWith('msk-merge-invalid-'),
    );
    assert.ok(files.length >= 5);
    const tally = new TallyMetrics();
    const marker = randomUUID();
    for (const f of files) {
      const event = JSON.parse(
        readFileSync(new URL(`../../events/${f}`, import.meta.url), 'utf8'),
      ) as MSKEvent;
      // Tag each record so this run's failed events can be told apart on the shared topic.
      for (const list of Object.values(event.records))
        for (const r of list) r.key = Buffer.from(marker).toString('base64');
      const taggedDeps = deps({
        metrics: tally,
        publisher: {
          publish: (topic, messages) =>
            produce(
              producer,
              messages.map((m) => ({ topic, key: marker, value: m.value })),
            ),
        },
      });
      const result = await processMskEvent(event, (value) => processMergeMessage(value, taggedDeps));
      assert.equal(result.failures.length, 0, `${f} must not block its partition`);
      assert.equal(result.handled[0]?.result.status, 'skipped', f);
    }
    assert.equal(tally.counts['skipped-event-count'], files.length);
    assert.equal(tally.counts['total-events-count'], files.length);
    const consumer = await readTopicKeyed(topics.failed, marker, files.length);
    assert.equal(consumer.length, files.length);
    for (const m of consumer) {
      const e = JSON.parse(m) as SentEvent;
      assert.equal(e.jobName, 'MergeUserCourses');
      assert.equal(e.failInfo.errorCode, 'DATA_ERROR');
      assert.equal(typeof e.failInfo.error, 'string');
      assert.ok(
        e.eid === 'BE_JOB_REQUEST' || typeof e.event === 'string',
        'the original event travels along',
      );
    }
    const reasons = consumer.map((m) => JSON.parse(m).failInfo.error as string).sort();
    assert.ok(reasons.some((r) => /not valid JSON/.test(r)));
    assert.ok(reasons.some((r) => /same account/.test(r)));
    assert.ok(reasons.some((r) => /edata is empty/.test(r)));
  });

  test('a redelivered event and the same merge requested twice leave the state of one clean run', async () => {
    const clean = await cleanRun();
    const { from, to } = await seeded();
    const req = { fromAccountId: from, toAccountId: to };
    const first = await runMerge(req, deps({ publisher: new CapturingPublisher() }));
    const second = await runMerge(req, deps({ publisher: new CapturingPublisher() }));
    const third = await runMerge(req, deps({ publisher: new CapturingPublisher() }));
    assert.equal(first.mode, 'merged');
    assert.equal(second.mode, 'already-applied');
    assert.equal(third.writes, 0);
    assert.equal(third.eventsEmitted, 3, 'follow-up events are re-emitted');
    assert.deepEqual(await accountState(to), clean.to);
    assert.deepEqual(await accountState(from), clean.from);
  });

  test('a whole MSK batch retried after success changes nothing', async () => {
    const clean = await cleanRun();
    const { from, to } = await seeded();
    const value = JSON.stringify({ eid: 'BE_JOB_REQUEST', edata: { fromAccountId: from, toAccountId: to } });
    const event: MSKEvent = {
      eventSource: 'aws:kafka',
      eventSourceArn: 'arn:aws:kafka:local',
      bootstrapServers: '127.0.0.1:9092',
      records: {
        [`${topics.input}-0`]: [0, 1].map((offset) => ({
          topic: topics.input,
          partition: 0,
          offset,
          timestamp: Date.now(),
          timestampType: 'CREATE_TIME' as const,
          key: '',
          value: Buffer.from(value).toString('base64'),
          headers: [],
        })),
      },
    };
    const d = deps({ publisher: new CapturingPublisher() });
    for (let attempt = 0; attempt < 2; attempt++) {
      const result = await processMskEvent(event, (v) => processMergeMessage(v, d));
      assert.equal(result.failures.length, 0);
    }
    assert.deepEqual(await accountState(to), clean.to);
  });

  test('a crash after any single write, then a retry, leaves exactly the state of one clean run', async () => {
    const clean = await cleanRun();
    // Count the writes of one clean run: plan chunks, claim, each Sunbird write, mark applied, publish.
    const counting = faultyStore(store, Number.POSITIVE_INFINITY);
    const probe = await seeded();
    await runMerge(
      { fromAccountId: probe.from, toAccountId: probe.to },
      deps({ store: counting.store, publisher: new CapturingPublisher() }),
    );
    const totalWrites = counting.writes();
    assert.ok(totalWrites >= 8, `expected a realistic number of writes, got ${totalWrites}`);

    for (let crashAfter = 1; crashAfter <= totalWrites; crashAfter++) {
      const { from, to } = await seeded();
      const req = { fromAccountId: from, toAccountId: to };
      const faulty = faultyStore(store, crashAfter);
      await assert.rejects(
        runMerge(
          req,
          deps({ store: faulty.store, publisher: new CapturingPublisher(), writeConcurrency: 1 }),
        ),
        /injected crash/,
        `crash after write ${crashAfter}`,
      );
      const retry = await runMerge(req, deps({ publisher: new CapturingPublisher() }));
      // Before the claim nothing was written, so the retry plans afresh; after it, the stored plan is
      // re-applied; after `applied` the retry writes nothing.
      const expected = crashAfter < 2 ? 'merged' : crashAfter < totalWrites ? 'resumed' : 'already-applied';
      assert.equal(retry.mode, expected, `retry mode after write ${crashAfter}`);
      assert.deepEqual(
        await accountState(to),
        clean.to,
        `state after crash at write ${crashAfter} and a retry`,
      );
      // A further redelivery after the recovery is a no-op.
      const again = await runMerge(req, deps({ publisher: new CapturingPublisher() }));
      assert.equal(again.writes, 0);
      assert.deepEqual(await accountState(to), clean.to);
    }
  });

  test('a crash while publishing the follow-up events is retried without writing again', async () => {
    const clean = await cleanRun();
    const { from, to } = await seeded();
    const req = { fromAccountId: from, toAccountId: to };
    const broken = { publish: async () => Promise.reject(new Error('kafka down')) };
    await assert.rejects(runMerge(req, deps({ publisher: broken })), /kafka down/);
    const retry = await runMerge(req, deps({ publisher: new CapturingPublisher() }));
    assert.equal(retry.mode, 'already-applied');
    assert.equal(retry.writes, 0);
    assert.deepEqual(await accountState(to), clean.to);
  });

  test('two workers merging the same pair at once leave the state of one clean run', async () => {
    const clean = await cleanRun();
    const { from, to } = await seeded();
    const req = { fromAccountId: from, toAccountId: to };
    const results = await Promise.all(
      [1, 2, 3].map(() => runMerge(req, deps({ publisher: new CapturingPublisher(), writeConcurrency: 1 }))),
    );
    assert.equal(new Set(results.map((r) => r.planId)).size, 1, 'one plan wins');
    assert.deepEqual(await accountState(to), clean.to);
  });

  test('Cassandra unreachable: the record and the rest of its partition come back, nothing is reported as bad data', async () => {
    const { from, to } = await seeded();
    const dead = createCassandraClient({ hosts: ['127.0.0.1'], port: 1, localDataCenter: 'datacenter1' });
    const deadStore = new CassandraMergeStore(dead, { tables });
    const publisher = new CapturingPublisher();
    const value = JSON.stringify({ edata: { fromAccountId: from, toAccountId: to } });
    const event: MSKEvent = {
      eventSource: 'aws:kafka',
      eventSourceArn: 'arn:aws:kafka:local',
      bootstrapServers: '127.0.0.1:9092',
      records: {
        [`${topics.input}-0`]: [5, 6].map((offset) => ({
          topic: topics.input,
          partition: 0,
          offset,
          timestamp: Date.now(),
          timestampType: 'CREATE_TIME' as const,
          key: '',
          value: Buffer.from(value).toString('base64'),
          headers: [],
        })),
      },
    };
    const metrics = new TallyMetrics();
    const result = await processMskEvent(event, (v) =>
      processMergeMessage(v, deps({ store: deadStore, publisher, metrics })),
    );
    await dead.shutdown();
    assert.equal(result.failures.length, 1);
    assert.equal(result.failures[0]?.offset, 5);
    assert.equal(result.notAttempted, 1);
    assert.equal(publisher.sent.length, 0);
    assert.equal(metrics.counts['failed-events-count'], 1);
    // The retry on a healthy store applies it once.
    const clean = await cleanRun();
    const retried = await processMskEvent(event, (v) =>
      processMergeMessage(v, deps({ publisher: new CapturingPublisher() })),
    );
    assert.equal(retried.failures.length, 0);
    assert.deepEqual(await accountState(to), clean.to);
  });

  test('accounts with thousands of content rows are read page by page and merged completely', async () => {
    const { from, to } = newPair();
    const many: AccountPairData = { consumption: [], enrolments: [], agg: [] };
    for (let i = 0; i < 2500; i++)
      many.consumption.push({ userid: from, courseid: 'c', batchid: 'b', contentid: `x${i}`, viewcount: 1 });
    for (let i = 0; i < 2500; i += 2)
      many.consumption.push({ userid: to, courseid: 'c', batchid: 'b', contentid: `X${i}`, viewcount: 2 });
    await seedPair(client, ks.courses, many);
    const bigStore = new CassandraMergeStore(client, { tables, fetchSize: 300 });
    const outcome = await runMerge(
      { fromAccountId: from, toAccountId: to },
      deps({ store: bigStore, publisher: new CapturingPublisher() }),
    );
    assert.equal(outcome.summary.consumptionMerged, 1250);
    assert.equal(outcome.summary.consumptionCopied, 1250);
    const after = await rows(
      `SELECT viewcount FROM ${ks.courses}.user_content_consumption WHERE userid = ?`,
      [to],
    );
    assert.equal(after.length, 2500);
    assert.equal(
      after.reduce((s, r) => s + Number(r.viewcount), 0),
      1250 * 3 + 1250 * 1,
    );
  });

  test('the handler merges the events/ fixture and publishes to the configured topics', async () => {
    const sample = JSON.parse(
      readFileSync(new URL('../../events/merge-user-courses-event.json', import.meta.url), 'utf8'),
    );
    const { fromAccountId: from, toAccountId: to } = sample.edata as {
      fromAccountId: string;
      toAccountId: string;
    };
    await seedPair(client, ks.courses, samplePair(from, to));
    Object.assign(process.env, {
      COURSES_KEYSPACE: ks.courses,
      DATAOPS_KEYSPACE: ks.ops,
      MERGE_FAILED_TOPIC: topics.failed,
      MERGE_COURSE_BATCH_TOPIC: topics.courseBatch,
      KAFKA_BROKERS: '127.0.0.1:9092',
      POWERTOOLS_METRICS_NAMESPACE: 'SunbirdDataOpsTest',
      LOG_LEVEL: 'SILENT',
    });
    const mod = await import('#functions/merge-user-courses.ts');
    try {
      const event = JSON.parse(
        readFileSync(new URL('../../events/msk-merge-user-courses.json', import.meta.url), 'utf8'),
      );
      const response = await mod.mergeUserCourses(event);
      assert.equal(response, undefined);
      const got = await readTopic(topics.courseBatch, 3, (v) => v.includes(to));
      assert.equal(got.length, 3);
      const clean = await cleanRun();
      // The function plans at its own time: agg_last_updated is that time, everything else a clean run's.
      const merged = await accountState(to);
      const planTimes = merged.agg.map(
        (a) =>
          (JSON.parse(a) as { agg_last_updated: { completedCount: string } }).agg_last_updated.completedCount,
      );
      assert.ok(
        planTimes.every((t) => Date.parse(t) > PLAN_TIME),
        'agg_last_updated.completedCount is the merge’s plan time',
      );
      const withoutPlanTime = (state: typeof merged) => ({
        ...state,
        agg: state.agg.map((a) => JSON.stringify({ ...JSON.parse(a), agg_last_updated: null })),
      });
      assert.deepEqual(withoutPlanTime(merged), withoutPlanTime(clean.to));
      // Redelivery of the same fixture: no change at all, not even the timestamp.
      await mod.mergeUserCourses(event);
      assert.deepEqual(await accountState(to), merged);
    } finally {
      await mod.runtime.close();
    }
  });
});

async function readTopicKeyed(topic: string, key: string, count: number): Promise<string[]> {
  const consumer = createConsumer({ ...kafka, groupId: `merge-it-reader-${randomUUID()}` });
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
  const got: string[] = [];
  const timer = setTimeout(() => void stream.close(), 20_000);
  try {
    for await (const m of stream) {
      if (m.key === key) got.push(m.value);
      if (got.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    await stream.close().catch(() => undefined);
    await consumer.close(true);
  }
  return got;
}

/**
 * A store that performs each write and then "crashes" (throws) once `crashAfter` writes have completed:
 * the process dies between two writes, with everything before the crash durable.
 */
function faultyStore(inner: MergeStore, crashAfter: number): { store: MergeStore; writes: () => number } {
  let writes = 0;
  const write =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (writes >= crashAfter) throw new Error('injected crash (already down)');
      const result = await fn(...args);
      writes++;
      if (writes >= crashAfter) throw new Error(`injected crash after write ${writes}`);
      return result;
    };
  const s: MergeStore = {
    readJournal: (f, t) => inner.readJournal(f, t),
    readSnapshot: (f, t) => inner.readSnapshot(f, t),
    loadPlanChunks: (e) => inner.loadPlanChunks(e),
    readEnrolments: (u) => inner.readEnrolments(u),
    discardPlanChunks: (...a) => inner.discardPlanChunks(...a),
    savePlanChunks: write((...a: Parameters<MergeStore['savePlanChunks']>) => inner.savePlanChunks(...a)),
    claimPlan: write((e: Parameters<MergeStore['claimPlan']>[0]) => inner.claimPlan(e)),
    // Write by write, even inside a group (one batch in Cassandra): every write is a crash point.
    apply: async (ops: Parameters<MergeStore['apply']>[0]) => {
      for (const op of ops) await write((one: typeof op) => inner.apply([one]))(op);
    },
    markApplied: write((...a: Parameters<MergeStore['markApplied']>) => inner.markApplied(...a)),
  };
  return { store: s, writes: () => writes };
}
