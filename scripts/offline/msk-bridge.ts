/**
 * Kafka → MSK-event bridge for serverless-offline: consumes the merge input topic with the project's
 * bridge (scripts/msk-bridge.ts: records keyed `"<topic>-<partition>"`, base64 values, offsets
 * committed only after success, a throw re-delivers after a back-off) and hands each batch to the
 * offline `merge-user-courses` function through the Lambda Invoke endpoint.
 */

import type { Invoke } from '#shared/clients/lambda.ts';
import type { FlatConfig } from '#shared/config.ts';
import type { Logger } from '#shared/logger.ts';
import { runMskBridge } from '#shared/merge/bridge.ts';
import type { KafkaBatchResponse } from '#shared/merge/msk.ts';

export interface OfflineMskBridgeOptions {
  cfg: FlatConfig;
  logger: Logger;
  invoke: Invoke;
  signal: AbortSignal;
  batchSize?: number;
}

export function runOfflineMskBridge(
  opts: OfflineMskBridgeOptions,
): Promise<{ batches: number; records: number }> {
  return runMskBridge({
    cfg: opts.cfg,
    logger: opts.logger,
    signal: opts.signal,
    ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
    handler: async (event) =>
      ((await opts.invoke('merge-user-courses', event)) ?? undefined) as KafkaBatchResponse | undefined,
  });
}
