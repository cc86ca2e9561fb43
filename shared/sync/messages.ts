/**
 * The messages that chain the functions together, validated at every boundary.
 *
 * - ScanTask (scan queue → fanout): one token sub-range of a table to enumerate, with a checkpoint
 *   (page state, next block number, ids carried into the next block) so a later invocation resumes
 *   exactly where an earlier one stopped.
 * - Block (sync queue → sync-block, delete queue → delete-keycloak-users): one Sync API call's ids.
 */
import { z } from 'zod';

export const JOBS = ['sync', 'delete-keycloak-users'] as const;
export type Job = (typeof JOBS)[number];

export const runSettingsSchema = z.object({
  runId: z.string().min(1),
  job: z.enum(JOBS),
  objectType: z.enum(['user', 'organisation', 'location']),
  dryRun: z.boolean(),
  verify: z.boolean().default(false),
  blockSize: z.number().int().positive(),
  sleepMs: z.number().int().nonnegative(),
});
export type RunSettings = z.infer<typeof runSettingsSchema>;

export const scanTaskSchema = z.object({
  type: z.literal('scan'),
  run: runSettingsSchema,
  keyspace: z.string().regex(/^\w+$/),
  table: z.enum(['user', 'organisation']),
  rangeNo: z.number().int().nonnegative(),
  /** Murmur3 tokens as decimal strings; the range is (start, end]. */
  start: z.string().regex(/^-?\d+$/),
  end: z.string().regex(/^-?\d+$/),
  checkpoint: z
    .object({
      pageState: z.string().nullable(),
      nextSeq: z.number().int().nonnegative(),
      carry: z.array(z.string()),
      idsSoFar: z.number().int().nonnegative(),
      hops: z.number().int().nonnegative(),
    })
    .optional(),
});
export type ScanTask = z.infer<typeof scanTaskSchema>;

export const blockSchema = z.object({
  type: z.literal('block'),
  run: runSettingsSchema,
  /** Source partition of the run: a token sub-range number, or 0 for id lists. */
  rangeNo: z.number().int().nonnegative(),
  /** Block number within its range; (rangeNo, seq) is the block's stable identity. */
  seq: z.number().int().nonnegative(),
  ids: z.array(z.string().min(1)).min(1),
  /** For the deletion job: the Keycloak realm the ids belong to. */
  realm: z.string().optional(),
});
export type Block = z.infer<typeof blockSchema>;

export const queueMessageSchema = z.discriminatedUnion('type', [scanTaskSchema, blockSchema]);
export type QueueMessage = z.infer<typeof queueMessageSchema>;

export function blockKey(b: Pick<Block, 'rangeNo' | 'seq'>): string {
  return `${b.rangeNo}/${b.seq}`;
}

export class MessageError extends Error {
  override name = 'MessageError';
}

/** Parse and validate a message body; the error says what is wrong in one line. */
export function parseMessage<T extends z.ZodType>(schema: T, body: string): z.output<T> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new MessageError(`message is not JSON: ${body.slice(0, 80)}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MessageError(
      `invalid message: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unknown'}`,
    );
  }
  return parsed.data;
}

/**
 * The block in an SQS record, for the queue-triggered workers. A malformed message is logged and
 * rethrown: redelivery cannot fix it, so it goes on to the dead-letter queue, where it stays
 * inspectable, while the rest of the batch proceeds.
 */
export function blockOfRecord(
  record: { messageId: string; body: string },
  logger: { error(message: string, attributes: Record<string, unknown>): void },
): Block {
  try {
    return parseMessage(blockSchema, record.body);
  } catch (err) {
    logger.error('malformed block message', { messageId: record.messageId, error: (err as Error).message });
    throw err;
  }
}
