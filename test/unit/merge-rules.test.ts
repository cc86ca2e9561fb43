import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { MSKEvent } from 'aws-lambda';
import { loadFlatConfig } from '#shared/config.ts';
import { forEachLimit } from '#shared/core/concurrency.ts';
import { decodePlan, encodePlan } from '#shared/merge/codec.ts';
import { batchEnrolmentSyncEvent, failedEvent, validateMergeEvent } from '#shared/merge/events.ts';
import { chunkPlan, writeGroups } from '#shared/merge/merge.ts';
import { kafkaBatchResponse, processMskEvent } from '#shared/merge/msk.ts';
import {
  CONSUMPTION_RULES,
  computeMergePlan,
  latestOf,
  latestTextDate,
  maxOf,
  mergeConsumptionRow,
  parseTextDate,
  planActivityAgg,
  planConsumption,
  planEnrolments,
  sumOf,
} from '#shared/merge/rules.ts';
import { mergeTopicsFrom } from '#shared/merge/runtime.ts';
import type { Row, WriteOp } from '#shared/merge/types.ts';

const d = (iso: string) => new Date(iso);

describe('merge column rules', () => {
  const cases: Array<{ column: string; from: unknown; to: unknown; want: unknown; why: string }> = [
    { column: 'status', from: 2, to: 1, want: 2, why: 'status takes the max (from higher)' },
    { column: 'status', from: 1, to: 2, want: 2, why: 'status takes the max (to higher)' },
    { column: 'status', from: null, to: 1, want: 1, why: 'status: null from → to wins' },
    { column: 'status', from: 2, to: null, want: 2, why: 'status: null to → from wins' },
    { column: 'progress', from: 40, to: 70, want: 70, why: 'progress takes the max' },
    { column: 'progress', from: 70, to: 70, want: 70, why: 'progress tie keeps the value' },
    { column: 'viewcount', from: 3, to: 4, want: 7, why: 'viewcount is summed' },
    { column: 'viewcount', from: null, to: 4, want: 4, why: 'viewcount: null from → to wins' },
    { column: 'viewcount', from: 3, to: null, want: 3, why: 'viewcount: null to → from wins' },
    { column: 'viewcount', from: 0, to: 0, want: 0, why: 'viewcount: zeros sum to zero' },
    { column: 'completedcount', from: 1, to: 2, want: 3, why: 'completedcount is summed' },
    { column: 'completedcount', from: undefined, to: undefined, want: null, why: 'both missing stays null' },
    {
      column: 'datetime',
      from: d('2022-01-02T00:00:00Z'),
      to: d('2022-01-01T00:00:00Z'),
      want: d('2022-01-02T00:00:00Z'),
      why: 'datetime takes the latest',
    },
    {
      column: 'last_access_time',
      from: d('2021-01-01T00:00:00Z'),
      to: d('2022-01-01T00:00:00Z'),
      want: d('2022-01-01T00:00:00Z'),
      why: 'last_access_time takes the latest',
    },
    {
      column: 'last_completed_time',
      from: d('2022-05-01T00:00:00Z'),
      to: null,
      want: d('2022-05-01T00:00:00Z'),
      why: 'last_completed_time: null to → from wins',
    },
    {
      column: 'last_updated_time',
      from: null,
      to: d('2022-05-01T00:00:00Z'),
      want: d('2022-05-01T00:00:00Z'),
      why: 'last_updated_time: null from → to wins',
    },
    {
      column: 'lastaccesstime',
      from: '2022-03-31 10:05:12:345+0000',
      to: '2022-03-31 10:05:12:344+0000',
      want: '2022-03-31 10:05:12:345+0000',
      why: 'text date: latest by the millisecond',
    },
    {
      column: 'lastaccesstime',
      from: '2022-03-31 15:00:00:000+0530',
      to: '2022-03-31 10:00:00:000+0000',
      want: '2022-03-31 10:00:00:000+0000',
      why: 'text date: offsets are honoured (15:00+0530 is 09:30Z, earlier)',
    },
    {
      column: 'lastcompletedtime',
      from: 'yesterday',
      to: '2022-03-31 10:00:00:000+0000',
      want: '2022-03-31 10:00:00:000+0000',
      why: 'text date: unparsable from keeps to',
    },
    {
      column: 'lastcompletedtime',
      from: '2022-03-31 10:00:00:000+0000',
      to: '2022-03-31T10:00:00Z',
      want: '2022-03-31 10:00:00:000+0000',
      why: 'text date: unparsable to (ISO form) keeps from',
    },
    {
      column: 'lastupdatedtime',
      from: 'garbage',
      to: 'also garbage',
      want: 'also garbage',
      why: 'text date: neither parses → to kept',
    },
    {
      column: 'lastupdatedtime',
      from: '2022-03-31 10:00:00:000+0000',
      to: null,
      want: '2022-03-31 10:00:00:000+0000',
      why: 'text date: null to → from wins',
    },
    {
      column: 'lastupdatedtime',
      from: '2022-03-31 10:00:00:000+0000',
      to: '2022-03-31 10:00:00:000+0000',
      want: '2022-03-31 10:00:00:000+0000',
      why: 'text date: tie keeps to',
    },
  ];
  for (const c of cases) {
    test(c.why, () => {
      const rule = CONSUMPTION_RULES[c.column]!;
      assert.deepEqual(rule(c.from, c.to), c.want);
    });
  }

  test('a timestamp tie keeps the to-row value', () => {
    const to = d('2022-01-01T00:00:00Z');
    assert.equal(latestOf(new Date(to.getTime()), to), to);
  });

  test('max and sum treat numbers, sum never concatenates', () => {
    assert.equal(maxOf(5, 3), 5);
    assert.equal(sumOf(5, 3), 8);
    assert.equal(latestTextDate(null, null), null);
  });

  test('every column without a rule keeps the to-row value', () => {
    const from: Row = {
      userid: 'a',
      completionpercentage: 99.5,
      progressdetails: '{"from":1}',
      viewcount: 1,
    };
    const to: Row = { userid: 'b', completionpercentage: 10, progressdetails: '{"to":1}', viewcount: 2 };
    const merged = mergeConsumptionRow(from, to);
    assert.equal(merged.userid, 'b');
    assert.equal(merged.completionpercentage, 10);
    assert.equal(merged.progressdetails, '{"to":1}');
    assert.equal(merged.viewcount, 3);
  });

  test('text dates parse only in yyyy-MM-dd HH:mm:ss:SSSZ with a real calendar date', () => {
    assert.equal(parseTextDate('2022-03-31 10:05:12:345+0000'), Date.parse('2022-03-31T10:05:12.345Z'));
    assert.equal(parseTextDate('2022-03-31 10:05:12:345-0130'), Date.parse('2022-03-31T11:35:12.345Z'));
    assert.equal(parseTextDate('2022-02-30 10:05:12:345+0000'), undefined);
    assert.equal(parseTextDate('2022-03-31 10:05:12.345+0000'), undefined);
    assert.equal(parseTextDate('2022-03-31 10:05:12:345'), undefined);
    assert.equal(parseTextDate(''), undefined);
  });
});

describe('merge plan', () => {
  const row = (
    userid: string,
    courseid: string,
    batchid: string,
    contentid: string,
    extra: Row = {},
  ): Row => ({
    userid,
    courseid,
    batchid,
    contentid,
    ...extra,
  });

  test('a from-row without a match is copied to the to-account with all its columns', () => {
    const from = [row('A', 'c1', 'b1', 'x', { viewcount: 2, progressdetails: 'p' })];
    const { ops, copied, merged } = planConsumption(from, [], 'B');
    assert.equal(copied, 1);
    assert.equal(merged, 0);
    assert.deepEqual(ops, [
      {
        kind: 'insert',
        table: 'consumption',
        row: row('B', 'c1', 'b1', 'x', { viewcount: 2, progressdetails: 'p' }),
      },
    ]);
  });

  test('courseid, batchid and contentid match case-insensitively and the to-row keeps its own key', () => {
    const from = [row('A', 'DO_C1', 'B1', 'Do_X', { viewcount: 2, status: 2 })];
    const to = [row('B', 'do_c1', 'b1', 'do_x', { viewcount: 3, status: 1 })];
    const { ops, copied, merged } = planConsumption(from, to, 'B');
    assert.equal(copied, 0);
    assert.equal(merged, 1);
    assert.deepEqual(ops, [
      {
        kind: 'update',
        table: 'consumption',
        key: { userid: 'B', courseid: 'do_c1', batchid: 'b1', contentid: 'do_x' },
        set: { status: 2, viewcount: 5 },
      },
    ]);
  });

  test('a match that changes nothing produces no write', () => {
    const from = [row('A', 'c', 'b', 'x', { status: 1 })];
    const to = [row('B', 'c', 'b', 'x', { status: 2 })];
    assert.deepEqual(planConsumption(from, to, 'B').ops, []);
  });

  test('two from-rows differing only in case both merge into one to-row', () => {
    const from = [row('A', 'c', 'b', 'X', { viewcount: 1 }), row('A', 'c', 'b', 'x', { viewcount: 2 })];
    const to = [row('B', 'c', 'b', 'x', { viewcount: 10 })];
    const { ops } = planConsumption(from, to, 'B');
    assert.deepEqual(ops, [
      { kind: 'update', table: 'consumption', key: row('B', 'c', 'b', 'x'), set: { viewcount: 13 } },
    ]);
  });

  test('enrolments: batches the to-account lacks are copied whole, its own batch is untouched', () => {
    const certs = [{ name: 'cert', id: 'c-1' }];
    const from = [
      {
        userid: 'A',
        courseid: 'c1',
        batchid: 'b1',
        certificates: certs,
        contentstatus: { x: 2 },
        progress: 5,
      },
      { userid: 'A', courseid: 'c2', batchid: 'b2', progress: 100 },
    ];
    const to = [{ userid: 'B', courseid: 'c2', batchid: 'b2', progress: 1 }];
    const { ops, kept } = planEnrolments(from, to, 'B');
    assert.equal(kept, 1);
    assert.deepEqual(ops, [
      {
        kind: 'insert',
        table: 'enrolments',
        row: {
          userid: 'B',
          courseid: 'c1',
          batchid: 'b1',
          certificates: certs,
          contentstatus: { x: 2 },
          progress: 5,
        },
      },
    ]);
  });

  test('activity agg: completedCount becomes the true max and other keys are left alone', () => {
    const key = { activity_type: 'Course', activity_id: 'c1', context_id: 'cb:b1' };
    const fromAgg = [
      { ...key, user_id: 'A', aggregates: { completedCount: 7, other: 1 }, agg: { completedCount: 7 } },
    ];
    const toAgg = [
      { ...key, user_id: 'B', aggregates: { completedCount: 9, mine: 3 }, agg: { completedCount: 4 } },
    ];
    const at = new Date('2026-12-01T10:00:00Z');
    const ops = planActivityAgg(fromAgg, toAgg, new Set(['c1']), 'B', at);
    assert.deepEqual(ops, [
      {
        kind: 'update',
        table: 'activityAgg',
        key: { ...key, user_id: 'B' },
        mapPut: { agg: { completedCount: 7 }, agg_last_updated: { completedCount: at } },
      },
    ]);
  });

  test('activity agg: a context the to-account lacks gets from’s completedCount; courses not enrolled are ignored', () => {
    const fromAgg = [
      {
        activity_type: 'Course',
        activity_id: 'c1',
        user_id: 'A',
        context_id: 'cb:b1',
        aggregates: { completedCount: 2 },
      },
      {
        activity_type: 'Course',
        activity_id: 'c9',
        user_id: 'A',
        context_id: 'cb:b9',
        aggregates: { completedCount: 5 },
      },
    ];
    const at = new Date('2026-12-01T10:00:00Z');
    const ops = planActivityAgg(fromAgg, [], new Set(['c1']), 'B', at);
    assert.deepEqual(ops, [
      {
        kind: 'update',
        table: 'activityAgg',
        key: { activity_type: 'Course', activity_id: 'c1', user_id: 'B', context_id: 'cb:b1' },
        mapPut: { aggregates: { completedCount: 2 }, agg_last_updated: { completedCount: at } },
      },
    ]);
  });

  test('the whole plan is deterministic and summarised', () => {
    const snapshot = {
      fromConsumption: [
        row('A', 'c1', 'b1', 'x', { viewcount: 1 }),
        row('A', 'c1', 'b1', 'y', { viewcount: 1 }),
      ],
      toConsumption: [row('B', 'c1', 'b1', 'x', { viewcount: 1 })],
      fromEnrolments: [{ userid: 'A', courseid: 'c1', batchid: 'b1' }],
      toEnrolments: [],
      fromAgg: [],
      toAgg: [],
    };
    const at = new Date('2026-12-01T10:00:00Z');
    const a = computeMergePlan(snapshot, 'B', at);
    assert.deepEqual(a, computeMergePlan(snapshot, 'B', at));
    assert.deepEqual(a.summary, {
      consumptionCopied: 1,
      consumptionMerged: 1,
      enrolmentsCopied: 1,
      enrolmentsKept: 0,
      aggUpdated: 0,
    });
  });
});

describe('merge plan persistence', () => {
  test('a plan survives the journal encoding with its timestamps, maps and lists intact', () => {
    const ops: WriteOp[] = [
      {
        kind: 'insert',
        table: 'enrolments',
        row: {
          userid: 'B',
          datetime: new Date('2022-03-31T10:00:00.123Z'),
          certificates: [{ id: '1', name: 'n' }],
          contentstatus: { a: 2 },
          completedon: null,
        },
      },
      {
        kind: 'update',
        table: 'activityAgg',
        key: { user_id: 'B' },
        mapPut: { aggregates: { completedCount: 2.5 } },
      },
    ];
    assert.deepEqual(decodePlan(encodePlan(ops)), ops);
  });

  test('big plans are chunked so no journal row grows with the account', () => {
    const ops: WriteOp[] = Array.from({ length: 450 }, (_, i) => ({
      kind: 'insert' as const,
      table: 'consumption' as const,
      row: { userid: 'B', contentid: `c${i}` },
    }));
    const chunks = chunkPlan(ops);
    assert.equal(chunks.length, 3);
    assert.deepEqual(chunks.flatMap(decodePlan), ops);
    const huge: WriteOp[] = Array.from({ length: 10 }, (_, i) => ({
      kind: 'insert' as const,
      table: 'consumption' as const,
      row: { userid: 'B', contentid: `c${i}`, progressdetails: 'x'.repeat(100_000) },
    }));
    assert.ok(chunkPlan(huge).length >= 4);
  });

  test('a chunk is exactly what encoding its ops gives', () => {
    const ops: WriteOp[] = Array.from({ length: 30 }, (_, i) => ({
      kind: 'update' as const,
      table: 'consumption' as const,
      key: { userid: 'B', contentid: `c${i}` },
      set: { datetime: new Date(1_650_000_000_000 + i), progress: i },
    }));
    assert.deepEqual(chunkPlan(ops), [encodePlan(ops)]);
  });

  test('writes are grouped by partition, in order, every write once, each group small enough for one batch', () => {
    const consumption = (user: string, i: number): WriteOp => ({
      kind: 'insert',
      table: 'consumption',
      row: {
        userid: user,
        courseid: 'c',
        batchid: 'b',
        contentid: `k${i}`,
        progressdetails: 'x'.repeat(300),
      },
    });
    const agg = (course: string): WriteOp => ({
      kind: 'update',
      table: 'activityAgg',
      key: { activity_type: 'Course', activity_id: course, user_id: 'B', context_id: 'cb:1' },
      mapPut: { agg: { completedCount: 1 } },
    });
    const ops: WriteOp[] = [
      ...Array.from({ length: 120 }, (_, i) => consumption('B', i)),
      agg('c1'),
      agg('c2'),
      agg('c1'),
      { kind: 'insert', table: 'enrolments', row: { userid: 'B', courseid: 'c', batchid: 'b' } },
    ];
    const groups = writeGroups(ops);
    assert.deepEqual(
      groups.flat().sort((a, b) => ops.indexOf(a) - ops.indexOf(b)),
      ops,
      'every write exactly once',
    );
    for (const g of groups) {
      const partitions = new Set(
        g.map((op) =>
          op.kind === 'insert'
            ? `${op.table}/${op.row.userid}`
            : `${op.table}/${op.key.activity_id}/${op.key.user_id}`,
        ),
      );
      assert.equal(partitions.size, 1, 'one partition per group');
      assert.ok(encodePlan(g).length <= 6 * 1024, `${encodePlan(g).length} chars`);
      for (let i = 1; i < g.length; i++) assert.ok(ops.indexOf(g[i - 1]!) < ops.indexOf(g[i]!), 'order kept');
    }
    assert.ok(groups.length < ops.length / 5, `${groups.length} groups for ${ops.length} writes`);
    assert.deepEqual(
      groups.filter((g) => g[0]!.table === 'activityAgg').map((g) => g.length),
      [2, 1],
    );
  });

  test('bounded concurrency never exceeds its limit and reports the first failure', async () => {
    let inFlight = 0;
    let peak = 0;
    await forEachLimit([...Array(50).keys()], 4, async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
    });
    assert.equal(peak, 4);
    await assert.rejects(
      forEachLimit([1, 2, 3], 2, async (n) => {
        if (n === 2) throw new Error('boom');
      }),
      /boom/,
    );
  });
});

describe('merge event validation', () => {
  const sample = readFileSync(new URL('../../events/merge-user-courses-event.json', import.meta.url), 'utf8');

  test('the spec sample event is accepted', () => {
    const r = validateMergeEvent(sample);
    assert.ok(r.ok);
    assert.equal(r.request.fromAccountId, 'b964d83a-7c3c-4a4c-9d8e-3d1e6a0f5c11');
  });

  const invalid: Array<{ why: string; raw: string; reason: RegExp }> = [
    { why: 'non-JSON', raw: '{"eid": "BE_JOB', reason: /not valid JSON/ },
    { why: 'a JSON array', raw: '[1,2]', reason: /not a JSON object/ },
    { why: 'missing edata', raw: '{"eid":"BE_JOB_REQUEST"}', reason: /edata/ },
    { why: 'empty edata', raw: '{"edata":{}}', reason: /edata is empty/ },
    { why: 'edata not an object', raw: '{"edata":"x"}', reason: /edata/ },
    {
      why: 'empty fromAccountId',
      raw: '{"edata":{"fromAccountId":"","toAccountId":"b"}}',
      reason: /fromAccountId/,
    },
    {
      why: 'blank toAccountId',
      raw: '{"edata":{"fromAccountId":"a","toAccountId":"  "}}',
      reason: /toAccountId/,
    },
    { why: 'missing toAccountId', raw: '{"edata":{"fromAccountId":"a"}}', reason: /toAccountId/ },
    { why: 'numeric ids', raw: '{"edata":{"fromAccountId":1,"toAccountId":2}}', reason: /fromAccountId/ },
    { why: 'from == to', raw: '{"edata":{"fromAccountId":"a","toAccountId":"a"}}', reason: /same account/ },
  ];
  for (const c of invalid) {
    test(`${c.why} is rejected with a reason, never a throw`, () => {
      const r = validateMergeEvent(Buffer.from(c.raw));
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, c.reason);
    });
  }

  test('a failed event carries the original event, jobName and failInfo', () => {
    const original = { eid: 'BE_JOB_REQUEST', edata: {} };
    assert.deepEqual(failedEvent(original, 'edata is empty'), {
      eid: 'BE_JOB_REQUEST',
      edata: {},
      jobName: 'MergeUserCourses',
      failInfo: { errorCode: 'DATA_ERROR', error: 'edata is empty' },
    });
    assert.deepEqual(failedEvent('not json', 'message is not valid JSON'), {
      event: 'not json',
      jobName: 'MergeUserCourses',
      failInfo: { errorCode: 'DATA_ERROR', error: 'message is not valid JSON' },
    });
  });

  test('a batch-enrolment-sync event has exactly the spec shape', () => {
    const e = batchEnrolmentSyncEvent({ batchid: 'b1', courseid: 'c1' }, 'U2', {
      now: () => 1700,
      uuid: () => 'u-1',
    });
    assert.deepEqual(e, {
      actor: { id: 'Course Batch Updater', type: 'System' },
      eid: 'BE_JOB_REQUEST',
      edata: {
        action: 'batch-enrolment-sync',
        iteration: 1,
        batchId: 'b1',
        userId: 'U2',
        courseId: 'c1',
        reset: ['completionPercentage', 'status', 'progress'],
      },
      ets: 1700,
      context: { pdata: { ver: '1.0', id: 'org.sunbird.platform' } },
      mid: 'LP.1700.u-1',
      object: { id: 'b1_U2', type: 'CourseBatchEnrolment' },
    });
  });

  test('topic defaults follow the environment name', () => {
    const t = mergeTopicsFrom(loadFlatConfig({ env: { SUNBIRD_ENV: 'staging' } }));
    assert.deepEqual(t, {
      input: 'staging.lms.user.account.merge',
      failed: 'staging.learning.events.failed',
      courseBatch: 'staging.coursebatch.job.request',
      groupId: 'staging-merge-user-courses-group',
    });
    const o = mergeTopicsFrom(loadFlatConfig({ env: {}, overrides: { 'kafka.input.topic': 'custom.in' } }));
    assert.equal(o.input, 'custom.in');
  });
});

describe('MSK batch semantics', () => {
  const event = JSON.parse(
    readFileSync(new URL('../../events/msk-merge-user-courses.json', import.meta.url), 'utf8'),
  ) as MSKEvent;

  test('records of a partition are handled in offset order, even if delivered out of order', async () => {
    const e = structuredClone(event);
    const records = Object.values(e.records)[0]!;
    const seen: number[] = [];
    const shuffled = [
      { ...records[0]!, offset: 12 },
      { ...records[0]!, offset: 10 },
      { ...records[0]!, offset: 11 },
    ];
    e.records = { 'local.lms.user.account.merge-0': shuffled };
    await processMskEvent(e, async (_v, r) => {
      seen.push(r.offset);
    });
    assert.deepEqual(seen, [10, 11, 12]);
  });

  test('a failure stops only its own partition and names the first record to come back', async () => {
    const base = Object.values(event.records)[0]![0]!;
    const e: MSKEvent = {
      ...event,
      records: {
        't-0': [0, 1, 2, 3].map((o) => ({ ...base, topic: 't', partition: 0, offset: o })),
        't-1': [0, 1].map((o) => ({ ...base, topic: 't', partition: 1, offset: o })),
      },
    };
    const seen: string[] = [];
    const result = await processMskEvent(e, async (_v, r) => {
      if (r.partition === 0 && r.offset === 1) throw new Error('cassandra down');
      seen.push(`${r.partition}/${r.offset}`);
    });
    assert.deepEqual(seen.sort(), ['0/0', '1/0', '1/1']);
    assert.equal(result.failures.length, 1);
    assert.equal(result.notAttempted, 2);
    assert.deepEqual(kafkaBatchResponse(result.failures), {
      batchItemFailures: [{ itemIdentifier: { partition: 't-0', offset: 1 } }],
    });
  });
});
