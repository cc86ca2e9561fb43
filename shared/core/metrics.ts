/**
 * The metrics port every job reports through: CloudWatch EMF in Lambda (`shared/clients/emf.ts`), an
 * in-memory tally on the CLI and in tests.
 */
export interface Metrics {
  count(name: string, value?: number): void;
  durationMs(name: string, ms: number): void;
}

export class TallyMetrics implements Metrics {
  readonly counts: Record<string, number> = {};
  readonly durations: Record<string, number[]> = {};
  count(name: string, value = 1): void {
    this.counts[name] = (this.counts[name] ?? 0) + value;
  }
  durationMs(name: string, ms: number): void {
    const list = this.durations[name] ?? [];
    list.push(ms);
    this.durations[name] = list;
  }
}

/** Metrics that go nowhere (a caller that reports none). */
export const noMetrics: Metrics = { count: () => {}, durationMs: () => {} };
