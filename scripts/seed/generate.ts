/**
 * Deterministic generators of realistic Sunbird rows: the same seed always yields the same ids and
 * values, so tests, the demo and benchmarks can reason about what is in the tables.
 */

/** splitmix32: tiny, fast, good enough for test data; not for anything secret. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

function hex(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
}

/** A UUID-shaped id derived only from (seed, kind, index), so any row can be regenerated alone. */
export function seededId(seed: number, kind: string, index: number): string {
  let h = seed >>> 0;
  for (let i = 0; i < kind.length; i++) h = Math.imul(h ^ kind.charCodeAt(i), 16777619) >>> 0;
  const rand = prng((h ^ Math.imul(index + 1, 2654435761)) >>> 0);
  return `${hex(rand, 8)}-${hex(rand, 4)}-4${hex(rand, 3)}-a${hex(rand, 3)}-${hex(rand, 12)}`;
}

const FIRST = [
  'Asha',
  'Ravi',
  'Meera',
  'Arjun',
  'Fatima',
  'John',
  'Lakshmi',
  'Vikram',
  'Sara',
  'Imran',
  'Divya',
];
const LAST = ['Sharma', 'Iyer', 'Khan', 'Reddy', 'Das', 'Nair', 'Patel', 'Singh', 'Menon', 'Gupta'];
const ROLES = ['PUBLIC', 'CONTENT_CREATOR', 'COURSE_MENTOR', 'ORG_ADMIN', 'BOOK_CREATOR'];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

const DAY_MS = 86_400_000;

function sunbirdDate(ms: number): string {
  // Sunbird's text dates look like 2024-01-01 10:00:00:000+0000
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.(\d{3})Z$/, ':$1+0000');
}

export interface OrgRow {
  id: string;
  orgname: string;
  channel: string;
  status: number;
  isrootorg: boolean;
  rootorgid: string;
  slug: string;
  orgcode: string;
  description: string;
  isdefault: boolean;
  createddate: string;
  createdby: string;
  /** A day after createddate: the column a drift check compares between Cassandra and the index. */
  updateddate: string;
}

export function orgRow(seed: number, i: number): OrgRow {
  const id = seededId(seed, 'org', i);
  const rand = prng(seed ^ (i * 7919));
  const root = i < 10 || rand() < 0.1;
  const slug = `org${i}`;
  return {
    id,
    orgname: `Organisation ${i}`,
    channel: root ? slug : `org${i % 10}`,
    status: 1,
    isrootorg: root,
    rootorgid: root ? id : seededId(seed, 'org', i % 10),
    slug,
    orgcode: `ORG${String(i).padStart(6, '0')}`,
    description: `Seeded organisation ${i}`,
    isdefault: i === 0,
    createddate: sunbirdDate(1_600_000_000_000 + i * 60_000),
    createdby: seededId(seed, 'user', 0),
    updateddate: sunbirdDate(1_600_000_000_000 + i * 60_000 + DAY_MS),
  };
}

export interface UserRow {
  id: string;
  userid: string;
  username: string;
  email: string;
  maskedemail: string;
  emailverified: boolean;
  phone: string;
  maskedphone: string;
  phoneverified: boolean;
  status: number;
  isdeleted: boolean;
  rootorgid: string;
  channel: string;
  firstname: string;
  lastname: string;
  roles: string[];
  usertype: string;
  createddate: string;
  lastlogintime: number;
  /** A day after createddate: the column a drift check compares between Cassandra and the index. */
  updateddate: string;
}

export function userRow(seed: number, i: number, orgs: number): UserRow {
  const id = seededId(seed, 'user', i);
  const rand = prng((seed ^ Math.imul(i + 1, 40503)) >>> 0);
  const first = pick(rand, FIRST);
  const last = pick(rand, LAST);
  const rootIndex = orgs > 0 ? Math.min(9, orgs - 1) : 0;
  const org = orgs > 0 ? Math.floor(rand() * (rootIndex + 1)) : 0;
  const deleted = rand() < 0.02;
  return {
    id,
    userid: id,
    username: `${first.toLowerCase()}_${i.toString(36)}`,
    email: `${first.toLowerCase()}.${i}@example.org`,
    maskedemail: `${first.toLowerCase().slice(0, 2)}*****@example.org`,
    emailverified: rand() < 0.8,
    phone: `9${String(i).padStart(9, '0')}`,
    maskedphone: `******${String(i).padStart(4, '0').slice(-4)}`,
    phoneverified: rand() < 0.5,
    status: deleted ? 0 : 1,
    isdeleted: deleted,
    rootorgid: seededId(seed, 'org', org),
    channel: `org${org}`,
    firstname: first,
    lastname: last,
    roles: rand() < 0.9 ? ['PUBLIC'] : ['PUBLIC', pick(rand, ROLES)],
    usertype: rand() < 0.7 ? 'student' : 'teacher',
    createddate: sunbirdDate(1_600_000_000_000 + i * 1000),
    lastlogintime: 1_700_000_000_000 + Math.floor(rand() * 1e9),
    updateddate: sunbirdDate(1_600_000_000_000 + i * 1000 + DAY_MS),
  };
}

export interface CoursePlan {
  courseId: string;
  batchIds: string[];
  contentIds: string[];
}

export function coursePlan(seed: number, c: number, contentsPerCourse: number): CoursePlan {
  const courseId = `do_${seededId(seed, 'course', c).replace(/-/g, '').slice(0, 20)}`;
  return {
    courseId,
    batchIds: [0, 1].map((b) => seededId(seed, `batch-${c}`, b).replace(/-/g, '').slice(0, 24)),
    contentIds: Array.from({ length: contentsPerCourse }, (_, k) => `do_${c}_${k}_${seed}`),
  };
}

export { sunbirdDate };
