/**
 * Sync worker (SQS trigger): each record is one block of ids for one Sync API call. Calls are paced by
 * the run's sleep time; a block that fails with a retryable error (429, 5xx, network) comes back through
 * the partial batch response and, after the queue's maxReceiveCount, lands in the dead-letter queue.
 * Every outcome is recorded in the run ledger.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createLogger } from '#shared/logger.ts';
import { runtimeConfig } from '#shared/secrets.ts';
import { blockOfRecord } from '#shared/sync/messages.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';
import { processBlock } from '#shared/sync/worker.ts';

const logger = createLogger({ serviceName: 'sync-block' });
const processor = new BatchProcessor(EventType.SQS);
let runtime: SyncRuntime | undefined;
/** The original job slept `sleep` ms after each call; the same spacing holds within one container. */
let nextCallAt = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function record(rec: SQSRecord): Promise<void> {
  runtime ??= new SyncRuntime(await runtimeConfig());
  const block = blockOfRecord(rec, logger);
  const paced = !block.run.dryRun && block.run.sleepMs > 0;
  if (paced && nextCallAt > Date.now()) await sleep(nextCallAt - Date.now());
  const deleteQueue = block.run.job === 'delete-keycloak-users' ? runtime.queue('delete') : undefined;
  const { outcome, retryable } = await processBlock(block, {
    syncApi: runtime.syncApi,
    ledger: runtime.ledger,
    ...(deleteQueue ? { deleteQueue } : {}),
  });
  if (paced) nextCallAt = Date.now() + block.run.sleepMs;
  logger.info('block done', {
    runId: block.run.runId,
    rangeNo: block.rangeNo,
    seq: block.seq,
    status: outcome.status,
    failed: outcome.failedIds.length,
  });
  if (retryable) throw new Error(`block ${block.rangeNo}/${block.seq} failed: ${outcome.reason}`);
}

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return processPartialResponse(event, record, processor, {
    context,
    throwOnFullBatchFailure: false,
    processInParallel: false,
  });
}

/** Releases this container's connections (local bridges and tests; Lambda simply freezes). */
export async function close(): Promise<void> {
  await runtime?.close();
  runtime = undefined;
}
