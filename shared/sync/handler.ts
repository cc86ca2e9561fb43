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
import { FixedPacer, type Pacer } from '#shared/sync/pacing.ts';
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

/** Runs `record` for each SQS record, in order, and reports the ones that threw. */
export function sqsBatchHandler(record: (rec: SQSRecord, context: Context) => Promise<void>): SqsHandler {
  const processor = new BatchProcessor(EventType.SQS);
  return async (event, context) =>
    processPartialResponse(parseSqsEvent(event), (rec: SQSRecord) => record(rec, context), processor, {
      context,
      throwOnFullBatchFailure: false,
      processInParallel: false,
    });
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
  /** Spacing of calls within this container (the run's sleep time). */
  pacer?: Pacer;
}

export function createSyncBlockHandler(deps: SyncBlockHandlerDeps): SqsHandler {
  const pacer = deps.pacer ?? new FixedPacer();
  const metrics = deps.metrics ?? noMetrics;
  return sqsBatchHandler(async (rec) => {
    const block = recordMessage((b) => parseMessage(blockSchema, b), rec, deps.logger);
    await withLogKeys(
      deps.logger,
      { runId: block.run.runId, block: `${block.rangeNo}/${block.seq}` },
      async () => {
        await pacer.before(block.run);
        const { outcome, retryable } = await processBlock(block, {
          syncApi: deps.syncApi(),
          ledger: deps.ledger(),
          stage: deps.stage,
        });
        pacer.after(block.run);
        metrics.count(SYNC_METRIC.idsSynced, outcome.ids.length - outcome.failedIds.length);
        metrics.count(SYNC_METRIC.idsFailed, outcome.failedIds.length);
        if (outcome.status === 'failed') metrics.count(SYNC_METRIC.blocksFailed);
        deps.logger.info('block done', { status: outcome.status, failed: outcome.failedIds.length });
        if (retryable) throw new Error(`block ${block.rangeNo}/${block.seq} failed: ${outcome.reason}`);
      },
    );
  });
}

export const SCAN_METRIC = { tasksDone: 'scan-tasks-done', idsEnumerated: 'ids-enumerated' } as const;

export interface ScanHandlerDeps {
  ids: () => IdSource;
  ledger: () => RunLedger;
  scanQueue: () => MessageQueue;
  syncQueue: () => MessageQueue;
  fetchSize: number;
  /** Leave this much of the invocation for sending the checkpoint and returning. */
  safetyMs: number;
  /** Resolves the filter a run names (`run.filter`), e.g. "only the ids the search index lacks". */
  filters?: (name: string) => IdFilter;
  logger: Logger;
  metrics?: Metrics;
}

export function createScanHandler(deps: ScanHandlerDeps): SqsHandler {
  const metrics = deps.metrics ?? noMetrics;
  return sqsBatchHandler(async (rec, context) => {
    const task = recordMessage((b) => parseMessage(scanTaskSchema, b), rec, deps.logger);
    await withLogKeys(deps.logger, { runId: task.run.runId, range: task.rangeNo }, async () => {
      const deadline = Date.now() + context.getRemainingTimeInMillis() - deps.safetyMs;
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
  });
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
  return (payload: RunOverrides & { ids?: string[] | undefined }): Promise<StartedRun> =>
    startRun(
      syncRequest(deps.cfg, {
        source: payload.ids ? 'lambda: ids' : 'lambda: full scan',
        ids: payload.ids,
        over: payload,
      }),
      { ids: deps.ids(), ledger: deps.ledger(), scanQueue: deps.scanQueue(), blockQueue: deps.syncQueue() },
    );
}
