import cassandra from 'cassandra-driver';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { type CoursePlan, coursePlan, orgRow, prng, seededId, sunbirdDate, userRow } from './generate.ts';

export interface SeedOptions {
  users: number;
  orgs: number;
  /** Number of courses; 0 seeds no course progress. */
  courses: number;
  /** How many users (the first ones) get enrolments and content progress. */
  courseUsers: number;
  contentsPerCourse: number;
  seed: number;
  keyspace: string;
  coursesKeyspace: string;
  concurrency?: number;
}

export interface SeedProgress {
  table: string;
  done: number;
  total: number;
  tableStarted: number;
}

export interface SeedCounts {
  users: number;
  orgs: number;
  enrolments: number;
  contents: number;
  activity: number;
}

const CHUNK = 5000;

async function writeAll(
  client: CassandraClient,
  cql: string,
  total: number,
  rowAt: (i: number) => unknown[],
  table: string,
  concurrency: number,
  onProgress?: (p: SeedProgress) => void,
): Promise<number> {
  const tableStarted = Date.now();
  onProgress?.({ table, done: 0, total, tableStarted });
  for (let start = 0; start < total; start += CHUNK) {
    const end = Math.min(total, start + CHUNK);
    const params: unknown[][] = [];
    for (let i = start; i < end; i++) params.push(rowAt(i));
    await cassandra.concurrent.executeConcurrent(client, cql, params, { concurrencyLevel: concurrency });
    onProgress?.({ table, done: end, total, tableStarted });
  }
  return total;
}

/** Ids of the seeded users, in order; regenerable without reading Cassandra. */
export function seededUserIds(seed: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => seededId(seed, 'user', i));
}

const ORG_INSERT = (ks: string) =>
  `INSERT INTO ${ks}.organisation (id, orgname, channel, status, isrootorg, rootorgid, slug, orgcode, description, isdefault, createddate, createdby, updateddate) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`;
const USER_INSERT = (ks: string) =>
  `INSERT INTO ${ks}.user (id, userid, username, email, maskedemail, emailverified, phone, maskedphone, phoneverified, status, isdeleted, rootorgid, channel, firstname, lastname, roles, usertype, createddate, lastlogintime, updateddate) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`;

function orgParams(seed: number, i: number): unknown[] {
  const o = orgRow(seed, i);
  return [
    o.id,
    o.orgname,
    o.channel,
    o.status,
    o.isrootorg,
    o.rootorgid,
    o.slug,
    o.orgcode,
    o.description,
    o.isdefault,
    o.createddate,
    o.createdby,
    o.updateddate,
  ];
}

function userParams(seed: number, i: number, orgs: number): unknown[] {
  const u = userRow(seed, i, orgs);
  return [
    u.id,
    u.userid,
    u.username,
    u.email,
    u.maskedemail,
    u.emailverified,
    u.phone,
    u.maskedphone,
    u.phoneverified,
    u.status,
    u.isdeleted,
    u.rootorgid,
    u.channel,
    u.firstname,
    u.lastname,
    u.roles,
    u.usertype,
    u.createddate,
    cassandra.types.Long.fromNumber(u.lastlogintime),
    u.updateddate,
  ];
}

interface CourseRows {
  enrolments: unknown[][];
  contents: unknown[][];
  activity: unknown[][];
}

const COURSE_BASE_MS = 1_700_000_000_000;

/** One enrolment's rows: its content progress, the enrolment and its activity aggregate. */
function addEnrolment(rows: CourseRows, seed: number, u: number, plan: CoursePlan, batchId: string): void {
  const userId = seededId(seed, 'user', u);
  const base = COURSE_BASE_MS;
  const rand = prng((seed ^ Math.imul(u + 1, 31) ^ plan.courseId.length) >>> 0);
  let completed = 0;
  for (const contentId of plan.contentIds) {
    const status = rand() < 0.6 ? 2 : 1;
    if (status === 2) completed++;
    const t = base + Math.floor(rand() * 1e9);
    rows.contents.push([
      userId,
      plan.courseId,
      batchId,
      contentId,
      status === 2 ? 1 : 0,
      new Date(t),
      sunbirdDate(t),
      status === 2 ? sunbirdDate(t) : null,
      sunbirdDate(t),
      status === 2 ? 100 : Math.floor(rand() * 100),
      status,
      1 + Math.floor(rand() * 5),
      new Date(t),
      status === 2 ? new Date(t) : null,
      new Date(t),
    ]);
  }
  const progress = Math.round((100 * completed) / Math.max(1, plan.contentIds.length));
  rows.enrolments.push([
    userId,
    plan.courseId,
    batchId,
    true,
    'system',
    progress,
    progress === 100 ? 2 : 1,
    completed,
    sunbirdDate(base),
    new Date(base),
    Object.fromEntries(plan.contentIds.map((cid, k) => [cid, k < completed ? 2 : 1])),
    progress === 100 ? [{ name: 'Course completion', id: `cert-${u}` }] : [],
  ]);
  rows.activity.push([
    'Course',
    plan.courseId,
    userId,
    `cb:${batchId}`,
    { completedCount: completed },
    { completedCount: new Date(base) },
    { completedCount: completed, progress: progress },
  ]);
}

/** The course progress of the first `courseUsers` users: each in up to 3 courses, one batch each. */
function courseRows(opts: SeedOptions): CourseRows {
  const plans = Array.from({ length: opts.courses }, (_, k) =>
    coursePlan(opts.seed, k, opts.contentsPerCourse),
  );
  const rows: CourseRows = { enrolments: [], contents: [], activity: [] };
  const courseUsers = Math.min(opts.courseUsers, opts.users);
  for (let u = 0; u < courseUsers; u++) {
    const rand = prng((opts.seed ^ Math.imul(u + 7, 2246822519)) >>> 0);
    const n = Math.min(plans.length, 1 + Math.floor(rand() * 3));
    const first = Math.floor(rand() * plans.length);
    for (let k = 0; k < n; k++) {
      const plan = plans[(first + k) % plans.length]!;
      addEnrolment(rows, opts.seed, u, plan, plan.batchIds[Math.floor(rand() * 2)]!);
    }
  }
  return rows;
}

export async function seed(
  client: CassandraClient,
  opts: SeedOptions,
  onProgress?: (p: SeedProgress) => void,
): Promise<SeedCounts> {
  const c = opts.concurrency ?? 256;
  const ks = opts.keyspace;
  const counts: SeedCounts = { users: 0, orgs: 0, enrolments: 0, contents: 0, activity: 0 };
  const write = (cql: string, rows: number, rowAt: (i: number) => unknown[], table: string) =>
    writeAll(client, cql, rows, rowAt, table, c, onProgress);

  counts.orgs = await write(ORG_INSERT(ks), opts.orgs, (i) => orgParams(opts.seed, i), `${ks}.organisation`);
  counts.users = await write(
    USER_INSERT(ks),
    opts.users,
    (i) => userParams(opts.seed, i, opts.orgs),
    `${ks}.user`,
  );
  if (opts.courses <= 0) return counts;

  const cks = opts.coursesKeyspace;
  const rows = courseRows(opts);
  counts.enrolments = await write(
    `INSERT INTO ${cks}.user_enrolments (userid, courseid, batchid, active, addedby, completionpercentage, status, progress, enrolleddate, enrolled_date, contentstatus, issued_certificates) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
    rows.enrolments.length,
    (i) => rows.enrolments[i]!,
    `${cks}.user_enrolments`,
  );
  counts.contents = await write(
    `INSERT INTO ${cks}.user_content_consumption (userid, courseid, batchid, contentid, completedcount, datetime, lastaccesstime, lastcompletedtime, lastupdatedtime, progress, status, viewcount, last_access_time, last_completed_time, last_updated_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
    rows.contents.length,
    (i) => rows.contents[i]!,
    `${cks}.user_content_consumption`,
  );
  counts.activity = await write(
    `INSERT INTO ${cks}.user_activity_agg (activity_type, activity_id, user_id, context_id, agg, agg_last_updated, aggregates) VALUES (?,?,?,?,?,?,?)`,
    rows.activity.length,
    (i) => rows.activity[i]!,
    `${cks}.user_activity_agg`,
  );
  return counts;
}
