/**
 * Keycloak deletion worker (SQS trigger: the delete queue): each record is one block the Sync API has
 * accepted. The block is re-checked and deleted in the configured mode (KEYCLOAK_DELETE_MODE), and every
 * id's outcome is recorded in the run ledger. After a 403 or a refused admin login, that record and every
 * remaining one of the batch come back as failures (shared/keycloak/handler.ts).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { createEmfMetrics, EmfMetrics } from '#shared/clients/emf.ts';
import { createDeleteHandler } from '#shared/keycloak/handler.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import { createLogger } from '#shared/logger.ts';
import { runtimeConfig } from '#shared/secrets.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

const cfg = await runtimeConfig();
const logger = createLogger({ serviceName: 'delete-keycloak-users', level: cfg['log.level'] });
const metrics = createEmfMetrics('delete-keycloak-users');
const sync = new SyncRuntime(cfg);
const keycloak = new KeycloakRuntime(cfg, () => sync.cassandra, logger);

export const handler = middy(
  createDeleteHandler({
    stageDeps: () => keycloak.stageDeps(sync.ledger),
    logger,
    metrics: new EmfMetrics(metrics),
    reserveMs: cfg['lambda.reserveMs'],
  }),
)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));

/** Closes the container's connections (tests, and local runs that import the handler). */
export const close = async (): Promise<void> => {
  await Promise.all([keycloak.close(), sync.close()]);
};
