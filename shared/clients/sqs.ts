/**
 * The SQS client factory. Every call is bounded: connecting by the smaller of the timeout and 10 s, and a
 * request by the timeout but never below 25 s (a receive may rightly wait 20 s for messages), with the
 * SDK's standard retries (3 attempts) on top.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import type { FlatConfig } from '#shared/config.ts';

export interface SqsOptions {
  region: string;
  /** ElasticMQ or another local endpoint; empty means AWS. */
  endpoint?: string;
  /** Request timeout in ms (at least 25 s, for long polls; connecting: at most 10 s); default 30 s. */
  timeoutMs?: number;
}

export const SQS_DEFAULT_TIMEOUT_MS = 30_000;
/** A receive may wait 20 s (WaitTimeSeconds ≤ 20) before its answer: a request may never time out sooner. */
const MIN_REQUEST_TIMEOUT_MS = 25_000;

export function sqsOptionsFrom(cfg: FlatConfig): SqsOptions {
  return { region: cfg['aws.region'], endpoint: cfg['sqs.endpoint'], timeoutMs: cfg['sqs.timeoutMs'] };
}

export function createSqsClient(opts: SqsOptions): SQSClient {
  const local = Boolean(opts.endpoint);
  const timeoutMs = opts.timeoutMs ?? SQS_DEFAULT_TIMEOUT_MS;
  return new SQSClient({
    region: opts.region,
    requestHandler: {
      connectionTimeout: Math.min(timeoutMs, 10_000),
      requestTimeout: Math.max(timeoutMs, MIN_REQUEST_TIMEOUT_MS),
      // Without this the handler only logs a warning when the timeout passes, and goes on waiting.
      throwOnRequestTimeout: true,
    },
    ...(local
      ? {
          endpoint: opts.endpoint,
          // A local endpoint needs some credentials to sign with; they are never checked.
          credentials: {
            accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
            secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
          },
        }
      : {}),
  });
}
