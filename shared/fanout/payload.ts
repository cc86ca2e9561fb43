/**
 * The fan-out function's start payload: an EventBridge schedule's `input`, or a console test event. It
 * starts a sync run (`job` absent or `"sync"`) or a Keycloak deletion run (`"delete-keycloak-users"`);
 * each job's payload accepts only its own keys, and an unknown key is refused by name.
 */
import { z } from 'zod';
import { BadInputError } from '#shared/core/errors.ts';

const common = {
  objectType: z.enum(['user', 'organisation'], { error: 'objectType must be "user" or "organisation"' }),
  /** Table to scan; defaults to the object type's table. */
  table: z.enum(['user', 'organisation']).optional(),
  /** Specific ids instead of a full scan. */
  ids: z.array(z.string().trim().min(1)).min(1).max(100_000).optional(),
  dryRun: z.boolean().optional(),
  verify: z.boolean().optional(),
  blockSize: z.number().int().optional(),
  sleepMs: z.number().int().optional(),
  /** `auto`: the workers find the Sync API's capacity (the sleep time is not applied). */
  pace: z.enum(['fixed', 'auto']).optional(),
  /** With auto pacing, the most Sync API calls per second of the whole run. */
  maxRate: z.number().nonnegative().optional(),
  runId: z
    .string()
    .regex(/^[\w.-]{1,100}$/)
    .optional(),
  /**
   * Makes the start idempotent: a start with a key already used returns that run instead of starting
   * another. Schedules pass their event id; without a key, the invocation's request id is used (an
   * asynchronous invocation keeps its request id across Lambda's retries).
   */
  idempotencyKey: z.string().trim().min(1).max(200).optional(),
};

export const syncStartSchema = z.strictObject({
  job: z.literal('sync'),
  ...common,
  /** Drift repair: sync only the ids the search index lacks (each scanned page is checked first). */
  onlyMissing: z.boolean().optional(),
  /** With onlyMissing: also the ids whose row is newer than their document. */
  stale: z.boolean().optional(),
});
export type SyncStart = z.infer<typeof syncStartSchema>;

export const keycloakStartSchema = z.strictObject({
  job: z.literal('delete-keycloak-users'),
  ...common,
  /** Only users of this Keycloak realm (default: KEYCLOAK_REALM). */
  realm: z.string().trim().optional(),
  /** Most users selected (default: KEYCLOAK_DELETE_LIMIT). */
  limit: z.number().int().min(1).optional(),
});
export type KeycloakStart = z.infer<typeof keycloakStartSchema>;

export const startPayloadSchema = z.preprocess(
  (v) => (v && typeof v === 'object' && !Array.isArray(v) && !('job' in v) ? { ...v, job: 'sync' } : v),
  z.discriminatedUnion('job', [syncStartSchema, keycloakStartSchema], {
    error: 'job must be "sync" or "delete-keycloak-users"',
  }),
);
export type StartPayload = z.infer<typeof startPayloadSchema>;

/** Why a payload is refused, in one line naming each wrong key. */
export function payloadIssues(error: z.ZodError): string {
  return error.issues
    .map((i) =>
      i.code === 'unrecognized_keys'
        ? `unknown key(s) ${i.keys.join(', ')}`
        : `${i.path.join('.') || 'payload'}: ${i.message}`,
    )
    .join('; ');
}

/** Validates a start payload; the error says in one line which key is wrong and why. */
export function parseStartPayload(event: unknown): StartPayload {
  const parsed = startPayloadSchema.safeParse(event);
  if (parsed.success) return parsed.data;
  throw new BadInputError(`invalid fan-out payload: ${payloadIssues(parsed.error)}`);
}
