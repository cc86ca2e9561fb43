/**
 * merge-user-courses on an MSK trigger. Records of one partition are merged in offset order; a bad
 * record goes to the failed topic and its partition continues; an infrastructure failure makes that
 * record and the rest of its partition come back (shared/merge/msk.ts explains how). Every merge is
 * exactly once in effect (shared/merge/merge.ts), so retries are safe.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { createEmfMetrics, EmfMetrics } from '#shared/clients/emf.ts';
import { createLogger } from '#shared/logger.ts';
import { createMskMergeHandler } from '#shared/merge/handler.ts';
import { createMergeRuntime } from '#shared/merge/runtime.ts';
import { runtimeConfig } from '#shared/secrets.ts';

// Secrets (e.g. CASSANDRA_PASSWORD_SSM) are read from SSM once per cold start.
const cfg = await runtimeConfig();
const logger = createLogger({ serviceName: 'merge-user-courses', level: cfg['log.level'] });
const metrics = createEmfMetrics('merge-user-courses');
/** Created once per container; exported so tests can close the clients. */
export const runtime = createMergeRuntime(cfg, new EmfMetrics(metrics));

export const mergeUserCourses = createMskMergeHandler({
  deps: runtime.deps,
  logger,
  reportBatchItemFailures: cfg['merge.reportBatchItemFailures'],
});

export const handler = middy(mergeUserCourses).use(injectLambdaContext(logger)).use(logMetrics(metrics));
