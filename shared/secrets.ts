/**
 * Secrets at run time. On AWS a secret setting is given by reference: `<ENV_VAR>_SSM` names an SSM
 * parameter (SecureString) — or a Secrets Manager secret through SSM's
 * `/aws/reference/secretsmanager/<secret-name>` path — read once per cold start with decryption.
 * Locally the plain environment variable is used. Nothing secret is ever resolved at packaging time.
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import { type FlatConfig, loadFlatConfig, SETTINGS } from '#shared/config.ts';

export async function resolveSecretEnv(
  env: Record<string, string | undefined> = process.env,
  ssm: Pick<SSMClient, 'send'> | undefined = undefined,
): Promise<Record<string, string | undefined>> {
  const refs = Object.values(SETTINGS)
    .filter((def) => 'secret' in def && def.secret)
    .map((def) => ({ env: def.env, param: env[`${def.env}_SSM`] }))
    .flatMap((r) => (r.param ? [{ env: r.env, param: r.param }] : []));
  if (refs.length === 0) return env;
  // Loaded only when a secret is given by reference: without one, a cold start never parses the SSM client.
  const { GetParameterCommand, SSMClient } = await import('#shared/clients/ssm.ts');
  const client = ssm ?? new SSMClient({});
  const resolved: Record<string, string | undefined> = { ...env };
  await Promise.all(
    refs.map(async (r) => {
      try {
        const out = await client.send(new GetParameterCommand({ Name: r.param, WithDecryption: true }));
        resolved[r.env] = out.Parameter?.Value ?? '';
      } catch (err) {
        throw new Error(`could not read ${r.env} from SSM parameter ${r.param}: ${(err as Error).name}`);
      }
    }),
  );
  return resolved;
}

let cached: Promise<FlatConfig> | undefined;

/** The Lambda functions' configuration: environment plus secrets from SSM, loaded once per container. */
export function runtimeConfig(): Promise<FlatConfig> {
  cached ??= resolveSecretEnv().then((env) => loadFlatConfig({ env }));
  cached.catch(() => {
    cached = undefined; // a failed cold start must not poison the container
  });
  return cached;
}
