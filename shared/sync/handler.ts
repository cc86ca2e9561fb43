/**
 * The sync job's trigger handlers, shared by the Lambda entries (`functions/`) and the local bridges:
 * - the sync queue → one Sync API call per block (`createSyncBlockHandler`);
 * - the scan queue → one token sub-range scanned within the invocation's time budget (`createScanHandler`).
 *
 * Both take an SQS event, validated by its schema, and answer with a partial batch response: a record
 * that throws comes back (after the queue's maxReceiveCount it stays in the dead-letter queue), the others
 * are done. Every log line of a record carries its run and block (or range).
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { SqsSchema } from '@aws-lambda-powertools/parser/schemas/sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { FlatConfig } from '#shared/config.ts';
import { BadInputError } from '#shared/core/errors.ts';
import { type Metrics, noMetrics } from '#shared/core/metrics.ts';
import { type Logger, withLogKeys } from '#shared/logger.ts';
import { blockSchema, parseMessage, scanTaskSchema, schemaIssue } from '#shared/sync/messages.ts';
import { type Pacer, RunPacer } from '#shared/sync/pacing.ts';
import type { IdFilter, IdSource, MessageQueue, RunLedger, SyncApi } from '#shared/sync/ports.ts';
import { type RunOverrides, syncRequest } from '#shared/sync/request.ts';
import { type StartedRun, startRun } from '#shared/sync/run.ts';
import { scanRange } from '#shared/sync/scan.ts';
import { processBlock } from '#shared/sync/worker.ts';

export type SqsHandler = (event: unknown, context: Context) => Promise<SQSBatchResponse>;

/** The SQS event, checked against its schema; anything else is a one-line bad-input error. */
export function parseSqsEvent(event: unknown): SQSEvent {
  const parsed = SqsSchema.safeParse(event);
  if (!parsed.success) throw new BadInputError(`not an SQS event: ${schemaIssue(parsed.error)}`);
  return parsed.data as SQSEvent;
}

export interface BatchBudget {
  /**
   * A record is not started when the invocation has less than this left (ms): it comes back as a batch
   * item failure, untouched, instead of being cut off half-way by the function's timeout.
   */
  reserveMs: number;
  logger: Logger;
}

/** Time left in an invocation (a context without a clock — a hand-made one — has all the time it needs). */
export function remainingMs(context: Context): number {
  return typeof context?.getRemainingTimeInMillis === 'function'
    ? context.getRemainingTimeInMillis()
    : Number.POSITIVE_INFINITY;
}

/**
 * Runs `record` for each SQS record, in order, and reports the ones that threw; with a budget, the records
 * left when the invocation runs short of time are reported without being started.
 */
export function sqsBatchHandler(
  record: (rec: SQSRecord, context: Context) => Promise<void>,
  budget?: BatchBudget,
): SqsHandler {
  const processor = new BatchProcessor(EventType.SQS);
  return async (event, context) => {
    let givenBack = 0;
    const res = await processPartialResponse(
      parseSqsEvent(event),
      async (rec: SQSRecord) => {
        if (budget && remainingMs(context) < budget.reserveMs) {
          givenBack++;
          throw new Error(
            'not started: the invocation is about to time out; the message returns to the queue',
          );
        }
        await record(rec, context);
      },
      processor,
      { context, throwOnFullBatchFailure: false, processInParallel: false },
    );
    if (budget && givenBack > 0)
      budget.logger.warn('invocation near its timeout: records given back unstarted', {
        givenBack,
        reserveMs: budget.reserveMs,
      });
    return res;
  };
}

/** Parses a record's message; a malformed one is logged and rethrown (it goes on to the DLQ). */
export function recordMessage<T>(parse: (body: string) => T, rec: SQSRecord, logger: Logger): T {
  try {
    return parse(rec.body);
  } catch (err) {
    logger.error('malformed message', { messageId: rec.messageId, error: (err as Error).message });
    throw err;
  }
}

export const SYNC_METRIC = {
  idsSynced: 'ids-synced',
  idsFailed: 'ids-failed',
  blocksFailed: 'blocks-failed',
} as const;

export interface SyncBlockHandlerDeps {
  syncApi: () => SyncApi;
  ledger: () => RunLedger;
  /** The queue of a later stage named by a run. */
  stage: (name: string) => MessageQueue;
  logger: Logger;
  metrics?: Metrics;
  /**
   * Pacing of this container's calls, which it makes one at a time: the run's sleep time, or auto
   * pacing (each container adapts on its own; see `workers`). Default: a `RunPacer` for both.
   */
  pacer?: Pacer;
  /**
   * Containers that call at once (the sync queue's maximum concurrency): with auto pacing each one keeps
   * to an equal share of the run's `maxRate`. Default 1.
   */
  workers?: number;
  /**
   * No block is started with less than this left of the invocation (ms); the rest come back unstarted.
   * A wait for the auto pacer that reaches it gives its block back too.
   */
  reserveMs?: number;
}

/** The batch budget of a handler given `reserveMs` (none without). */
export function budgetOf(reserveMs: number | undefined, logger: Logger): BatchBudget | undefined {
  return reserveMs === undefined ? undefined : { reserveMs, logger };
}

/** Aborts when the invocation has only `reserveMs` left (never without a reserve). */
function paceBudget(context: Context, reserveMs: number | undefined): AbortSignal | undefined {
  if (reserveMs === undefined) return undefined;
  const left = remainingMs(context) - reserveMs;
  return left > 0 ? AbortSignal.timeout(left) : AbortSignal.abort();
}

export function createSyncBlockHandler(deps: SyncBlockHandlerDeps): SqsHandler {
  const pacer = deps.pacer ?? new RunPacer({ maxConcurrency: 1, rateShare: 1 / (deps.workers ?? 1) });
  const metrics = deps.metrics ?? noMetrics;
  return sqsBatchHandler(
    async (rec, context) => {
      const block = recordMessage((b) => parseMessage(blockSchema, b), rec, deps.logger);
      await withLogKeys(
        deps.logger,
        { runId: block.run.runId, block: `${block.rangeNo}/${block.seq}` },
        async () => {
          // Auto pacing may wait out a long Retry-After; a fixed sleep is within the reserve already.
          const budget = block.run.pace === 'auto' ? paceBudget(context, deps.reserveMs) : undefined;
          if (!(await pacer.before(block.run, budget))) {
            throw new Error(
              `block ${block.rangeNo}/${block.seq}: no time left in this invocation to wait for the pacer`,
            );
          }
          let result: Awaited<ReturnType<typeof processBlock>>;
          try {
            result = await processBlock(block, {
              syncApi: deps.syncApi(),
              ledger: deps.ledger(),
              stage: deps.stage,
              onAttempt: (attempt) => pacer.observe(block.run, attempt),
              beforeRetry: () => pacer.before(block.run, budget, { retry: true }),
            });
          } finally {
            pacer.after(block.run);
          }
          const { outcome, retryable } = result;
          metrics.count(SYNC_METRIC.idsSynced, outcome.ids.length - outcome.failedIds.length);
          metrics.count(SYNC_METRIC.idsFailed, outcome.failedIds.length);
          if (outcome.status === 'failed') metrics.count(SYNC_METRIC.blocksFailed);
          deps.logger.info('block done', { status: outcome.status, failed: outcome.failedIds.length });
          if (retryable) throw new Error(`block ${block.rangeNo}/${block.seq} failed: ${outcome.reason}`);
        },
      );
    },
    budgetOf(deps.reserveMs, deps.logger),
  );
}

export const SCAN_METRIC = { tasksDone: 'scan-tasks-done', idsEnumerated: 'ids-enumerated' } as const;

export interface ScanHandlerDeps {
  ids: () => IdSource;
  ledger: () => RunLedger;
  scanQueue: () => MessageQueue;
  syncQueue: () => MessageQueue;
  fetchSize: number;
  /**
   * Leave this much of the invocation for sending the checkpoint and returning; a task is not started
   * with less than this left.
   */
  reserveMs: number;
  /** Resolves the filter a run names (`run.filter`), e.g. "only the ids the search index lacks". */
  filters?: (name: string) => IdFilter;
  logger: Logger;
  metrics?: Metrics;
}

export function createScanHandler(deps: ScanHandlerDeps): SqsHandler {
  const metrics = deps.metrics ?? noMetrics;
  return sqsBatchHandler(
    async (rec, context) => {
      const task = recordMessage((b) => parseMessage(scanTaskSchema, b), rec, deps.logger);
      await withLogKeys(deps.logger, { runId: task.run.runId, range: task.rangeNo }, async () => {
        const deadline = Date.now() + remainingMs(context) - deps.reserveMs;
        const result = await scanRange(task, {
          ids: deps.ids(),
          queue: deps.syncQueue(),
          ledger: deps.ledger(),
          shouldStop: () => Date.now() >= deadline,
          fetchSize: deps.fetchSize,
          ...(deps.filters ? { filters: deps.filters } : {}),
        });
        metrics.count(SCAN_METRIC.idsEnumerated, result.ids - (task.checkpoint?.idsSoFar ?? 0));
        if (!result.done) {
          await deps.scanQueue().send([JSON.stringify(result.continuation)]);
          deps.logger.info('scan checkpointed', { ids: result.ids });
        } else {
          metrics.count(SCAN_METRIC.tasksDone);
          deps.logger.info('range scanned', { ids: result.ids, blocks: result.blocks });
        }
      });
    },
    budgetOf(deps.reserveMs, deps.logger),
  );
}

export interface SyncStartDeps {
  cfg: FlatConfig;
  ids: () => IdSource;
  ledger: () => RunLedger;
  scanQueue: () => MessageQueue;
  syncQueue: () => MessageQueue;
}

/** Starts a sync run from a start payload: a full scan of the table, or the given ids. */
export function syncStarter(deps: SyncStartDeps) {
  return (
    payload: RunOverrides & { ids?: string[] | undefined; idempotencyKey?: string | undefined },
    context?: Pick<Context, 'awsRequestId'>,
  ): Promise<StartedRun> =>
    startRun(
      {
        ...syncRequest(deps.cfg, {
          source: payload.ids ? 'lambda: ids' : 'lambda: full scan',
          ids: payload.ids,
          over: payload,
        }),
        ...startKey(payload, context),
      },
      { ids: deps.ids(), ledger: deps.ledger(), scanQueue: deps.scanQueue(), blockQueue: deps.syncQueue() },
    );
}

/**
 * The idempotency key of a start: the payload's own key (a schedule's event id), else its run id, else the
 * invocation's request id (which Lambda keeps when it retries an asynchronous invocation).
 */
export function startKey(
  payload: { idempotencyKey?: string | undefined; runId?: string | undefined },
  context?: Pick<Context, 'awsRequestId'>,
): { idempotencyKey?: string } {
  if (payload.idempotencyKey) return { idempotencyKey: `key:${payload.idempotencyKey}` };
  if (payload.runId) return { idempotencyKey: `run:${payload.runId}` };
  if (context?.awsRequestId) return { idempotencyKey: `request:${context.awsRequestId}` };
  return {};
}
