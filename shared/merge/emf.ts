/** The metrics port on Powertools Metrics: CloudWatch EMF lines flushed by the `logMetrics` middleware. */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { CountMetric, MergeMetrics } from '#shared/merge/process.ts';
import { METRIC } from '#shared/merge/process.ts';

export function createEmfMetrics(): Metrics {
  return new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'SunbirdDataOps',
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'merge-user-courses',
  });
}

export class EmfMergeMetrics implements MergeMetrics {
  readonly #metrics: Metrics;
  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }
  count(name: CountMetric, value = 1): void {
    this.#metrics.addMetric(name, MetricUnit.Count, value);
  }
  durationMs(ms: number): void {
    this.#metrics.addMetric(METRIC.duration, MetricUnit.Milliseconds, Math.round(ms));
  }
}
