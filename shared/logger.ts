/**
 * Structured JSON logging (Powertools Logger) that never prints secrets: every value passes through
 * the redaction replacer, which masks secret-named fields, Bearer tokens and registered secret values.
 */
import { Console } from 'node:console';
import { Logger } from '@aws-lambda-powertools/logger';
import { redactReplacer } from '#shared/redact.ts';

export type { Logger };

export interface LoggerOptions {
  serviceName?: string;
  level?: string;
  /** CLI runs keep stdout for progress and reports, so their logs go to stderr. */
  toStderr?: boolean;
  /** Tests capture output here. */
  sink?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const logger = new Logger({
    serviceName: opts.serviceName ?? 'sunbird-dataops',
    logLevel: (opts.level ?? process.env.LOG_LEVEL ?? 'INFO').toUpperCase() as 'INFO',
    jsonReplacerFn: redactReplacer,
  });
  const out = opts.sink ?? (opts.toStderr ? process.stderr : undefined);
  if (out) {
    // Powertools writes through its own Console instance; redirecting it keeps the JSON format intact.
    (logger as unknown as { console: Console }).console = new Console({ stdout: out, stderr: out });
  }
  return logger;
}

/**
 * Runs `fn` with `keys` on every log line it causes (e.g. the run id and block of one SQS record), then
 * removes them: the scope of a unit of work, instead of repeating its ids in each log call.
 */
export async function withLogKeys<T>(
  logger: Logger,
  keys: Record<string, unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  logger.appendKeys(keys);
  try {
    return await fn();
  } finally {
    logger.removeKeys(Object.keys(keys));
  }
}
