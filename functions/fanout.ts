/**
 * Fan-out. Two triggers, one function:
 * - a start payload (EventBridge schedule input or a console test event) records a run and hands out
 *   token sub-range scan tasks (or blocks of the given ids);
 * - the scan queue (SQS) delivers those tasks: each is scanned within this invocation's time budget
 *   and, if the budget runs out, continued by a checkpoint message.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { effectivePacing } from '#shared/config.ts';
import { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import { startKeycloakDeletion } from '#shared/keycloak/start.ts';
import { createLogger } from '#shared/logger.ts';
import { runtimeConfig } from '#shared/secrets.ts';
import { parseMessage, scanTaskSchema } from '#shared/sync/messages.ts';
import { parseStartPayload, type StartPayload } from '#shared/sync/payload.ts';
import { type StartedRun, startRun } from '#shared/sync/run.ts';
import { SyncRuntime } from '#shared/sync/runtime.ts';
import { scanRange } from '#shared/sync/scan.ts';

const logger = createLogger({ serviceName: 'fanout' });
const processor = new BatchProcessor(EventType.SQS);
/** Leave this much of the invocation for sending the checkpoint and returning. */
const SAFETY_MS = 60_000;
let runtime: SyncRuntime | undefined;

async function rt(): Promise<SyncRuntime> {
  runtime ??= new SyncRuntime(await runtimeConfig());
  return runtime;
}

function isSqsEvent(event: unknown): event is SQSEvent {
  const records = (event as SQSEvent | undefined)?.Records;
  return Array.isArray(records) && records.length > 0 && records[0]?.eventSource === 'aws:sqs';
}

async function start(event: unknown): Promise<StartedRun> {
  const r = await rt();
  const payload = parseStartPayload(event);
  const pacing = effectivePacing(
    payload.blockSize ?? r.cfg['sync.blockSize'],
    payload.sleepMs ?? r.cfg['sync.sleepMs'],
  );
  if (payload.job === 'delete-keycloak-users') return startDeletion(r, payload, pacing);
  const started = await startRun(
    {
      job: payload.job,
      objectType: payload.objectType,
      table: payload.table ?? payload.objectType,
      keyspace: r.cfg['cassandra.keyspace'],
      dryRun: payload.dryRun ?? r.cfg['sync.dryRun'],
      verify: payload.verify ?? r.cfg['sync.verify'],
      ...pacing,
      ...(payload.ids ? { ids: payload.ids } : {}),
      ...(payload.runId ? { runId: payload.runId } : {}),
      source: payload.ids ? 'lambda: ids' : 'lambda: full scan',
      plan: { rowsPerTask: r.cfg['scan.rowsPerTask'], minTasks: r.cfg['scan.minTasks'] },
    },
    { cassandra: r.cassandra, ledger: r.ledger, scanQueue: r.queue('scan'), blockQueue: r.queue('sync') },
  );
  logger.info('run started', { runId: started.runId, tasks: started.tasks, blocks: started.blocks });
  return started;
}

/** Keycloak deletion: candidates come from Keycloak's database (the ids, if given, only filter them). */
async function startDeletion(
  r: SyncRuntime,
  payload: StartPayload,
  pacing: { blockSize: number; sleepMs: number },
): Promise<StartedRun> {
  if (payload.objectType !== 'user') throw new Error('delete-keycloak-users works on objectType "user"');
  const kc = new KeycloakRuntime(r.cfg, () => r.cassandra, logger);
  try {
    const realm = payload.realm ?? r.cfg['keycloak.realm'];
    const { prepared, ...started } = await startKeycloakDeletion(
      {
        ...(realm ? { realm } : {}),
        limit: payload.limit ?? r.cfg['keycloak.limit'],
        protectedRoles: r.cfg['keycloak.protectedRoles'],
        ...(payload.ids ? { ids: payload.ids } : {}),
        keyspace: r.cfg['cassandra.keyspace'],
        mode: r.cfg['keycloak.deleteMode'],
        dryRun: payload.dryRun ?? r.cfg['sync.dryRun'],
        verify: payload.verify ?? r.cfg['sync.verify'],
        ...pacing,
        ...(payload.runId ? { runId: payload.runId } : {}),
        source: payload.ids ? 'lambda: keycloak candidates ∩ ids' : 'lambda: keycloak candidates',
      },
      {
        pool: kc.pool,
        directory: kc.directory,
        cassandra: r.cassandra,
        ledger: r.ledger,
        scanQueue: r.queue('sync'),
        blockQueue: r.queue('sync'),
      },
    );
    logger.info('keycloak deletion run started', {
      runId: started.runId,
      candidates: started.ids,
      blocks: started.blocks,
      excluded: prepared.excluded.length,
      notInKeycloak: prepared.notInKeycloak.length,
      lastSelectedId: prepared.selection.lastSelectedId,
    });
    return started;
  } finally {
    await kc.close();
  }
}

async function scanRecord(record: SQSRecord, context: Context): Promise<void> {
  const r = await rt();
  const task = parseMessage(scanTaskSchema, record.body);
  const deadline = Date.now() + context.getRemainingTimeInMillis() - SAFETY_MS;
  const result = await scanRange(task, {
    cassandra: r.cassandra,
    queue: r.queue('sync'),
    ledger: r.ledger,
    shouldStop: () => Date.now() >= deadline,
    fetchSize: r.cfg['scan.fetchSize'],
  });
  if (!result.done) {
    await r.queue('scan').send([JSON.stringify(result.continuation)]);
    logger.info('scan checkpointed', { runId: task.run.runId, rangeNo: task.rangeNo, ids: result.ids });
  } else {
    logger.info('range scanned', {
      runId: task.run.runId,
      rangeNo: task.rangeNo,
      ids: result.ids,
      blocks: result.blocks,
    });
  }
}

export async function handler(event: unknown, context: Context): Promise<StartedRun | SQSBatchResponse> {
  if (isSqsEvent(event)) {
    return processPartialResponse(event, (rec: SQSRecord) => scanRecord(rec, context), processor, {
      context,
      throwOnFullBatchFailure: false,
      processInParallel: false,
    });
  }
  return start(event);
}

/** Releases this container's connections (local bridges and tests; Lambda simply freezes). */
export async function close(): Promise<void> {
  await runtime?.close();
  runtime = undefined;
}
