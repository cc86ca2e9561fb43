/**
 * The fan-out function's handler. It has two triggers, told apart by their schemas: the scan queue (an
 * SQS event of scan tasks, handled by the sync job's scan handler) and a start payload (a schedule's
 * input or a console event), handed to the starter of the payload's job.
 */
import { SqsSchema } from '@aws-lambda-powertools/parser/schemas/sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import {
  type KeycloakStart,
  parseStartPayload,
  type StartPayload,
  type SyncStart,
} from '#shared/fanout/payload.ts';
import type { Logger } from '#shared/logger.ts';
import type { SqsHandler } from '#shared/sync/handler.ts';
import type { StartedRun } from '#shared/sync/run.ts';

export type FanoutTrigger =
  | { kind: 'scan-queue'; event: SQSEvent }
  | { kind: 'start'; payload: StartPayload };

export function parseFanoutTrigger(event: unknown): FanoutTrigger {
  const sqs = SqsSchema.safeParse(event);
  if (sqs.success) return { kind: 'scan-queue', event: sqs.data as SQSEvent };
  return { kind: 'start', payload: parseStartPayload(event) };
}

/** Starts a run of one job from its payload (the Lambda context gives the request id). */
export type Starter<P> = (payload: P, context: Context) => Promise<StartedRun>;

export interface FanoutHandlerDeps {
  scan: SqsHandler;
  starters: { sync: Starter<SyncStart>; 'delete-keycloak-users': Starter<KeycloakStart> };
  logger: Logger;
}

export function createFanoutHandler(deps: FanoutHandlerDeps) {
  return async (event: unknown, context: Context): Promise<StartedRun | SQSBatchResponse> => {
    const trigger = parseFanoutTrigger(event);
    if (trigger.kind === 'scan-queue') return deps.scan(trigger.event, context);
    const p = trigger.payload;
    const started =
      p.job === 'sync' ? await deps.starters.sync(p, context) : await deps.starters[p.job](p, context);
    if (started.duplicate)
      deps.logger.info('start repeated: the run was started before, nothing started now', {
        runId: started.runId,
        job: p.job,
      });
    else
      deps.logger.info('run started', {
        runId: started.runId,
        job: p.job,
        tasks: started.tasks,
        blocks: started.blocks,
      });
    return started;
  };
}
