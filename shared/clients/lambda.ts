/**
 * Invokes a function through a Lambda Invoke endpoint: serverless-offline's (`lambdaPort`, default
 * 3002) locally, or AWS when no endpoint is given. Function names are `<service>-<stage>-<function>`.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { RunFailedError } from '#shared/core/errors.ts';

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
    const out = await client.send(
      new InvokeCommand({
        FunctionName: functionName(opts.stage, fn),
        InvocationType: 'RequestResponse',
        Payload: new TextEncoder().encode(JSON.stringify(payload ?? {})),
      }),
    );
    const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
    const body = text ? (JSON.parse(text) as unknown) : undefined;
    if (out.FunctionError) {
      const msg = (body as { errorMessage?: string } | undefined)?.errorMessage ?? text;
      throw new FunctionError(`${functionName(opts.stage, fn)} failed: ${msg}`);
    }
    return body;
  };
}
