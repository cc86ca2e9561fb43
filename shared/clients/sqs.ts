import { SQSClient } from '@aws-sdk/client-sqs';

export interface SqsOptions {
  region: string;
  /** ElasticMQ or another local endpoint; empty means AWS. */
  endpoint?: string;
}

export function createSqsClient(opts: SqsOptions): SQSClient {
  const local = Boolean(opts.endpoint);
  return new SQSClient({
    region: opts.region,
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
