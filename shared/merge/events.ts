/**
 * The job's event contract: validation of the input `BE_JOB_REQUEST` and the two outputs
 * (batch-enrolment-sync requests and failed events), exactly as jobs.md §3 gives them.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { MergeRequest, Row } from '#shared/merge/types.ts';

export const JOB_NAME = 'MergeUserCourses';

const accountId = z
  .string({ error: (issue) => (issue.input === undefined ? 'is missing' : 'must be a string') })
  .trim()
  .min(1, { error: 'must not be empty' });

const mergeEventSchema = z.looseObject({
  edata: z.looseObject(
    {
      fromAccountId: accountId,
      toAccountId: accountId,
    },
    { error: (issue) => (issue.input === undefined ? 'is missing' : 'must be an object') },
  ),
});

export type MergeEvent = z.output<typeof mergeEventSchema> & Record<string, unknown>;

export type ValidationResult =
  | { ok: true; event: MergeEvent; request: MergeRequest }
  | { ok: false; reason: string; original: unknown };

/**
 * Accepts the raw Kafka value. Every rejection is a reason, never a throw: non-JSON, a non-object,
 * missing or empty `edata`, empty account ids (the original's "skipped" cases), and from == to.
 */
export function validateMergeEvent(raw: string | Buffer): ValidationResult {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'message is not valid JSON', original: text };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    return { ok: false, reason: 'message is not a JSON object', original: parsed };
  const edata = (parsed as Record<string, unknown>).edata;
  if (edata && typeof edata === 'object' && !Array.isArray(edata) && Object.keys(edata).length === 0)
    return { ok: false, reason: 'edata is empty', original: parsed };
  const result = mergeEventSchema.safeParse(parsed);
  if (!result.success) {
    const reason = result.error.issues
      .map((i) => (i.path.length ? `${i.path.join('.')} ${i.message}` : i.message))
      .join('; ');
    return { ok: false, reason, original: parsed };
  }
  const { fromAccountId, toAccountId } = result.data.edata;
  if (fromAccountId === toAccountId)
    return { ok: false, reason: 'fromAccountId and toAccountId are the same account', original: parsed };
  return { ok: true, event: result.data as MergeEvent, request: { fromAccountId, toAccountId } };
}

/**
 * Failed-event shape: the original event's fields with `jobName` and `failInfo` added (Sunbird's failed
 * topic convention). A message that is not a JSON object travels whole under `event`.
 */
export function failedEvent(original: unknown, reason: string): Record<string, unknown> {
  const failure = { jobName: JOB_NAME, failInfo: { errorCode: 'DATA_ERROR', error: reason } };
  if (original && typeof original === 'object' && !Array.isArray(original))
    return { ...(original as Record<string, unknown>), ...failure };
  return { event: original, ...failure };
}

export interface EventClock {
  now(): number;
  uuid(): string;
}

export const systemClock: EventClock = { now: () => Date.now(), uuid: () => randomUUID() };

/** One batch-enrolment-sync request per enrolment of the to-account, for the course-batch updater. */
export function batchEnrolmentSyncEvent(
  enrolment: Row,
  toId: string,
  clock: EventClock = systemClock,
): Record<string, unknown> {
  const ets = clock.now();
  const batchId = String(enrolment.batchid);
  return {
    actor: { id: 'Course Batch Updater', type: 'System' },
    eid: 'BE_JOB_REQUEST',
    edata: {
      action: 'batch-enrolment-sync',
      iteration: 1,
      batchId,
      userId: toId,
      courseId: String(enrolment.courseid),
      reset: ['completionPercentage', 'status', 'progress'],
    },
    ets,
    context: { pdata: { ver: '1.0', id: 'org.sunbird.platform' } },
    mid: `LP.${ets}.${clock.uuid()}`,
    object: { id: `${batchId}_${toId}`, type: 'CourseBatchEnrolment' },
  };
}

/** A merge request as the platform sends it (the CLI's `--from/--to`). */
export function mergeRequestEvent(from: string, to: string, now = Date.now()): string {
  return JSON.stringify({
    eid: 'BE_JOB_REQUEST',
    ets: now,
    mid: `LP.${now}.cli`,
    actor: { id: 'Merge User Courses and Cert', type: 'System' },
    context: { pdata: { ver: '1.0', id: 'org.sunbird.platform' } },
    object: { type: 'MergeUserCoursesAndCert', id: `${from}_${to}` },
    edata: { action: 'merge-user-courses-and-cert', fromAccountId: from, toAccountId: to, iteration: 1 },
  });
}
