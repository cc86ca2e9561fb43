/**
 * The MSK handler body, shared by the Lambda entry (functions/merge-user-courses.ts) and the local
 * bridge (scripts/msk-bridge.ts), so both behave identically.
 */
import type { MSKEvent } from 'aws-lambda';
import type { Logger } from '#shared/logger.ts';
import { type KafkaBatchResponse, kafkaBatchResponse, processMskEvent } from '#shared/merge/msk.ts';
import { type ProcessDeps, processMergeMessage } from '#shared/merge/process.ts';

export interface MskMergeHandlerOptions {
  deps: ProcessDeps;
  logger: Logger;
  /** Answer with a Kafka partial batch response instead of throwing (see msk.ts). */
  reportBatchItemFailures: boolean;
}

export type MskMergeHandler = (event: MSKEvent) => Promise<KafkaBatchResponse | undefined>;

export function createMskMergeHandler(opts: MskMergeHandlerOptions): MskMergeHandler {
  const { deps, logger } = opts;
  return async (event) => {
    const result = await processMskEvent(event, async (value, record) => {
      const outcome = await processMergeMessage(value, deps);
      const where = { topic: record.topic, partition: record.partition, offset: record.offset };
      if (outcome.status === 'merged') logger.info('merged', { ...where, ...outcome.outcome });
      else logger.warn(`event ${outcome.status}: ${outcome.reason}`, where);
      return outcome;
    });
    if (result.failures.length === 0) return undefined;
    for (const f of result.failures)
      logger.error('infrastructure failure; this record and the rest of its partition come back', {
        partition: f.partitionKey,
        offset: f.offset,
        error: f.error instanceof Error ? f.error : String(f.error),
      });
    if (opts.reportBatchItemFailures) return kafkaBatchResponse(result.failures);
    throw new AggregateError(
      result.failures.map((f) => f.error),
      `${result.failures.length} partition(s) stopped on an infrastructure failure`,
    );
  };
}
