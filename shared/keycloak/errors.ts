/** The Keycloak job's errors, on the common taxonomy (`shared/core/errors.ts`). */
import {
  BadInputError,
  CredentialsRefusedError,
  DataOpsError,
  type ErrorKind,
  kindOf,
  ServiceUnavailableError,
} from '#shared/core/errors.ts';
import type { DeletionRow, StoreDeleteResult } from '#shared/keycloak/ports.ts';

/** A wrong realm, option or id file: the selection cannot run as asked. */
export class KeycloakDataError extends BadInputError {
  override name = 'KeycloakDataError';
}

/** Keycloak refused the admin (403, a refused login, 401 even with fresh tokens): the run must stop. */
export class KeycloakRefusedError extends CredentialsRefusedError {
  override name = 'KeycloakRefusedError';
  constructor(message: string, options?: ErrorOptions) {
    super('Keycloak', message, options);
  }
}

/** Keycloak's token endpoint cannot be reached: the run must stop. */
export class KeycloakUnreachableError extends ServiceUnavailableError {
  override name = 'KeycloakUnreachableError';
  constructor(message: string, options?: ErrorOptions & { address?: string }) {
    super('Keycloak', message, options);
  }
}

/** Whether an error means "no more deletions in this run" (as opposed to a failure of some ids). */
export function stopsTheRun(err: unknown): err is KeycloakRefusedError | KeycloakUnreachableError {
  return err instanceof KeycloakRefusedError || err instanceof KeycloakUnreachableError;
}

/** A store stopped mid-way; `partial` is what it had done by then. Its kind is its cause's. */
export class DeletionStopped extends DataOpsError {
  override name = 'DeletionStopped';
  readonly partial: StoreDeleteResult;
  constructor(cause: KeycloakRefusedError | KeycloakUnreachableError, partial: StoreDeleteResult) {
    super(cause.message, { cause });
    this.partial = partial;
  }
  get kind(): ErrorKind {
    return kindOf(this.cause) ?? 'run-failed';
  }
}

/** The delete stage stopped (see DeletionStopped); `rows` are the block's rows as recorded. */
export class DeleteStageStopped extends DataOpsError {
  override name = 'DeleteStageStopped';
  readonly rows: DeletionRow[];
  constructor(message: string, rows: DeletionRow[], options?: ErrorOptions) {
    super(message, options);
    this.rows = rows;
  }
  get kind(): ErrorKind {
    return kindOf(this.cause) ?? 'run-failed';
  }
}
