/** The fan-out function's input: an EventBridge schedule's `input`, or a console test event. */
import { z } from 'zod';
import { JOBS, MessageError } from '#shared/sync/messages.ts';

export const startPayloadSchema = z.strictObject({
  job: z.enum(JOBS).default('sync'),
  objectType: z.enum(['user', 'organisation'], { error: 'objectType must be "user" or "organisation"' }),
  /** Table to scan; defaults to the object type's table. */
  table: z.enum(['user', 'organisation']).optional(),
  /** Specific ids instead of a full scan. */
  ids: z.array(z.string().trim().min(1)).min(1).max(100_000).optional(),
  dryRun: z.boolean().optional(),
  verify: z.boolean().optional(),
  blockSize: z.number().int().optional(),
  sleepMs: z.number().int().optional(),
  runId: z
    .string()
    .regex(/^[\w.-]{1,100}$/)
    .optional(),
  /** delete-keycloak-users: only users of this Keycloak realm (default: KEYCLOAK_REALM). */
  realm: z.string().trim().optional(),
  /** delete-keycloak-users: most users selected (default: KEYCLOAK_DELETE_LIMIT). */
  limit: z.number().int().min(1).optional(),
});
export type StartPayload = z.infer<typeof startPayloadSchema>;

/** Validates a start payload; the error says in one line which key is wrong and why. */
export function parseStartPayload(event: unknown): StartPayload {
  const parsed = startPayloadSchema.safeParse(event);
  if (parsed.success) return parsed.data;
  const why = parsed.error.issues
    .map((i) =>
      i.code === 'unrecognized_keys'
        ? `unknown key(s) ${i.keys.join(', ')}`
        : `${i.path.join('.') || 'payload'}: ${i.message}`,
    )
    .join('; ');
  throw new MessageError(`invalid fan-out payload: ${why}`);
}
