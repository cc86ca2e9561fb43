/**
 * Keycloak deletion worker (SQS trigger on the delete queue): each record is one block the Sync API has
 * accepted. The block is re-checked and deleted in the configured mode (KEYCLOAK_DELETE_MODE), and every
 * id's outcome is recorded in the run ledger.
 *
 * Partial batch response: a malformed record or a block with retryable failures is reported alone and
 * comes back (then goes to the dead-letter queue); a 403 or a refused admin login stops the invocation:
 * that record and every remaining one are reported as failures, so nothing is silently dropped.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DeleteStageStopped, processDeleteBlock } from '#shared/keycloak/delete-stage.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import { createLogger } from '#shared/logger.ts';
import { runtimeConfig } from '#shared/secrets.ts';
import { blockOfRecord } from '#shared/sync/messages.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

const logger = createLogger({ serviceName: 'delete-keycloak-users' });
const processor = new BatchProcessor(EventType.SQS);
let sync: SyncRuntime | undefined;
let keycloak: KeycloakRuntime | undefined;
/** Set by a 403 (or refused login) within the current invocation. */
let stoppedBy: string | undefined;

async function record(rec: SQSRecord): Promise<void> {
  if (stoppedBy) throw new Error(`not attempted: the run stopped earlier in this batch: ${stoppedBy}`);
  if (!sync || !keycloak) {
    const cfg = await runtimeConfig();
    sync = new SyncRuntime(cfg);
    const s = sync;
    keycloak = new KeycloakRuntime(cfg, () => s.cassandra, logger);
  }
  const block = blockOfRecord(rec, logger);
  try {
    const { rows, retryable, warnings } = await processDeleteBlock(block, keycloak.stageDeps(sync.ledger));
    const failed = rows.filter((r) => r.outcome === 'failed');
    logger.info('delete block done', {
      runId: block.run.runId,
      rangeNo: block.rangeNo,
      seq: block.seq,
      dryRun: block.run.dryRun,
      deleted: rows.filter((r) => r.outcome === 'deleted').length,
      failed: failed.length,
    });
    for (const w of warnings) logger.warn(w);
    if (retryable) {
      throw new Error(
        `block ${block.rangeNo}/${block.seq}: ${failed.length} id(s) failed: ${failed[0]?.error}`,
      );
    }
  } catch (err) {
    if (err instanceof DeleteStageStopped) {
      stoppedBy = err.message;
      logger.error('Keycloak deletion stopped', { runId: block.run.runId, error: err.message });
    }
    throw err;
  }
}

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  stoppedBy = undefined;
  return processPartialResponse(event, record, processor, {
    context,
    throwOnFullBatchFailure: false,
    processInParallel: false,
  });
}

/** Closes the container's connections (tests, and local runs that import the handler). */
export async function close(): Promise<void> {
  await Promise.all([keycloak?.close(), sync?.close()]);
  keycloak = undefined;
  sync = undefined;
}
