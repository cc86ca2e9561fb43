/**
 * The fan-out's wiring from configuration: the sync job's scan handler and starter, and the Keycloak
 * job's starter, on one sync runtime (Cassandra, ledger, queues). The composition point of the two jobs:
 * neither job's module knows the other.
 *
 * Every fan-out invocation sends to a queue, so `load` (awaited by the Lambda entry during start-up)
 * loads the SQS client then. The Keycloak starter — Keycloak's PostgreSQL driver and the candidate
 * selection — is loaded only by a deletion start, which a scan task or a sync start never needs.
 */
import type { FlatConfig } from '#shared/config.ts';
import type { Metrics } from '#shared/core/metrics.ts';
import { once } from '#shared/core/once.ts';
import { createFanoutHandler, type Starter } from '#shared/fanout/handler.ts';
import type { KeycloakStart } from '#shared/fanout/payload.ts';
import type { Logger } from '#shared/logger.ts';
import { createScanHandler, syncStarter } from '#shared/sync/handler.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

export function createFanout(cfg: FlatConfig, logger: Logger, metrics?: Metrics) {
  const rt = new SyncRuntime(cfg);
  const ports = { cfg, ids: () => rt.ids, ledger: () => rt.ledger, logger };
  const queues = { scanQueue: () => rt.queue('scan'), syncQueue: () => rt.queue('sync') };
  const keycloakStarter = once(async () => {
    const [{ keycloakStarter }, { KeycloakRuntime }] = await Promise.all([
      import('#shared/keycloak/handler.ts'),
      import('#shared/keycloak/runtime.ts'),
    ]);
    return keycloakStarter({
      ...ports,
      ...queues,
      keycloak: () => new KeycloakRuntime(cfg, () => rt.cassandra, logger),
    });
  });
  const keycloakStart: Starter<KeycloakStart> = async (payload, context) =>
    (await keycloakStarter())(payload, context);
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
      'delete-keycloak-users': keycloakStart,
    },
    logger,
  });
  return { handler, load: async () => void (await rt.loadQueues()), close: () => rt.close() };
}
