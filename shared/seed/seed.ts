import cassandra from 'cassandra-driver';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import { coursePlan, orgRow, prng, seededId, sunbirdDate, userRow } from '#shared/seed/generate.ts';

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

export async function seed(
  client: CassandraClient,
  opts: SeedOptions,
  onProgress?: (p: SeedProgress) => void,
): Promise<SeedCounts> {
  const c = opts.concurrency ?? 256;
  const ks = opts.keyspace;
  const counts: SeedCounts = { users: 0, orgs: 0, enrolments: 0, contents: 0, activity: 0 };

  counts.orgs = await writeAll(
    client,
    `INSERT INTO ${ks}.organisation (id, orgname, channel, status, isrootorg, rootorgid, slug, orgcode, description, isdefault, createddate, createdby, updateddate) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
    opts.orgs,
    (i) => {
      const o = orgRow(opts.seed, i);
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
    },
    `${ks}.organisation`,
    c,
    onProgress,
  );

  counts.users = await writeAll(
    client,
    `INSERT INTO ${ks}.user (id, userid, username, email, maskedemail, emailverified, phone, maskedphone, phoneverified, status, isdeleted, rootorgid, channel, firstname, lastname, roles, usertype, createddate, lastlogintime, updateddate) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
    opts.users,
    (i) => {
      const u = userRow(opts.seed, i, opts.orgs);
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
    },
    `${ks}.user`,
    c,
    onProgress,
  );

  if (opts.courses <= 0) return counts;
  const cks = opts.coursesKeyspace;
  const plans = Array.from({ length: opts.courses }, (_, k) =>
    coursePlan(opts.seed, k, opts.contentsPerCourse),
  );
  const courseUsers = Math.min(opts.courseUsers, opts.users);
  // Each course user is enrolled in up to 3 courses, in one of the course's two batches.
  const enrolmentOf = (u: number): Array<{ plan: (typeof plans)[number]; batchId: string }> => {
    const rand = prng((opts.seed ^ Math.imul(u + 7, 2246822519)) >>> 0);
    const n = Math.min(plans.length, 1 + Math.floor(rand() * 3));
    const first = Math.floor(rand() * plans.length);
    return Array.from({ length: n }, (_, k) => {
      const plan = plans[(first + k) % plans.length]!;
      return { plan, batchId: plan.batchIds[Math.floor(rand() * 2)]! };
    });
  };
  const enrolRows: unknown[][] = [];
  const contentRows: unknown[][] = [];
  const aggRows: unknown[][] = [];
  const base = 1_700_000_000_000;
  for (let u = 0; u < courseUsers; u++) {
    const userId = seededId(opts.seed, 'user', u);
    for (const { plan, batchId } of enrolmentOf(u)) {
      const rand = prng((opts.seed ^ Math.imul(u + 1, 31) ^ plan.courseId.length) >>> 0);
      let completed = 0;
      for (const contentId of plan.contentIds) {
        const status = rand() < 0.6 ? 2 : 1;
        if (status === 2) completed++;
        const t = base + Math.floor(rand() * 1e9);
        contentRows.push([
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
      enrolRows.push([
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
      aggRows.push([
        'Course',
        plan.courseId,
        userId,
        `cb:${batchId}`,
        { completedCount: completed },
        { completedCount: new Date(base) },
        { completedCount: completed, progress: progress },
      ]);
    }
  }
  counts.enrolments = await writeAll(
    client,
    `INSERT INTO ${cks}.user_enrolments (userid, courseid, batchid, active, addedby, completionpercentage, status, progress, enrolleddate, enrolled_date, contentstatus, issued_certificates) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
    enrolRows.length,
    (i) => enrolRows[i]!,
    `${cks}.user_enrolments`,
    c,
    onProgress,
  );
  counts.contents = await writeAll(
    client,
    `INSERT INTO ${cks}.user_content_consumption (userid, courseid, batchid, contentid, completedcount, datetime, lastaccesstime, lastcompletedtime, lastupdatedtime, progress, status, viewcount, last_access_time, last_completed_time, last_updated_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
    contentRows.length,
    (i) => contentRows[i]!,
    `${cks}.user_content_consumption`,
    c,
    onProgress,
  );
  counts.activity = await writeAll(
    client,
    `INSERT INTO ${cks}.user_activity_agg (activity_type, activity_id, user_id, context_id, agg, agg_last_updated, aggregates) VALUES (?,?,?,?,?,?,?)`,
    aggRows.length,
    (i) => aggRows[i]!,
    `${cks}.user_activity_agg`,
    c,
    onProgress,
  );
  return counts;
}
