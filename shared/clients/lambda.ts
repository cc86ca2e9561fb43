/**
 * Invokes a function through a Lambda Invoke endpoint: serverless-offline's (`lambdaPort`, default
 * 3002) locally, or AWS when no endpoint is given. Function names are `<service>-<stage>-<function>`.
 */
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { RunFailedError, ServiceUnavailableError } from '#shared/core/errors.ts';
import { isRetryableNetworkError } from '#shared/core/retry.ts';

export const OFFLINE_ENDPOINT = 'http://127.0.0.1:3002';

export interface InvokerOptions {
  /** serverless-offline's Lambda endpoint; empty means AWS. */
  endpoint?: string;
  stage: string;
  region?: string;
}

export type Invoke = (fn: string, payload: unknown) => Promise<unknown>;

export class FunctionError extends RunFailedError {
  override name = 'FunctionError';
}

export function functionName(stage: string, fn: string): string {
  return fn.startsWith('sunbird-dataops-') ? fn : `sunbird-dataops-${stage}-${fn}`;
}

export function createInvoker(opts: InvokerOptions): Invoke {
  const client = new LambdaClient({
    region: opts.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(opts.endpoint
      ? {
          endpoint: opts.endpoint,
          // serverless-offline does not check signatures; the SDK still needs something to sign with.
          credentials: { accessKeyId: 'offline', secretAccessKey: 'offline' },
          maxAttempts: 1,
        }
      : {}),
  });
  return async (fn, payload) => {
    const command = new InvokeCommand({
      FunctionName: functionName(opts.stage, fn),
      InvocationType: 'RequestResponse',
      Payload: new TextEncoder().encode(JSON.stringify(payload ?? {})),
    });
    let out: InvokeCommandOutput;
    try {
      out = await client.send(command);
    } catch (err) {
      if (!isRetryableNetworkError(err)) throw err;
      const where = opts.endpoint ?? 'AWS Lambda';
      throw new ServiceUnavailableError(
        'Lambda',
        `cannot reach the Lambda endpoint ${where}: ${(err as Error).message}`,
        {
          address: where,
          cause: err,
        },
      );
    }
    const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    if (out.FunctionError) {
      const msg = (body as { errorMessage?: string } | undefined)?.errorMessage ?? text;
      throw new FunctionError(`${functionName(opts.stage, fn)} failed: ${msg}`);
    }
    return body;
  };
}
