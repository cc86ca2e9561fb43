/**
 * `npm run offline`: serverless-offline (stage `local`, Lambda Invoke endpoint on 127.0.0.1:3002) plus
 * the project's bridges for what it lacks: the three SQS event sources with partial batch responses
 * and the MSK event source. Needs `npm run services` (Cassandra, Kafka, ElasticMQ).
 *
 *   npm run offline                     # everything
 *   node scripts/offline/start.ts --no-kafka
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createInvoker, OFFLINE_ENDPOINT } from '#scripts/offline/invoke.ts';
import { runOfflineMskBridge } from '#scripts/offline/msk-bridge.ts';
import { runSqsBridge } from '#scripts/offline/sqs-bridge.ts';
import { createSqsClient } from '#shared/clients/sqs.ts';
import { loadFlatConfig } from '#shared/config.ts';
import { createLogger } from '#shared/logger.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SQS_ENDPOINT = 'http://127.0.0.1:9324';

export interface OfflineOptions {
  stage?: string;
  /** Extra environment for the functions (serverless-offline passes its own to the handlers). */
  env?: Record<string, string>;
  kafka?: boolean;
  signal: AbortSignal;
  log?: (line: string) => void;
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.end();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > until) reject(new Error(`nothing listens on ${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 250);
      });
    };
    attempt();
  });
}

/** Starts serverless-offline; resolves once its Lambda endpoint answers. */
export async function startServerlessOffline(opts: {
  stage: string;
  env?: Record<string, string>;
  log?: (line: string) => void;
}): Promise<ChildProcess> {
  const child = spawn(
    path.join(ROOT, 'node_modules/.bin/serverless'),
    ['offline', 'start', '--stage', opts.stage],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...opts.env,
        DATAOPS_ESBUILD_FOLDER: '.esbuild-offline',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  for (const s of [child.stdout, child.stderr])
    s?.on('data', (d: Buffer) => opts.log?.(d.toString().trimEnd()));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`serverless offline exited with ${code}`))),
  );
  await Promise.race([waitForPort(3002, 180_000), exited]);
  return child;
}

export async function runOffline(opts: OfflineOptions): Promise<void> {
  const stage = opts.stage ?? 'local';
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const child = await startServerlessOffline({ stage, ...(opts.env ? { env: opts.env } : {}), log });
  const invoke = createInvoker({ endpoint: OFFLINE_ENDPOINT, stage });
  const sqs = createSqsClient({ region: 'us-east-1', endpoint: SQS_ENDPOINT });
  const queue = (name: string) => `${SQS_ENDPOINT}/000000000000/sunbird-dataops-${stage}-${name}`;
  const onError = (err: unknown) => log(`[bridge] ${err instanceof Error ? err.message : String(err)}`);
  const bridges: Promise<unknown>[] = [
    runSqsBridge({
      sqs,
      queueUrl: queue('scan'),
      fn: 'fanout',
      invoke,
      batchSize: 1,
      signal: opts.signal,
      onError,
    }),
    runSqsBridge({
      sqs,
      queueUrl: queue('sync'),
      fn: 'sync-block',
      invoke,
      batchSize: 1,
      signal: opts.signal,
      onError,
    }),
    runSqsBridge({
      sqs,
      queueUrl: queue('delete'),
      fn: 'delete-keycloak-users',
      invoke,
      batchSize: 1,
      signal: opts.signal,
      onError,
    }),
  ];
  if (opts.kafka !== false) {
    const cfg = loadFlatConfig({ env: { ...process.env, SUNBIRD_ENV: process.env.SUNBIRD_ENV ?? stage } });
    const logger = createLogger({
      serviceName: 'offline-msk-bridge',
      level: cfg['log.level'],
      toStderr: true,
    });
    bridges.push(runOfflineMskBridge({ cfg, logger, invoke, signal: opts.signal }));
  }
  log(`offline: functions on ${OFFLINE_ENDPOINT} (sunbird-dataops-${stage}-*), bridges running`);
  try {
    await Promise.all(bridges);
  } finally {
    child.kill('SIGTERM');
    sqs.destroy();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { stage: { type: 'string', default: 'local' }, 'no-kafka': { type: 'boolean', default: false } },
  });
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
  await runOffline({ stage: values.stage, kafka: !values['no-kafka'], signal: controller.signal });
}
