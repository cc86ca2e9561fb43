/**
 * Fan-out. Two triggers, one function, told apart by their schemas (shared/fanout/handler.ts):
 * - a start payload (EventBridge schedule input or a console test event) records a run and hands out
 *   token sub-range scan tasks, blocks of the given ids, or — for `"job":"delete-keycloak-users"` — the
 *   blocks of the Keycloak candidates;
 * - the scan queue (SQS) delivers those tasks: each is scanned within this invocation's time budget and,
 *   if the budget runs out, continued by a checkpoint message.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { createEmfMetrics, EmfMetrics } from '#shared/clients/emf.ts';
import { createFanout } from '#shared/fanout/runtime.ts';
import { createLogger } from '#shared/logger.ts';
import { runtimeConfig } from '#shared/secrets.ts';

const cfg = await runtimeConfig();
const logger = createLogger({ serviceName: 'fanout', level: cfg['log.level'] });
const metrics = createEmfMetrics('fanout');
const fanout = createFanout(cfg, logger, new EmfMetrics(metrics));
// Every invocation sends to a queue: its client is loaded now, in the start-up, not by the first one.
await fanout.load();

export const handler = middy(fanout.handler).use(injectLambdaContext(logger)).use(logMetrics(metrics));

/** Releases this container's connections (local bridges and tests; Lambda simply freezes). */
export const close = (): Promise<void> => fanout.close();
