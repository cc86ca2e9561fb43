/**
 * `npm run services -- up|down|status|logs [name…]`: the local Cassandra, Kafka, ElasticMQ and, on
 * demand, Keycloak and OpenSearch (fetched from Maven Central into
 * ${SUNBIRD_DATAOPS_CACHE:-~/.cache/sunbird-dataops}, run from .services/) and the machine's PostgreSQL.
 * Services are registered in scripts/services/registry.ts.
 *
 * Programmatic use (e.g. the test suite's global setup):
 *   import { ensureServices } from '#scripts/services.ts';
 *   await ensureServices();                    // all, or ensureServices(['cassandra', 'kafka'])
 */
import { Command } from 'commander';
import { ensureServices, serviceLogs, serviceStatus, stopServices } from './services/manager.ts';
import { SERVICE_NAMES } from './services/registry.ts';

export type { DownResult, Health, StatusRow, UpOptions, UpResult } from './services/manager.ts';
export { ensureServices, serviceLogs, serviceStatus, stopServices } from './services/manager.ts';
export { DEFAULT_SERVICE_NAMES, SERVICE_NAMES, SERVICES } from './services/registry.ts';
export { ServiceError } from './services/types.ts';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('services')
    .description(`local services for sunbird-dataops (${SERVICE_NAMES.join(', ')})`)
    .showHelpAfterError();
  let code = 0;

  program
    .command('up')
    .description('fetch, start and wait for the services (all by default); idempotent')
    .argument('[names...]', 'services to start')
    .action(async (names: string[]) => {
      const t0 = Date.now();
      const results = await ensureServices(names, { verbose: true });
      for (const r of results) {
        if (r.state === 'already-running')
          console.log(`${r.name}: already running${r.pid ? ` (pid ${r.pid})` : ''}`);
      }
      const started = results.filter((r) => r.state === 'started').length;
      console.log(
        started === 0
          ? `all ${results.length} services already running (${((Date.now() - t0) / 1000).toFixed(1)} s)`
          : `${started} started, ${results.length - started} already running (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
      );
    });

  program
    .command('down')
    .description('stop the services we started (all by default); never postgres')
    .argument('[names...]', 'services to stop')
    .action(async (names: string[]) => {
      const results = await stopServices(names);
      for (const r of results) {
        if (r.state === 'not-running') console.log(`${r.name}: not running`);
        if (r.state === 'not-managed') console.log(`${r.name}: left alone (not started by us)`);
      }
    });

  program
    .command('status')
    .description('table of services, ports, pids and health')
    .argument('[names...]', 'services to show')
    .action(async (names: string[]) => {
      const rows = await serviceStatus(names);
      console.log(
        table([
          ['SERVICE', 'VERSION', 'PORTS', 'PID', 'HEALTH'],
          ...rows.map((r) => [
            r.name,
            r.version ?? '(system)',
            r.ports.map((p) => `${p.port}/${p.role}`).join(' '),
            r.pid === null ? '-' : String(r.pid),
            (r.detail ? `${r.health}: ${r.detail}` : r.health) +
              (r.onDemand && r.health === 'down' ? ` (on demand: up ${r.name})` : ''),
          ]),
        ]),
      );
      // Exit 1 when a default service is not healthy (an on-demand one being down is normal).
      if (rows.some((r) => !r.onDemand && !r.health.startsWith('healthy'))) code = 1;
    });

  program
    .command('logs')
    .description('print the tail of the service logs (all by default)')
    .argument('[names...]', 'services whose log to show')
    .option('-n, --lines <n>', 'lines per log', '50')
    .action((names: string[], opts: { lines: string }) => {
      console.log(serviceLogs(names, Number(opts.lines) || 50));
    });

  await program.parseAsync(argv, { from: 'user' });
  return code;
}

if (import.meta.main) {
  try {
    const code = await main(process.argv.slice(2));
    // Client libraries may keep sockets or timers around for a moment; the work is done.
    process.exit(code);
  } catch (err) {
    // ServiceErrors are written as one line already; anything else is cut to its first line too.
    const message = err instanceof Error ? err.message : String(err);
    console.error(`services: ${message.split('\n')[0]}`);
    process.exit(2);
  }
}
