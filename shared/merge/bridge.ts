/**
 * Local stand-in for the MSK event source mapping: consumes the real input topic, hands each batch to
 * the merge handler as an MSK-shaped event (records keyed `"<topic>-<partition>"`, base64 values), and
 * commits offsets only after the handler succeeded. A throw re-delivers the same batch after a back-off
 * (as Lambda does); a partial batch response re-delivers each failed partition from the reported offset.
 *
 * Run by `sunbird-dataops merge-user-courses --bridge`, `node scripts/msk-bridge.ts` (settings from the
 * environment) and the offline stack (`scripts/offline/msk-bridge.ts`).
 */
import type { Message } from '@platformatic/kafka';
import { createConsumer, ensureTopics } from '#shared/clients/kafka.ts';
import type { FlatConfig } from '#shared/config.ts';
import { TallyMetrics } from '#shared/core/metrics.ts';
import { sleep } from '#shared/core/time.ts';
import type { Logger } from '#shared/logger.ts';
import { createMskMergeHandler, type MskMergeHandler } from '#shared/merge/handler.ts';
import { toMskEvent } from '#shared/merge/msk.ts';
import { createMergeRuntime, kafkaOptions } from '#shared/merge/runtime.ts';

type StringMessage = Message<string, string, string, string>;

export interface BridgeOptions {
  cfg: FlatConfig;
  logger: Logger;
  signal: AbortSignal;
  /** Most records per invocation (Lambda's BatchSize). */
  batchSize?: number;
  handler?: MskMergeHandler;
}

export async function runMskBridge(opts: BridgeOptions): Promise<{ batches: number; records: number }> {
  const { cfg, logger, signal } = opts;
  const metrics = new TallyMetrics();
  const runtime = createMergeRuntime(cfg, metrics);
  const handler =
    opts.handler ??
    createMskMergeHandler({
      deps: runtime.deps,
      logger,
      reportBatchItemFailures: cfg['merge.reportBatchItemFailures'],
    });
  const kafka = kafkaOptions(cfg);
  const { input, groupId, failed, courseBatch } = runtime.topics;
  await ensureTopics(kafka, [input, failed, courseBatch]);
  const consumer = createConsumer({ ...kafka, clientId: `${kafka.clientId}-bridge`, groupId });
  const stream = await consumer.consume({ topics: [input], mode: 'committed', fallbackMode: 'earliest' });
  const buffer: StringMessage[] = [];
  const batchSize = opts.batchSize ?? 100;
  stream.on('data', (m: StringMessage) => {
    buffer.push(m);
    if (buffer.length >= batchSize * 10) stream.pause();
  });
  logger.info('msk bridge consuming', { topic: input, groupId });
  let batches = 0;
  let records = 0;
  try {
    while (!signal.aborted) {
      if (buffer.length === 0) {
        if (stream.isPaused()) stream.resume();
        await sleep(100, signal);
        continue;
      }
      let pending = buffer.splice(0, batchSize);
      for (let attempt = 1; pending.length > 0 && !signal.aborted; attempt++) {
        const event = toMskEvent(
          pending.map((m) => ({
            topic: m.topic,
            partition: m.partition,
            offset: Number(m.offset),
            value: m.value ?? '',
            key: m.key ?? '',
            timestamp: Number(m.timestamp),
          })),
          cfg['kafka.brokers'].join(','),
        );
        try {
          const response = await handler(event);
          const retry = new Map(
            (response?.batchItemFailures ?? []).map((f) => [
              f.itemIdentifier.partition,
              f.itemIdentifier.offset,
            ]),
          );
          const done = pending.filter((m) => {
            const from = retry.get(`${m.topic}-${m.partition}`);
            return from === undefined || Number(m.offset) < from;
          });
          await commitLast(done);
          pending = pending.filter((m) => !done.includes(m));
          batches++;
          records += done.length;
          if (pending.length > 0) await sleep(Math.min(30_000, 500 * 2 ** attempt), signal);
        } catch (err) {
          logger.warn('handler failed; the batch comes back after a back-off', {
            attempt,
            error: err instanceof Error ? err.message : String(err),
          });
          await sleep(Math.min(30_000, 500 * 2 ** attempt), signal);
        }
      }
      if (pending.length > 0) buffer.unshift(...pending);
    }
  } finally {
    await stream.close().catch(() => undefined);
    await consumer.close(true).catch(() => undefined);
    await runtime.close();
  }
  return { batches, records };
}

/** Commits the highest offset handled per partition. */
async function commitLast(messages: StringMessage[]): Promise<void> {
  const last = new Map<string, StringMessage>();
  for (const m of messages) {
    const k = `${m.topic}-${m.partition}`;
    const prev = last.get(k);
    if (!prev || m.offset > prev.offset) last.set(k, m);
  }
  for (const m of last.values()) await m.commit();
}
