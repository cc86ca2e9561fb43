/**
 * The messages that chain the functions together, validated at every boundary.
 *
 * - ScanTask (scan queue → fanout): one token sub-range of a table to enumerate, with a checkpoint
 *   (page state, next block number, ids carried into the next block) so a later invocation resumes
 *   exactly where an earlier one stopped.
 * - Block (sync queue → sync-block, and on to whatever stage the run names in `run.next`): one Sync API
 *   call's ids. `context` carries the starting job's own data (strings only) to later stages untouched.
 */
import { z } from 'zod';
import { MessageError } from '#shared/queue/queue.ts';
import { OBJECT_TYPES, TABLES } from '#shared/sync/objects.ts';

export { MessageError };

const name = z.string().regex(/^[a-z][\w-]*$/i, { error: 'expected a name (letters, digits, _ and -)' });

export const runSettingsSchema = z.object({
  runId: z.string().min(1),
  /** Which job started the run (a label for reports; the sync chain does not act on it). */
  job: name,
  objectType: z.enum(OBJECT_TYPES),
  dryRun: z.boolean(),
  verify: z.boolean().default(false),
  blockSize: z.number().int().positive(),
  sleepMs: z.number().int().nonnegative(),
  /** `auto`: the workers find the Sync API's capacity themselves and do not sleep; absent: fixed. */
  pace: z.enum(['fixed', 'auto']).optional(),
  /** With auto pacing, the most Sync API calls per second of the whole run (absent or 0: no cap). */
  maxRate: z.number().nonnegative().optional(),
  /** The stage an accepted block goes on to (set by whoever started the run); absent: it ends here. */
  next: name.optional(),
  /** The filter a scanned page passes through before its ids are cut into blocks; absent: every id. */
  filter: name.optional(),
});
export type RunSettings = z.infer<typeof runSettingsSchema>;

/** The optional run settings a ledger keeps with a run's parameters (each present only when set). */
export function runExtras(run: RunSettings): Record<string, unknown> {
  return {
    ...(run.next ? { next: run.next } : {}),
    ...(run.filter ? { filter: run.filter } : {}),
    ...(run.pace ? { pace: run.pace } : {}),
    ...(run.maxRate ? { maxRate: run.maxRate } : {}),
  };
}

/** The optional run settings read back from a run's recorded parameters. */
export function runExtrasFrom(params: Record<string, unknown>): Partial<RunSettings> {
  return {
    ...(typeof params.next === 'string' ? { next: params.next } : {}),
    ...(typeof params.filter === 'string' ? { filter: params.filter } : {}),
    ...(params.pace === 'auto' || params.pace === 'fixed' ? { pace: params.pace } : {}),
    ...(typeof params.maxRate === 'number' ? { maxRate: params.maxRate } : {}),
  };
}

export const checkpointSchema = z.object({
  pageState: z.string().nullable(),
  nextSeq: z.number().int().nonnegative(),
  carry: z.array(z.string()),
  idsSoFar: z.number().int().nonnegative(),
  hops: z.number().int().nonnegative(),
});
export type Checkpoint = z.infer<typeof checkpointSchema>;

export const scanTaskSchema = z.object({
  type: z.literal('scan'),
  run: runSettingsSchema,
  keyspace: z.string().regex(/^\w+$/),
  table: z.enum(TABLES),
  rangeNo: z.number().int().nonnegative(),
  /** Murmur3 tokens as decimal strings; the range is (start, end]. */
  start: z.string().regex(/^-?\d+$/),
  end: z.string().regex(/^-?\d+$/),
  checkpoint: checkpointSchema.optional(),
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
  /** Data of the job that started the run, for its later stages. */
  context: z.record(z.string(), z.string()).optional(),
});
export type Block = z.infer<typeof blockSchema>;

export function blockKey(b: Pick<Block, 'rangeNo' | 'seq'>): string {
  return `${b.rangeNo}/${b.seq}`;
}

/** The one-line reason a value does not fit a schema. */
export function schemaIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unknown';
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
  if (!parsed.success) throw new MessageError(`invalid message: ${schemaIssue(parsed.error)}`);
  return parsed.data;
}
