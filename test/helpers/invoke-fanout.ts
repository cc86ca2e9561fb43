/**
 * One Lambda container of the fan-out function, in its own process: invokes the handler once with the
 * payload in argv[2] and the request id in argv[3], prints what it returned as JSON, and exits.
 * Configuration comes from the environment, as on Lambda.
 */
import type { Context } from 'aws-lambda';

const { handler, close } = await import('#functions/fanout.ts');
const context = {
  awsRequestId: process.argv[3] ?? 'request',
  functionName: 'fanout',
  getRemainingTimeInMillis: () => 900_000,
} as unknown as Context;
try {
  process.stdout.write(JSON.stringify(await handler(JSON.parse(process.argv[2]!), context)));
} finally {
  await close();
}
