/**
 * The fan-out's wiring from configuration: the sync job's scan handler and starter, and the Keycloak
 * job's starter, on one sync runtime (Cassandra, ledger, queues), plus the drift repair's filter of
 * scanned pages. The composition point of the jobs: neither job's module knows the others.
 */
import type { FlatConfig } from '#shared/config.ts';
import type { Metrics } from '#shared/core/metrics.ts';
import { driftFilterName, filteredPlan } from '#shared/drift/filter.ts';
import { DriftRuntime } from '#shared/drift/runtime.ts';
import { createFanoutHandler } from '#shared/fanout/handler.ts';
import type { SyncStart } from '#shared/fanout/payload.ts';
import { keycloakStarter } from '#shared/keycloak/handler.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import type { Logger } from '#shared/logger.ts';
import { createScanHandler, syncStarter } from '#shared/sync/handler.ts';
import { syncTarget } from '#shared/sync/request.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

/** Leave this much of the invocation for sending the checkpoint and returning. */
export const SCAN_SAFETY_MS = 60_000;

export function createFanout(cfg: FlatConfig, logger: Logger, metrics?: Metrics) {
  const rt = new SyncRuntime(cfg);
  const drift = new DriftRuntime(cfg, () => rt.cassandra);
  const ports = { cfg, ids: () => rt.ids, ledger: () => rt.ledger, logger };
  const queues = { scanQueue: () => rt.queue('scan'), syncQueue: () => rt.queue('sync') };
  const startSync = syncStarter({ ...ports, ...queues });
  const filteredCfg = { ...cfg, 'scan.minTasks': filteredPlan({ minTasks: cfg['scan.minTasks'] }).minTasks };
  const startFiltered = syncStarter({ ...ports, cfg: filteredCfg, ...queues });
  // Drift repair ({"onlyMissing":true}): the run names the filter its scan tasks apply; a wrong index
  // is refused here, before anything is enqueued.
  const sync = async (p: SyncStart) => {
    const filter = driftFilterName(p);
    if (!filter) return startSync(p);
    await drift.search.requireIndex(drift.indexOf(syncTarget(cfg, p).table));
    return startFiltered({ ...p, filter });
  };
  const handler = createFanoutHandler({
    scan: createScanHandler({
      ...ports,
      ...queues,
      fetchSize: cfg['scan.fetchSize'],
      safetyMs: SCAN_SAFETY_MS,
      filters: drift.filters(),
      ...(metrics ? { metrics } : {}),
    }),
    starters: {
      sync,
      'delete-keycloak-users': keycloakStarter({
        ...ports,
        ...queues,
        keycloak: () => new KeycloakRuntime(cfg, () => rt.cassandra, logger),
      }),
    },
    logger,
  });
  return { handler, close: () => Promise.all([rt.close(), drift.close()]).then(() => undefined) };
}
