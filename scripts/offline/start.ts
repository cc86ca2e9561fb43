/**
 * `npm run offline`: serverless-offline (stage `local`, Lambda Invoke endpoint on 127.0.0.1:3002) plus
 * the project's bridges for what it lacks: the three SQS event sources with partial batch responses
 * and the MSK event source. Needs `npm run services` (Cassandra, Kafka, ElasticMQ).
 *
 *   npm run offline                     # everything
 *   node scripts/offline/start.ts --no-kafka
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, connect, createServer } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runOfflineMskBridge } from '#scripts/offline/msk-bridge.ts';
import { runSqsBridge } from '#scripts/offline/sqs-bridge.ts';
import { createInvoker } from '#shared/clients/lambda.ts';
import { createSqsClient } from '#shared/clients/sqs.ts';
import { loadFlatConfig } from '#shared/config.ts';
import { createLogger } from '#shared/logger.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SQS_ENDPOINT = 'http://127.0.0.1:9324';

export interface OfflineOptions {
  stage?: string;
  /**
   * Environment for the functions and the bridges (keyspaces, SCAN_/SYNC_/DELETE_QUEUE_URL,
   * SQS_ENDPOINT, SUNBIRD_ENV or MERGE_*_TOPIC, KAFKA_BROKERS, SYNC_API_*, …), over process.env.
   */
  env?: Record<string, string>;
  kafka?: boolean;
  /** Lambda Invoke endpoint port (default 3002); 0 picks a free one. */
  lambdaPort?: number;
  esbuildFolder?: string;
  signal: AbortSignal;
  log?: (line: string) => void;
  /** Called once the functions answer and the bridges are started. */
  onReady?: (info: { endpoint: string }) => void;
}

function waitForPort(port: number, timeoutMs: number, gaveUp: () => boolean = () => false): Promise<void> {
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
        if (gaveUp()) reject(new Error(`stopped waiting for port ${port}`));
        else if (Date.now() > until) reject(new Error(`nothing listens on ${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 250);
      });
    };
    attempt();
  });
}

export interface ServerlessOfflineOptions {
  stage: string;
  /**
   * Environment of the offline process. It reaches the handlers in two ways: the local stage's
   * config/stages/local.yml reads the names that serverless.yml sets (keyspaces, queue URLs, Sync API
   * endpoint, SUNBIRD_ENV → topics, …) with `${env:…}`, and `--localEnvironment` passes everything
   * else (e.g. SYNC_API_KEY). serverless.yml's own values win over the process's otherwise.
   */
  env?: Record<string, string>;
  /** Lambda Invoke endpoint port (default 3002); 0 picks a free one. */
  lambdaPort?: number;
  /** serverless-esbuild's work folder (default `.esbuild-offline`), so parallel instances do not share it. */
  esbuildFolder?: string;
  log?: (line: string) => void;
}

export interface ServerlessOffline {
  child: ChildProcess;
  /** The Lambda Invoke endpoint, e.g. `http://127.0.0.1:3002`. */
  endpoint: string;
  lambdaPort: number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** A port nothing listens on right now (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts serverless-offline; resolves once its Lambda endpoint answers. */
export async function startServerlessOffline(opts: ServerlessOfflineOptions): Promise<ServerlessOffline> {
  const lambdaPort = opts.lambdaPort === 0 ? await freePort() : (opts.lambdaPort ?? 3002);
  // The test runner's marker would make a nested node think it is a test child.
  const { NODE_TEST_CONTEXT: _, ...parentEnv } = process.env;
  // Run the CLI on this process's Node (24), whatever `node` the PATH has: handlers run in its workers.
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'node_modules/serverless/bin/serverless.js'),
      'offline',
      'start',
      '--stage',
      opts.stage,
      '--lambdaPort',
      String(lambdaPort),
      '--localEnvironment',
    ],
    {
      cwd: ROOT,
      env: {
        ...parentEnv,
        ...opts.env,
        DATAOPS_ESBUILD_FOLDER: opts.esbuildFolder ?? '.esbuild-offline',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        SLS_TELEMETRY_DISABLED: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  for (const s of [child.stdout, child.stderr])
    s?.on('data', (d: Buffer) => opts.log?.(d.toString().trimEnd()));
  const exitedAt = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exitedAt;
    clearTimeout(timer);
  };
  let onExit: ((code: number | null) => void) | undefined;
  const exited = new Promise<never>((_, reject) => {
    onExit = (code) => reject(new Error(`serverless offline exited with ${code} before it was ready`));
    child.once('exit', onExit);
  });
  try {
    const dead = () => child.exitCode !== null || child.signalCode !== null;
    await Promise.race([waitForPort(lambdaPort, 180_000, dead), exited]);
  } catch (err) {
    await stop(1000);
    throw err;
  } finally {
    if (onExit) child.off('exit', onExit);
  }
  return { child, endpoint: `http://127.0.0.1:${lambdaPort}`, lambdaPort, stop };
}

export async function runOffline(opts: OfflineOptions): Promise<void> {
  const stage = opts.stage ?? 'local';
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  const sqsEndpoint = env.SQS_ENDPOINT || SQS_ENDPOINT;
  const offline = await startServerlessOffline({
    stage,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.lambdaPort !== undefined ? { lambdaPort: opts.lambdaPort } : {}),
    ...(opts.esbuildFolder ? { esbuildFolder: opts.esbuildFolder } : {}),
    log,
  });
  const invoke = createInvoker({ endpoint: offline.endpoint, stage });
  const sqs = createSqsClient({ region: 'us-east-1', endpoint: sqsEndpoint });
  // The functions' own queues: the same URLs local.yml gives them (from the environment, if set).
  const queue = (name: 'scan' | 'sync' | 'delete') =>
    env[`${name.toUpperCase()}_QUEUE_URL`] || `${sqsEndpoint}/000000000000/sunbird-dataops-${stage}-${name}`;
  const onError = (err: unknown) => log(`[bridge] ${err instanceof Error ? err.message : String(err)}`);
  const bridge = (name: 'scan' | 'sync' | 'delete', fn: string) =>
    runSqsBridge({ sqs, queueUrl: queue(name), fn, invoke, batchSize: 1, signal: opts.signal, onError });
  const bridges: Promise<unknown>[] = [
    bridge('scan', 'fanout'),
    bridge('sync', 'sync-block'),
    bridge('delete', 'delete-keycloak-users'),
  ];
  if (opts.kafka !== false) {
    const cfg = loadFlatConfig({ env: { ...env, SUNBIRD_ENV: env.SUNBIRD_ENV ?? stage } });
    const logger = createLogger({
      serviceName: 'offline-msk-bridge',
      level: cfg['log.level'],
      toStderr: true,
    });
    bridges.push(runOfflineMskBridge({ cfg, logger, invoke, signal: opts.signal }));
  }
  log(`offline: functions on ${offline.endpoint} (sunbird-dataops-${stage}-*), bridges running`);
  opts.onReady?.({ endpoint: offline.endpoint });
  try {
    // Every bridge runs until the signal; one failing stops the others' wait but not the others.
    await Promise.all(bridges);
  } finally {
    await offline.stop();
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
