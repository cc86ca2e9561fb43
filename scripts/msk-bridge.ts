/**
 * The local MSK bridge as a script: `node scripts/msk-bridge.ts`, settings from the environment (the same
 * bridge as `sunbird-dataops merge-user-courses --bridge`; see shared/merge/bridge.ts).
 */
import { loadFlatConfig } from '#shared/config.ts';
import { createLogger } from '#shared/logger.ts';
import { runMskBridge } from '#shared/merge/bridge.ts';

if (import.meta.main) {
  const cfg = loadFlatConfig();
  const logger = createLogger({ serviceName: 'msk-bridge', level: cfg['log.level'], toStderr: true });
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
  runMskBridge({ cfg, logger, signal: controller.signal }).then(
    (r) => logger.info('msk bridge stopped', r),
    (err: unknown) => {
      logger.error('msk bridge failed', { error: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    },
  );
}
