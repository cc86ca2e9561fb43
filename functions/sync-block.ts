/**
 * Sync worker (SQS trigger: the sync queue): each record is one block of ids for one Sync API call, paced
 * by the run's sleep time. A block that fails with a retryable error (429, 5xx, network) comes back
 * through the partial batch response and, after the queue's maxReceiveCount, stays in the dead-letter
 * queue. Every outcome is recorded in the run ledger; an accepted block of a run that names a next stage
 * goes on to that stage's queue.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { createEmfMetrics, EmfMetrics } from '#shared/clients/emf.ts';
import { createLogger } from '#shared/logger.ts';
import { runtimeConfig } from '#shared/secrets.ts';
import { createSyncBlockHandler } from '#shared/sync/handler.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

// Secrets (e.g. SYNC_API_KEY_SSM) are read from SSM once per cold start.
const cfg = await runtimeConfig();
const logger = createLogger({ serviceName: 'sync-block', level: cfg['log.level'] });
const metrics = createEmfMetrics('sync-block');
const runtime = new SyncRuntime(cfg);
// Every invocation calls the Sync API: its client loads in the start-up (SQS's only for a later stage).
await runtime.loadSyncApi();

export const handler = middy(
  createSyncBlockHandler({
    syncApi: () => runtime.syncApi,
    ledger: () => runtime.ledger,
    stage: (name) => runtime.queue(name),
    workers: cfg['sync.workers'],
    logger,
    metrics: new EmfMetrics(metrics),
    reserveMs: cfg['lambda.reserveMs'],
  }),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));

/** Releases this container's connections (local bridges and tests; Lambda simply freezes). */
export const close = (): Promise<void> => runtime.close();
