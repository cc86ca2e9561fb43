/**
 * The part of the SSM client the functions use: reading a secret parameter at start-up
 * (shared/secrets.ts). Loaded with `import()` only when a secret is given by reference; importing these
 * two names statically here, rather than the package dynamically, lets the bundler leave out the rest
 * of the SSM API (its other commands, paginators and waiters).
 */
export { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
