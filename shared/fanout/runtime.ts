/**
 * The fan-out's wiring from configuration: the sync job's scan handler and starter, and the Keycloak
 * job's starter, on one sync runtime (Cassandra, ledger, queues), plus the drift repair's filter of
 * scanned pages. The composition point of the jobs: neither job's module knows the others.
 *
 * Every fan-out invocation sends to a queue, so `load` (awaited by the Lambda entry during start-up)
 * loads the SQS client then. The Keycloak starter — Keycloak's PostgreSQL driver and the candidate
 * selection — is loaded only by a deletion start, and the drift runtime (the search engine client) only
 * by a drift repair's start or scan, which a plain resync never needs.
 */
import type { FlatConfig } from '#shared/config.ts';
import type { Metrics } from '#shared/core/metrics.ts';
import { once } from '#shared/core/once.ts';
import { driftFilterName, filteredPlan } from '#shared/drift/filter.ts';
import type { DriftRuntime } from '#shared/drift/runtime.ts';
import { createFanoutHandler, type Starter } from '#shared/fanout/handler.ts';
import type { KeycloakStart, SyncStart } from '#shared/fanout/payload.ts';
import type { Logger } from '#shared/logger.ts';
import { createScanHandler, syncStarter } from '#shared/sync/handler.ts';
import type { IdFilter } from '#shared/sync/ports.ts';
import { syncTarget } from '#shared/sync/request.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';

export function createFanout(cfg: FlatConfig, logger: Logger, metrics?: Metrics) {
  const rt = new SyncRuntime(cfg);
  let driftRt: DriftRuntime | undefined;
  const drift = once(async () => {
    const { DriftRuntime } = await import('#shared/drift/runtime.ts');
    driftRt ??= new DriftRuntime(cfg, () => rt.cassandra);
    return driftRt;
  });
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
  const startSync = syncStarter({ ...ports, ...queues });
  const filteredCfg = { ...cfg, 'scan.minTasks': filteredPlan({ minTasks: cfg['scan.minTasks'] }).minTasks };
  const startFiltered = syncStarter({ ...ports, cfg: filteredCfg, ...queues });
  // Drift repair ({"onlyMissing":true}): the run names the filter its scan tasks apply; a wrong index
  // is refused here, before anything is enqueued.
  const sync: Starter<SyncStart> = async (p, context) => {
    const filter = driftFilterName(p);
    if (!filter) return startSync(p, context);
    const d = await drift();
    await d.search.requireIndex(d.indexOf(syncTarget(cfg, p).table));
    return startFiltered({ ...p, filter }, context);
  };
  // A scan task names its run's filter; the drift runtime is loaded by the first page it filters.
  const filters = (name: string): IdFilter => ({
    keep: async (ids, target) => (await drift()).filters()(name).keep(ids, target),
  });
  const handler = createFanoutHandler({
    scan: createScanHandler({
      ...ports,
      ...queues,
      fetchSize: cfg['scan.fetchSize'],
      reserveMs: cfg['lambda.reserveMs'],
      filters,
      ...(metrics ? { metrics } : {}),
    }),
    starters: { sync, 'delete-keycloak-users': keycloakStart },
    logger,
  });
  return {
    handler,
    load: async () => void (await rt.loadQueues()),
    close: async () => {
      await Promise.all([rt.close(), driftRt?.close()]);
    },
  };
}
