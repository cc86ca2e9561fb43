/** The fan-out function's input: an EventBridge schedule's `input`, or a console test event. */
import { z } from 'zod';
import { JOBS } from '#shared/sync/messages.ts';

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
});
export type StartPayload = z.infer<typeof startPayloadSchema>;
