/**
 * Runs once before any test file: brings the real local services up (idempotent — a second run only
 * checks they answer). Keycloak is started on demand by the test files that need it.
 */
import { DEFAULT_SERVICE_NAMES, ensureServices } from '#scripts/services.ts';

export async function globalSetup(): Promise<void> {
  const started = Date.now();
  const results = await ensureServices(DEFAULT_SERVICE_NAMES, {
    log: (line) => process.stderr.write(`[services] ${line}\n`),
  });
  const summary = results.map((r) => `${r.name}:${r.state}`).join(' ');
  process.stderr.write(`[services] ready in ${((Date.now() - started) / 1000).toFixed(1)}s (${summary})\n`);
}
