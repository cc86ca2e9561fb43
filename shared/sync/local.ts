/**
 * Running a whole run on one machine with the same cores the Lambda functions use: scan tasks are
 * consumed by a few concurrent scanner loops, blocks by paced worker loops, chained through an
 * in-process bounded queue (embedded mode) or a real SQS queue (`--queue-url`).
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { CassandraClient } from '#shared/clients/cassandra.ts';
import type { SyncApiClient, SyncCallResult } from '#shared/clients/sync-api.ts';
import { MemoryQueue, type MessageQueue, SqsQueue } from '#shared/queue.ts';
import type { BlockOutcome, Ledger } from '#shared/sync/ledger.ts';
import { type Block, blockSchema, parseMessage, scanTaskSchema } from '#shared/sync/messages.ts';
import { type StartedRun, type StartRunRequest, startRun } from '#shared/sync/run.ts';
import { scanRange } from '#shared/sync/scan.ts';
import { processBlock } from '#shared/sync/worker.ts';

export interface LocalRunDeps {
  cassandra: CassandraClient;
  ledger: Ledger;
  syncApi: SyncApiClient;
  /** Real-queue mode: blocks go through this SQS queue instead of memory. */
  sqs?: { client: SQSClient; url: string };
  /** For `delete-keycloak-users`: where accepted blocks go next. */
  deleteQueue?: MessageQueue;
}

export interface LocalRunHooks {
  onStarted?: (run: StartedRun) => void;
  onEnumerated?: (idsSoFar: number) => void;
  /** After every real Sync API call, with the call's sequence number (the Talend "Request No"). */
  onCall?: (block: Block, result: SyncCallResult, requestNo: number) => void;
  onBlockDone?: (block: Block, outcome: BlockOutcome) => void;
  /** A block not processed because the run was stopped (`opts.signal`). */
  onSkipped?: (block: Block) => Promise<void> | void;
  log?: (message: string) => void;
}

export interface LocalRunOptions {
  scanConcurrency?: number;
  workerConcurrency?: number;
  fetchSize?: number;
  /** Stops the run: blocks not yet processed are handed to `onSkipped` instead of the Sync API. */
  signal?: AbortSignal;
}

export interface LocalRunResult {
  runId: string;
  idsEnumerated: number;
  blocks: number;
  blocksSucceeded: number;
  blocksFailed: number;
  idsSucceeded: number;
  idsFailed: number;
  dryRun: boolean;
  durationMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runLocal(
  req: StartRunRequest,
  deps: LocalRunDeps,
  hooks: LocalRunHooks = {},
  opts: LocalRunOptions = {},
): Promise<LocalRunResult> {
  const started = Date.now();
  const scanQueue = new MemoryQueue(Number.MAX_SAFE_INTEGER);
  const memoryBlocks = new MemoryQueue(256);
  const blockQueue: MessageQueue = deps.sqs ? new SqsQueue(deps.sqs.client, deps.sqs.url) : memoryBlocks;
  const run = await startRun(req, { cassandra: deps.cassandra, ledger: deps.ledger, scanQueue, blockQueue });
  scanQueue.close();
  hooks.onStarted?.(run);

  let enumerated = run.ids;
  let expectedBlocks = run.blocks;
  let scanning = run.tasks > 0;
  const scanner = async (): Promise<void> => {
    for (let body = await scanQueue.receive(); body !== null; body = await scanQueue.receive()) {
      const task = parseMessage(scanTaskSchema, body);
      const result = await scanRange(task, {
        cassandra: deps.cassandra,
        queue: blockQueue,
        ledger: deps.ledger,
        ...(opts.fetchSize ? { fetchSize: opts.fetchSize } : {}),
        onPage: ({ ids, blocks }) => {
          enumerated += ids;
          expectedBlocks += blocks;
          hooks.onEnumerated?.(enumerated);
        },
      });
      if (!result.done) await scanQueue.send([JSON.stringify(result.continuation)]);
    }
  };
  const scanners = Promise.all(
    Array.from({ length: Math.max(1, opts.scanConcurrency ?? 4) }, scanner),
  ).finally(() => {
    scanning = false;
    memoryBlocks.close();
  });
  if (run.tasks === 0) memoryBlocks.close();
  hooks.onEnumerated?.(enumerated);

  const totals = { blocks: 0, ok: 0, failed: 0, idsOk: 0, idsFailed: 0 };
  let requestNo = 0;
  // The original slept `sleep` ms after each call before the next one. Across several workers the
  // same spacing holds: a call may start only `sleep` ms after the previous call started and ended.
  let nextCallAt = 0;
  const handle = async (block: Block): Promise<void> => {
    if (opts.signal?.aborted) {
      await hooks.onSkipped?.(block);
      return;
    }
    const paced = !block.run.dryRun && block.run.sleepMs > 0;
    if (paced) {
      for (let wait = nextCallAt - Date.now(); wait > 0; wait = nextCallAt - Date.now()) await sleep(wait);
      nextCallAt = Date.now() + block.run.sleepMs;
    }
    if (opts.signal?.aborted) {
      // Stopped while this block waited for its turn.
      await hooks.onSkipped?.(block);
      return;
    }
    const { outcome } = await processBlock(block, {
      syncApi: deps.syncApi,
      ledger: deps.ledger,
      ...(deps.deleteQueue ? { deleteQueue: deps.deleteQueue } : {}),
      onCall: (b, result) => hooks.onCall?.(b, result, ++requestNo),
    });
    if (paced) nextCallAt = Math.max(nextCallAt, Date.now() + block.run.sleepMs);
    totals.blocks++;
    if (outcome.status === 'failed') totals.failed++;
    else totals.ok++;
    totals.idsFailed += outcome.failedIds.length;
    totals.idsOk += outcome.ids.length - outcome.failedIds.length;
    hooks.onBlockDone?.(block, outcome);
  };

  const memoryWorker = async (): Promise<void> => {
    for (let body = await memoryBlocks.receive(); body !== null; body = await memoryBlocks.receive()) {
      await handle(parseMessage(blockSchema, body));
    }
  };

  const sqsWorker = async (sqs: { client: SQSClient; url: string }): Promise<void> => {
    while (scanning || totals.blocks < expectedBlocks) {
      const out = await sqs.client.send(
        new ReceiveMessageCommand({
          QueueUrl: sqs.url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 120,
        }),
      );
      for (const m of out.Messages ?? []) {
        let block: Block;
        try {
          block = parseMessage(blockSchema, m.Body ?? '');
        } catch (err) {
          hooks.log?.(`skipping malformed message ${m.MessageId}: ${(err as Error).message}`);
          continue; // left for the queue's redrive policy to move to the dead-letter queue
        }
        if (block.run.runId !== run.runId) {
          // Another run's block: hand it back untouched.
          await sqs.client.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: sqs.url,
              ReceiptHandle: m.ReceiptHandle,
              VisibilityTimeout: 0,
            }),
          );
          continue;
        }
        await handle(block);
        await sqs.client.send(
          new DeleteMessageCommand({ QueueUrl: sqs.url, ReceiptHandle: m.ReceiptHandle }),
        );
      }
    }
  };

  const workers = Array.from({ length: Math.max(1, opts.workerConcurrency ?? 1) }, () =>
    deps.sqs ? sqsWorker(deps.sqs) : memoryWorker(),
  );
  await Promise.all([scanners, ...workers]);
  return {
    runId: run.runId,
    idsEnumerated: enumerated,
    blocks: totals.blocks,
    blocksSucceeded: totals.ok,
    blocksFailed: totals.failed,
    idsSucceeded: totals.idsOk,
    idsFailed: totals.idsFailed,
    dryRun: req.dryRun,
    durationMs: Date.now() - started,
  };
}
