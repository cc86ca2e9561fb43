/** The metrics port on Powertools Metrics: CloudWatch EMF lines flushed by the `logMetrics` middleware. */
import { MetricUnit, Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type { Metrics } from '#shared/core/metrics.ts';

export const METRICS_NAMESPACE = 'SunbirdDataOps';

/** One Powertools Metrics instance per function; its dimension `service` is the function's short name. */
export function createEmfMetrics(serviceName: string): PowertoolsMetrics {
  return new PowertoolsMetrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? serviceName,
  });
}

export class EmfMetrics implements Metrics {
  readonly #metrics: PowertoolsMetrics;
  constructor(metrics: PowertoolsMetrics) {
    this.#metrics = metrics;
  }
  count(name: string, value = 1): void {
    this.#metrics.addMetric(name, MetricUnit.Count, value);
  }
  durationMs(name: string, ms: number): void {
    this.#metrics.addMetric(name, MetricUnit.Milliseconds, Math.round(ms));
  }
}
