/**
 * The local services, in `up` order (`down` stops them in reverse). To add one (e.g. keycloak),
 * write `scripts/services/<name>.ts` exporting a `ServiceDefinition` (see types.ts; the JVM modules
 * here show fetching from Maven with `fetchMavenClasspath` and launching with `launchDetached`) and
 * add it to this list: the CLI, `status`, `logs`, `down` and `ensureServices` pick it up from here.
 * A service that needs another one names it in `dependsOn` (keycloak: `['postgres']`); the manager
 * starts those first. Service modules import only common.ts, types.ts and versions.ts.
 */
import { cassandraAuthService, cassandraService } from './cassandra.ts';
import { elasticmqService } from './elasticmq.ts';
import { kafkaService } from './kafka.ts';
import { keycloakService } from './keycloak.ts';
import { opensearchService } from './opensearch.ts';
import { postgresService } from './postgres.ts';
import { type ServiceDefinition, ServiceError } from './types.ts';

export const SERVICES: readonly ServiceDefinition[] = [
  postgresService,
  cassandraService,
  kafkaService,
  elasticmqService,
  keycloakService,
  opensearchService,
  cassandraAuthService,
];

export const SERVICE_NAMES: readonly string[] = SERVICES.map((s) => s.name);

/** What a plain `up` / `ensureServices()` starts: every service that is not on demand. */
export const DEFAULT_SERVICE_NAMES: readonly string[] = SERVICES.filter((s) => !s.onDemand).map(
  (s) => s.name,
);

/** The definitions for `names` (all when empty), in registry order; unknown names are an error. */
export function selectServices(names: readonly string[] = []): ServiceDefinition[] {
  const unknown = names.filter((n) => !SERVICE_NAMES.includes(n));
  if (unknown.length > 0) {
    throw new ServiceError(`unknown service ${unknown.join(', ')} (known: ${SERVICE_NAMES.join(', ')})`);
  }
  return names.length === 0 ? [...SERVICES] : SERVICES.filter((s) => names.includes(s.name));
}
