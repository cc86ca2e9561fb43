/**
 * The fan-out's wiring from configuration: the sync job's scan handler and starter, and the Keycloak
 * job's starter, on one sync runtime (Cassandra, ledger, queues). The composition point of the two jobs:
 * neither job's module knows the other.
 */
import type { FlatConfig } from '#shared/config.ts';
import type { Metrics } from '#shared/core/metrics.ts';
import { createFanoutHandler } from '#shared/fanout/handler.ts';
import { keycloakStarter } from '#shared/keycloak/handler.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import type { Logger } from '#shared/logger.ts';
import { createScanHandler, syncStarter } from '#shared/sync/handler.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

export function createFanout(cfg: FlatConfig, logger: Logger, metrics?: Metrics) {
  const rt = new SyncRuntime(cfg);
  const ports = { cfg, ids: () => rt.ids, ledger: () => rt.ledger, logger };
  const queues = { scanQueue: () => rt.queue('scan'), syncQueue: () => rt.queue('sync') };
  const handler = createFanoutHandler({
    scan: createScanHandler({
      ...ports,
      ...queues,
      fetchSize: cfg['scan.fetchSize'],
      reserveMs: cfg['lambda.reserveMs'],
      ...(metrics ? { metrics } : {}),
    }),
    starters: {
      sync: syncStarter({ ...ports, ...queues }),
      'delete-keycloak-users': keycloakStarter({
        ...ports,
        ...queues,
        keycloak: () => new KeycloakRuntime(cfg, () => rt.cassandra, logger),
      }),
    },
    logger,
  });
  return { handler, close: () => rt.close() };
}
