/**
 * The Keycloak job's trigger handlers, shared by the Lambda entries and the local bridges:
 * - the delete queue → one synced block re-checked and deleted (`createDeleteHandler`);
 * - the fan-out's start payload with `"job":"delete-keycloak-users"` → candidates selected and handed to
 *   the sync chain (`keycloakStarter`).
 *
 * The delete handler answers with a partial batch response: a malformed record or a block with retryable
 * failures is reported alone and comes back (then goes to the dead-letter queue); after a 403 or a refused
 * admin login, that record and every remaining one are recorded as not attempted and reported as failures,
 * so nothing is silently dropped.
 */
import type { Context } from 'aws-lambda';
import type { FlatConfig } from '#shared/config.ts';
import { BadInputError } from '#shared/core/errors.ts';
import { type Metrics, noMetrics } from '#shared/core/metrics.ts';
import { DeleteStage, type DeleteStageDeps } from '#shared/keycloak/delete-stage.ts';
import type { KeycloakRuntime } from '#shared/keycloak/runtime.ts';
import { type DeletionOverrides, deletionRequest, startKeycloakDeletion } from '#shared/keycloak/start.ts';
import { type Logger, withLogKeys } from '#shared/logger.ts';
import { budgetOf, recordMessage, type SqsHandler, sqsBatchHandler, startKey } from '#shared/sync/handler.ts';
import { blockSchema, parseMessage } from '#shared/sync/messages.ts';
import type { IdSource, MessageQueue, RunLedger } from '#shared/sync/ports.ts';
import type { StartedRun } from '#shared/sync/run.ts';

export const DELETE_METRIC = { deleted: 'users-deleted', failed: 'users-delete-failed' } as const;

export interface DeleteHandlerDeps {
  stageDeps: () => DeleteStageDeps;
  logger: Logger;
  metrics?: Metrics;
  /** No block is started with less than this left of the invocation (ms); the rest come back unstarted. */
  reserveMs?: number;
}

export function createDeleteHandler(deps: DeleteHandlerDeps): SqsHandler {
  const { logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  return (event, context) => {
    // One stage per invocation: a stop ends this batch; the next batch tries again.
    const stage = new DeleteStage(deps.stageDeps(), { recordNotAttempted: false });
    return sqsBatchHandler(
      async (rec) => {
        const block = recordMessage((b) => parseMessage(blockSchema, b), rec, logger);
        await withLogKeys(
          logger,
          { runId: block.run.runId, block: `${block.rangeNo}/${block.seq}` },
          async () => {
            const out = await stage.handle(block);
            const count = (o: string) => out.rows.filter((r) => r.outcome === o).length;
            metrics.count(DELETE_METRIC.deleted, count('deleted'));
            metrics.count(DELETE_METRIC.failed, count('failed'));
            logger.info('delete block done', {
              dryRun: block.run.dryRun,
              deleted: count('deleted'),
              failed: count('failed'),
            });
            for (const w of out.warnings) logger.warn(w);
            if (out.stopped) {
              logger.error('Keycloak deletion stopped', { error: out.stopped });
              throw new Error(`not attempted: the run stopped: ${out.stopped}`);
            }
            if (out.retryable)
              throw new Error(`block ${block.rangeNo}/${block.seq}: some ids failed and may pass on retry`);
          },
        );
      },
      budgetOf(deps.reserveMs, logger),
    )(event, context);
  };
}

export interface KeycloakStartDeps {
  cfg: FlatConfig;
  keycloak: () => KeycloakRuntime;
  ids: () => IdSource;
  ledger: () => RunLedger;
  syncQueue: () => MessageQueue;
  logger: Logger;
}

/** Starts a deletion run from a start payload: candidates from Keycloak's database (ids only filter them). */
export function keycloakStarter(deps: KeycloakStartDeps) {
  return async (
    payload: DeletionOverrides & {
      objectType: string;
      ids?: string[] | undefined;
      idempotencyKey?: string | undefined;
    },
    context?: Pick<Context, 'awsRequestId'>,
  ): Promise<StartedRun> => {
    if (payload.objectType !== 'user')
      throw new BadInputError('delete-keycloak-users works on objectType "user"');
    const kc = deps.keycloak();
    try {
      const { ids, objectType: _o, idempotencyKey: _k, ...over } = payload;
      const req = {
        ...deletionRequest(deps.cfg, {
          source: ids ? 'lambda: keycloak candidates ∩ ids' : 'lambda: keycloak candidates',
          ids,
          over,
        }),
        ...startKey(payload, context),
      };
      const q = deps.syncQueue();
      const { prepared, ...started } = await startKeycloakDeletion(req, {
        users: kc.users,
        directory: kc.directory,
        ids: deps.ids(),
        ledger: deps.ledger(),
        scanQueue: q,
        blockQueue: q,
      });
      if (!prepared) return started;
      deps.logger.info('keycloak deletion run started', {
        runId: started.runId,
        candidates: started.ids,
        excluded: prepared.excluded.length,
        notInKeycloak: prepared.notInKeycloak.length,
        lastSelectedId: prepared.selection.lastSelectedId,
      });
      return started;
    } finally {
      await kc.close();
    }
  };
}
