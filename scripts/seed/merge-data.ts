/**
 * Realistic account pairs for merge tests and the merge bench: content consumption, enrolments with
 * certificates/maps/lists, and activity aggregates, written with prepared statements.
 */
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { forEachLimit } from '#shared/core/concurrency.ts';
import type { Row } from '#shared/merge/types.ts';

export interface AccountPairData {
  consumption: Row[];
  enrolments: Row[];
  agg: Row[];
}

const t = (iso: string) => new Date(iso);

function sampleConsumption(from: string, to: string): Row[] {
  return [
    {
      userid: from,
      courseid: 'DO_COURSE_1',
      batchid: 'B1',
      contentid: 'Do_Content_1',
      status: 2,
      progress: 100,
      viewcount: 3,
      completedcount: 1,
      datetime: t('2022-03-01T10:00:00Z'),
      last_access_time: t('2022-03-05T10:00:00Z'),
      last_completed_time: null,
      last_updated_time: t('2022-03-05T10:00:00Z'),
      lastaccesstime: '2022-03-05 10:00:00:000+0000',
      lastcompletedtime: 'not a date',
      lastupdatedtime: '2022-03-05 10:00:00:000+0000',
      completionpercentage: 100,
      progressdetails: '{"from":true}',
    },
    {
      userid: from,
      courseid: 'do_course_1',
      batchid: 'b1',
      contentid: 'do_content_2',
      status: 1,
      progress: 20,
      viewcount: 1,
      completedcount: null,
      datetime: t('2022-03-02T10:00:00Z'),
      lastaccesstime: '2022-03-02 10:00:00:000+0000',
      completionpercentage: 20,
    },
    {
      userid: from,
      courseid: 'do_course_2',
      batchid: 'b2',
      contentid: 'do_content_9',
      status: 2,
      progress: 100,
      viewcount: 5,
      completedcount: 2,
      last_completed_time: t('2022-01-01T00:00:00Z'),
      lastcompletedtime: '2022-01-01 00:00:00:000+0000',
    },
    {
      userid: to,
      courseid: 'do_course_1',
      batchid: 'b1',
      contentid: 'do_content_1',
      status: 1,
      progress: 40,
      viewcount: 4,
      completedcount: 0,
      datetime: t('2022-03-03T10:00:00Z'),
      last_access_time: t('2022-03-01T10:00:00Z'),
      last_completed_time: t('2022-02-01T10:00:00Z'),
      last_updated_time: null,
      lastaccesstime: '2022-03-01 10:00:00:000+0000',
      lastcompletedtime: '2022-02-01 10:00:00:000+0000',
      lastupdatedtime: 'garbage',
      completionpercentage: 40,
      progressdetails: '{"to":true}',
    },
    {
      userid: to,
      courseid: 'do_course_3',
      batchid: 'b3',
      contentid: 'do_content_7',
      status: 2,
      progress: 100,
      viewcount: 9,
      completedcount: 1,
    },
  ];
}

function sampleEnrolments(from: string, to: string): Row[] {
  return [
    {
      userid: from,
      courseid: 'do_course_1',
      batchid: 'b1',
      active: true,
      addedby: 'admin-1',
      certificates: [
        { id: 'cert-1', name: 'Course completion', token: 'T1', lastIssuedOn: '2022-03-05' },
        { id: 'cert-1b', name: 'Merit' },
      ],
      issued_certificates: [{ identifier: 'ic-1', name: 'Completion', url: 'https://example.org/c/1' }],
      completedon: t('2022-03-05T10:00:00Z'),
      completionpercentage: 100,
      contentstatus: { do_content_1: 2, do_content_2: 1 },
      datetime: t('2022-01-01T10:00:00Z'),
      enrolleddate: '2022-01-01 10:00:00:000+0000',
      lastreadcontentid: 'do_content_2',
      lastreadcontentstatus: 1,
      progress: 2,
      status: 2,
      certstatus: 1,
      enrolled_date: t('2022-01-01T10:00:00Z'),
      lastcontentaccesstime: t('2022-03-05T10:00:00Z'),
    },
    {
      userid: from,
      courseid: 'do_course_2',
      batchid: 'b2',
      active: true,
      progress: 1,
      status: 2,
      contentstatus: { do_content_9: 2 },
      certificates: [{ id: 'from-cert-2' }],
    },
    {
      userid: to,
      courseid: 'do_course_2',
      batchid: 'b2',
      active: true,
      progress: 0,
      status: 1,
      contentstatus: { do_content_9: 1 },
      certificates: [],
    },
    { userid: to, courseid: 'do_course_3', batchid: 'b3', active: true, progress: 1, status: 2 },
  ];
}

function sampleAgg(from: string, to: string): Row[] {
  return [
    {
      activity_type: 'Course',
      activity_id: 'do_course_1',
      user_id: from,
      context_id: 'cb:b1',
      aggregates: { completedCount: 2, 'score:x': 0.5 },
      agg: { completedCount: 2 },
      agg_last_updated: { completedCount: t('2022-03-05T10:00:00Z') },
      agg_details: ['from-detail'],
    },
    {
      activity_type: 'Course',
      activity_id: 'do_course_2',
      user_id: from,
      context_id: 'cb:b2',
      aggregates: { completedCount: 1 },
      agg: { completedCount: 1 },
    },
    {
      activity_type: 'Course',
      activity_id: 'do_course_2',
      user_id: to,
      context_id: 'cb:b2',
      aggregates: { completedCount: 3, 'score:y': 7 },
      agg: { completedCount: 0, other: 4 },
      agg_details: ['to-detail'],
    },
  ];
}

/**
 * The hand-written pair used by the integration tests. It exercises every rule: a case-insensitive
 * match, null on either side, unparsable text dates, a copy, a shared batch, a batch only `from` has,
 * and activity aggregates with extra keys.
 */
export function samplePair(from: string, to: string): AccountPairData {
  return {
    consumption: sampleConsumption(from, to),
    enrolments: sampleEnrolments(from, to),
    agg: sampleAgg(from, to),
  };
}

/** A generated pair: `enrolments` batches each, `contents` consumption rows each, half of them shared. */
export function generatedPair(from: string, to: string, enrolments = 20, contents = 500): AccountPairData {
  const out: AccountPairData = { consumption: [], enrolments: [], agg: [] };
  const perBatch = Math.ceil(contents / enrolments);
  for (const [user, offset] of [
    [from, 0],
    [to, Math.floor(enrolments / 2)],
  ] as const) {
    for (let e = 0; e < enrolments; e++) {
      const n = e + offset;
      out.enrolments.push({
        userid: user,
        courseid: `do_course_${n}`,
        batchid: `batch_${n}`,
        active: true,
        status: 1 + (n % 2),
        progress: n,
        contentstatus: { [`do_content_${n}_0`]: 2 },
        certificates: n % 3 === 0 ? [{ id: `cert-${n}`, name: 'Completion' }] : [],
        enrolled_date: t('2022-01-01T00:00:00Z'),
      });
      out.agg.push({
        activity_type: 'Course',
        activity_id: `do_course_${n}`,
        user_id: user,
        context_id: `cb:batch_${n}`,
        aggregates: { completedCount: (n * 7) % 5 },
        agg: { completedCount: (n * 7) % 5 },
      });
      for (let c = 0; c < perBatch && e * perBatch + c < contents; c++) {
        out.consumption.push({
          userid: user,
          courseid: `do_course_${n}`,
          batchid: `batch_${n}`,
          contentid: `do_content_${n}_${c}`,
          status: 1 + ((n + c) % 2),
          progress: (n * c) % 100,
          viewcount: 1 + (c % 4),
          completedcount: c % 2,
          last_access_time: new Date(Date.UTC(2022, 0, 1 + ((n + c) % 28))),
          lastaccesstime: `2022-01-${String(1 + ((n + c) % 28)).padStart(2, '0')} 10:00:00:000+0000`,
          progressdetails: 'x'.repeat(200),
        });
      }
    }
  }
  return out;
}

const TABLE: Record<keyof AccountPairData, string> = {
  consumption: 'user_content_consumption',
  enrolments: 'user_enrolments',
  agg: 'user_activity_agg',
};

export async function seedPair(
  client: CassandraClient,
  coursesKeyspace: string,
  data: AccountPairData,
  concurrency = 64,
): Promise<void> {
  const writes: Array<[string, unknown[]]> = [];
  for (const part of Object.keys(TABLE) as Array<keyof AccountPairData>) {
    for (const row of data[part]) {
      const cols = Object.keys(row).sort();
      writes.push([
        `INSERT INTO ${coursesKeyspace}.${TABLE[part]} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
        cols.map((c) => row[c]),
      ]);
    }
  }
  await forEachLimit(writes, concurrency, async ([cql, params]) => {
    await client.execute(cql, params, { prepare: true });
  });
}
