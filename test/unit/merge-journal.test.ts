/**
 * merge-user-courses end to end on the in-memory store and publisher: every rule on a whole merge, the
 * original job's own test data, and the journal's exactly-once promise under redelivery, crashes, two
 * workers and broker failures — the same promises test/integration/merge-user-courses.test.ts checks on
 * real Cassandra and Kafka, here in milliseconds.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TallyMetrics } from '#shared/core/metrics.ts';
import { createLogger } from '#shared/logger.ts';
import { mergeRequestEvent } from '#shared/merge/events.ts';
import { createMskMergeHandler } from '#shared/merge/handler.ts';
import { MemoryMergeStore, MemoryPublisher } from '#shared/merge/memory.ts';
import { MergeDataError, runMerge } from '#shared/merge/merge.ts';
import { toMskEvent } from '#shared/merge/msk.ts';
import { METRIC, type ProcessDeps, processMergeMessage } from '#shared/merge/process.ts';
import { AGG_LAST_UPDATED } from '#shared/merge/rules.ts';
import type { Row } from '#shared/merge/types.ts';

const COURSE_BATCH = 'test.coursebatch.job.request';
const FAILED = 'test.learning.events.failed';

function deps(
  store: MemoryMergeStore,
  publisher = new MemoryPublisher(),
): ProcessDeps & { publisher: MemoryPublisher } {
  return {
    store,
    publisher,
    courseBatchTopic: COURSE_BATCH,
    failedTopic: FAILED,
    metrics: new TallyMetrics(),
    writeConcurrency: 4,
  };
}

const content = (user: string, contentid: string, extra: Row = {}): Row => ({
  userid: user,
  courseid: 'c1',
  batchid: 'b1',
  contentid,
  ...extra,
});

/** Two accounts with something of every kind to merge. */
function accounts(): MemoryMergeStore {
  const s = new MemoryMergeStore();
  s.seed('consumption', [
    content('A', 'x', { viewcount: 2, completedcount: 1, progress: 50, status: 1 }),
    content('A', 'y', { viewcount: 1, progress: 100, status: 2 }),
    content('B', 'X', { viewcount: 3, completedcount: 4, progress: 20, status: 1 }),
  ]);
  s.seed('enrolments', [
    { userid: 'A', courseid: 'c1', batchid: 'b1', status: 1 },
    { userid: 'A', courseid: 'c2', batchid: 'b2', status: 2 },
    { userid: 'B', courseid: 'c1', batchid: 'b1', status: 0 },
  ]);
  s.seed('activityAgg', [
    {
      activity_type: 'Course',
      activity_id: 'c1',
      user_id: 'A',
      context_id: 'cb:b1',
      aggregates: { completedCount: 9 },
    },
    {
      activity_type: 'Course',
      activity_id: 'c1',
      user_id: 'B',
      context_id: 'cb:b1',
      aggregates: { completedCount: 3, other: 7 },
    },
  ]);
  return s;
}

/** Everything the to-account holds, for comparing final states. */
function stateOf(s: MemoryMergeStore): unknown {
  return {
    consumption: s.rows('consumption'),
    enrolments: s.rows('enrolments'),
    agg: s.rows('activityAgg'),
  };
}

/** A fixed clock: runs planned at the same moment write the same agg_last_updated, so states compare. */
const clock = {
  now: () => Date.parse('2026-12-01T10:00:00Z'),
  uuid: () => '00000000-0000-4000-8000-000000000000',
};

async function mergeOnce(store: MemoryMergeStore, publisher = new MemoryPublisher()) {
  return runMerge(
    { fromAccountId: 'A', toAccountId: 'B' },
    { store, publisher, courseBatchTopic: COURSE_BATCH, clock },
  );
}

describe('a whole merge on the in-memory store', () => {
  test('every rule: content rows copied or merged, enrolments copied, completedCount maxed, events per enrolment', async () => {
    const store = accounts();
    const publisher = new MemoryPublisher();
    const out = await mergeOnce(store, publisher);
    assert.equal(out.mode, 'merged');
    const b = store.rows('consumption', (r) => r.userid === 'B');
    const byContent = Object.fromEntries(b.map((r) => [r.contentid, r]));
    assert.deepEqual(
      [byContent.X?.viewcount, byContent.X?.completedcount, byContent.X?.progress],
      [5, 5, 50],
      'matched case-insensitively: sums and max',
    );
    assert.deepEqual([byContent.y?.viewcount, byContent.y?.progress], [1, 100], 'copied');
    assert.deepEqual(
      store.rows('enrolments', (r) => r.userid === 'B').map((r) => [r.batchid, r.status]),
      [
        ['b1', 0],
        ['b2', 2],
      ],
      "b1 keeps the to-account's row, b2 is copied",
    );
    const [agg] = store.rows('activityAgg', (r) => r.user_id === 'B');
    assert.deepEqual(agg?.aggregates, { completedCount: 9, other: 7 });
    assert.deepEqual(
      publisher.on(COURSE_BATCH).map((e) => (e as { edata: { batchId: string } }).edata.batchId),
      ['b1', 'b2'],
    );
    assert.deepEqual(out.summary, {
      consumptionCopied: 1,
      consumptionMerged: 1,
      enrolmentsCopied: 1,
      enrolmentsKept: 1,
      aggUpdated: 1,
    });
  });

  test('the original job’s test data: user001 → user002, completedCount 10 over 8, agg_last_updated set at plan time', async () => {
    const store = new MemoryMergeStore();
    const course = 'do_11309999837886054415';
    store.seed('enrolments', [{ userid: 'user001', courseid: course, batchid: '0131000245281587206' }]);
    const agg = (user: string, n: number): Row => ({
      activity_type: 'Course',
      activity_id: course,
      user_id: user,
      context_id: 'cb:0131000245281587206',
      agg_last_updated: null,
      aggregates: { completedCount: n },
    });
    store.seed('activityAgg', [agg('user001', 10), agg('user002', 8)]);
    assert.equal(store.rows('activityAgg', (r) => r.user_id === 'user002')[0]?.agg_last_updated, null);
    await runMerge(
      { fromAccountId: 'user001', toAccountId: 'user002' },
      { store, publisher: new MemoryPublisher(), courseBatchTopic: COURSE_BATCH },
    );
    const [merged] = store.rows('activityAgg', (r) => r.user_id === 'user002');
    assert.ok(merged);
    assert.equal((merged.aggregates as Record<string, number>).completedCount, 10);
    const stamp = (merged[AGG_LAST_UPDATED] as Record<string, Date>).completedCount;
    assert.ok(stamp instanceof Date, 'agg_last_updated.completedCount is set');
    const journal = await store.readJournal('user001', 'user002');
    assert.equal(
      stamp.getTime(),
      journal?.plannedAt.getTime(),
      'the timestamp is the plan’s, so a replay writes the same value',
    );
  });
});

describe('exactly once (the merge journal)', () => {
  test('a redelivered event writes nothing and leaves the state of one clean run', async () => {
    const store = accounts();
    await mergeOnce(store);
    const after = stateOf(store);
    const writes = store.writes;
    const again = await mergeOnce(store);
    assert.equal(again.mode, 'already-applied');
    assert.equal(again.writes, 0);
    assert.equal(store.writes, writes);
    assert.deepEqual(stateOf(store), after);
  });

  test('a crash after any single write, then a retry, leaves exactly the state of one clean run', async () => {
    const clean = accounts();
    await mergeOnce(clean);
    const expected = stateOf(clean);
    const total = clean.writes;
    assert.ok(total >= 4);
    for (let k = 0; k < total; k++) {
      const store = accounts();
      store.failAfterWrites = k;
      await assert.rejects(mergeOnce(store), /simulated crash/);
      store.failAfterWrites = undefined;
      const retry = await mergeOnce(store);
      assert.equal(retry.mode, 'resumed', `crash after ${k} writes`);
      assert.deepEqual(stateOf(store), expected, `crash after ${k} writes`);
    }
  });

  test('the replayed plan is the stored one, not recomputed from a state it may have touched', async () => {
    const store = accounts();
    store.failAfterWrites = 1;
    await assert.rejects(mergeOnce(store));
    store.failAfterWrites = undefined;
    // Between the crash and the retry the from-account changes; the stored plan must win.
    store.seed('consumption', [content('A', 'x', { viewcount: 1000 })]);
    await mergeOnce(store);
    const [x] = store.rows('consumption', (r) => r.userid === 'B' && r.contentid === 'X');
    assert.equal(x?.viewcount, 5);
  });

  test('two workers merging the same pair: the second claim loses and applies the winner’s plan', async () => {
    const store = accounts();
    const [a, b] = await Promise.all([mergeOnce(store), mergeOnce(store)]);
    assert.equal(a.planId, b.planId);
    assert.equal(store.lostClaims, 1);
    const clean = accounts();
    await mergeOnce(clean);
    assert.deepEqual(stateOf(store), stateOf(clean));
    assert.equal(
      [...store.chunks.keys()].filter((k) => !k.includes(a.planId)).length,
      0,
      'the loser’s plan chunks are discarded',
    );
  });

  test('a planned merge whose plan is gone is bad data, never recomputed', async () => {
    const store = accounts();
    store.failAfterWrites = 0;
    await assert.rejects(mergeOnce(store));
    store.failAfterWrites = undefined;
    store.chunks.clear();
    await assert.rejects(mergeOnce(store), MergeDataError);
  });

  test('a broker failure after the writes is retried without writing again', async () => {
    const store = accounts();
    const publisher = new MemoryPublisher();
    publisher.failNext = 1;
    await assert.rejects(mergeOnce(store, publisher), /simulated broker failure/);
    const writes = store.writes;
    const retry = await mergeOnce(store, publisher);
    assert.equal(retry.mode, 'already-applied');
    assert.equal(store.writes, writes);
    assert.equal(publisher.on(COURSE_BATCH).length, 2);
  });
});

describe('one message, and an MSK batch', () => {
  test('a valid event merges and counts as success with its writes', async () => {
    const d = deps(accounts());
    const r = await processMergeMessage(mergeRequestEvent('A', 'B'), d);
    assert.equal(r.status, 'merged');
    const m = d.metrics as TallyMetrics;
    assert.deepEqual(
      [m.counts[METRIC.total], m.counts[METRIC.success], m.counts[METRIC.dbUpdates]],
      [1, 1, (d.store as MemoryMergeStore).writes],
    );
  });

  for (const [name, value] of [
    ['not JSON', '{"edata":'],
    ['no edata', '{"eid":"BE_JOB_REQUEST"}'],
    ['empty account id', JSON.stringify({ edata: { fromAccountId: '', toAccountId: 'B' } })],
    ['the same account twice', mergeRequestEvent('A', 'A')],
  ] as const) {
    test(`an event with ${name} is skipped and reported on the failed topic with the original`, async () => {
      const d = deps(accounts());
      const r = await processMergeMessage(value, d);
      assert.equal(r.status, 'skipped');
      const [failed] = d.publisher.on(FAILED) as Array<{ jobName: string; failInfo: { errorCode: string } }>;
      assert.equal(failed?.jobName, 'MergeUserCourses');
      assert.equal(failed?.failInfo.errorCode, 'DATA_ERROR');
      assert.equal((d.store as MemoryMergeStore).writes, 0);
    });
  }

  test('MSK batch: a bad record is reported and its partition goes on; an infrastructure failure stops only its partition', async () => {
    const store = accounts();
    store.seed('enrolments', [{ userid: 'C', courseid: 'c3', batchid: 'b3' }]);
    const d = deps(store);
    const handler = createMskMergeHandler({
      deps: d,
      logger: createLogger({ level: 'SILENT' }),
      reportBatchItemFailures: true,
    });
    store.failAfterWrites = 0; // every merge that writes fails: an unavailable Cassandra
    const event = toMskEvent([
      { topic: 'in', partition: 0, offset: 10, value: 'not json' },
      { topic: 'in', partition: 0, offset: 11, value: mergeRequestEvent('A', 'B') },
      { topic: 'in', partition: 0, offset: 12, value: mergeRequestEvent('C', 'B') },
      { topic: 'in', partition: 1, offset: 5, value: 'also not json' },
    ]);
    const res = await handler(event);
    assert.deepEqual(res?.batchItemFailures, [{ itemIdentifier: { partition: 'in-0', offset: 11 } }]);
    assert.equal(d.publisher.on(FAILED).length, 2, 'both bad records reported, partition 1 unaffected');
  });

  test('MSK batch with whole-batch retries chosen: an infrastructure failure throws', async () => {
    const store = accounts();
    store.failAfterWrites = 0;
    const handler = createMskMergeHandler({
      deps: deps(store),
      logger: createLogger({ level: 'SILENT' }),
      reportBatchItemFailures: false,
    });
    await assert.rejects(
      handler(toMskEvent([{ topic: 'in', partition: 0, offset: 1, value: mergeRequestEvent('A', 'B') }])),
      AggregateError,
    );
  });
});
