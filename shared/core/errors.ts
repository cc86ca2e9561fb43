/**
 * The error taxonomy of every job. Each error says which of five things went wrong; the CLI maps the kind
 * to an exit code and the Lambda handlers to retry / no retry — always by type, never by message text.
 *
 * | kind                  | meaning                                            | exit | retry? |
 * |-----------------------|----------------------------------------------------|------|--------|
 * | `bad-input`           | the request, a file, a message or a setting is wrong | 2  | no     |
 * | `service-unavailable` | a required service cannot be reached or timed out  | 3    | yes    |
 * | `credentials-refused` | a service refused our credentials or privileges    | 3    | no     |
 * | `run-failed`          | the run completed but some ids or events failed    | 1    | —      |
 * | `interrupted`         | the run was stopped (signal, time budget)          | 130  | resume |
 *
 * Adapters translate their drivers' errors into these at the boundary (see `shared/clients/*`), so a core
 * or a handler never inspects a driver's error.
 */

export type ErrorKind =
  | 'bad-input'
  | 'service-unavailable'
  | 'credentials-refused'
  | 'run-failed'
  | 'interrupted';

export const EXIT = {
  ok: 0,
  someFailed: 1,
  badInput: 2,
  unavailable: 3,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export abstract class DataOpsError extends Error {
  abstract readonly kind: ErrorKind;
}

/** The request, a file, a message or a setting is wrong: retrying the same input cannot help. */
export class BadInputError extends DataOpsError {
  readonly kind = 'bad-input';
  override name = 'BadInputError';
}

/** A required service is unreachable, timed out or answered with a transient failure. */
export class ServiceUnavailableError extends DataOpsError {
  readonly kind = 'service-unavailable';
  override name = 'ServiceUnavailableError';
  /** e.g. `Cassandra`, `Sync API`, `Kafka`. */
  readonly service: string;
  /** Where it was looked for (host:port or URL without credentials). */
  readonly address: string | undefined;
  constructor(service: string, message: string, options?: ErrorOptions & { address?: string }) {
    super(message, options);
    this.service = service;
    this.address = options?.address;
  }
}

/** A service refused our credentials or privileges (401 after a fresh login, 403, SASL failure). */
export class CredentialsRefusedError extends DataOpsError {
  readonly kind = 'credentials-refused';
  override name = 'CredentialsRefusedError';
  readonly service: string;
  constructor(service: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.service = service;
  }
}

/** The run completed, but some ids or events failed (they are in the failure record). */
export class RunFailedError extends DataOpsError {
  readonly kind = 'run-failed';
  override name = 'RunFailedError';
}

/** The run was stopped before it completed (signal, time budget); it can be resumed. */
export class InterruptedError extends DataOpsError {
  readonly kind = 'interrupted';
  override name = 'InterruptedError';
}

export function kindOf(err: unknown): ErrorKind | undefined {
  return err instanceof DataOpsError ? err.kind : undefined;
}

const EXIT_OF: Record<ErrorKind, ExitCode> = {
  'bad-input': EXIT.badInput,
  'service-unavailable': EXIT.unavailable,
  'credentials-refused': EXIT.unavailable,
  'run-failed': EXIT.someFailed,
  interrupted: EXIT.interrupted,
};

/** The CLI's exit code for an error; an unclassified error is a failed run (1). */
export function exitCodeOf(err: unknown): ExitCode {
  const kind = kindOf(err);
  return kind ? EXIT_OF[kind] : EXIT.someFailed;
}

/**
 * Whether a queue-triggered handler should let the message come back. Bad input and refused credentials
 * are final (redelivery cannot fix them: the message goes on to the dead-letter queue, or the run stops);
 * an unavailable service and any unclassified error are worth another delivery.
 */
export function isRetryable(err: unknown): boolean {
  const kind = kindOf(err);
  return kind === undefined || kind === 'service-unavailable' || kind === 'interrupted';
}

/** The first line of an error's message, for one-line CLI output (the stack only with --verbose). */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? text).trim() || (err instanceof Error ? err.name : 'error');
}
