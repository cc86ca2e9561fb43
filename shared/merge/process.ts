/**
 * One input message, end to end: validate, merge, report. Bad data never throws (it is published to the
 * failed topic and the caller moves on); infrastructure failures always throw (the caller must retry).
 */
import type { Metrics } from '#shared/core/metrics.ts';
import { failedEvent, validateMergeEvent } from '#shared/merge/events.ts';
import {
  type EventPublisher,
  MergeDataError,
  type MergeDeps,
  type MergeOutcome,
  runMerge,
} from '#shared/merge/merge.ts';

export const METRIC = {
  total: 'total-events-count',
  success: 'success-events-count',
  failed: 'failed-events-count',
  skipped: 'skipped-event-count',
  dbUpdates: 'db-update-user-course-batch',
  duration: 'merge-duration',
} as const;

export interface ProcessDeps extends MergeDeps {
  publisher: EventPublisher;
  failedTopic: string;
  metrics: Metrics;
}

export type MessageResult =
  | { status: 'merged'; outcome: MergeOutcome }
  /** Invalid event (the original's "skipped"), reported on the failed topic. */
  | { status: 'skipped'; reason: string }
  /** Valid event whose data cannot be merged, reported on the failed topic. */
  | { status: 'failed'; reason: string };

export async function processMergeMessage(value: string | Buffer, deps: ProcessDeps): Promise<MessageResult> {
  const { metrics } = deps;
  await deps.publisher.connect?.(); // preflight: no write (nor failed-event report) unless Kafka answers
  metrics.count(METRIC.total);
  const checked = validateMergeEvent(value);
  const report = (original: unknown, reason: string) =>
    deps.publisher.publish(deps.failedTopic, [{ value: JSON.stringify(failedEvent(original, reason)) }]);
  if (!checked.ok) {
    await report(checked.original, checked.reason);
    metrics.count(METRIC.skipped);
    return { status: 'skipped', reason: checked.reason };
  }
  try {
    const outcome = await runMerge(checked.request, deps);
    metrics.count(METRIC.success);
    metrics.count(METRIC.dbUpdates, outcome.writes);
    metrics.durationMs(METRIC.duration, outcome.durationMs);
    return { status: 'merged', outcome };
  } catch (err) {
    metrics.count(METRIC.failed);
    if (!(err instanceof MergeDataError)) throw err;
    await report(checked.event, err.message);
    return { status: 'failed', reason: err.message };
  }
}
