/**
 * MSK trigger semantics, independent of what a record means.
 *
 * Records arrive grouped under `"<topic>-<partition>"`. Within a partition they are handled strictly in
 * offset order; partitions run side by side. A record handler that throws stops its partition: that record
 * and every later one of the partition must come back, so the function reports it.
 *
 * How they come back. By default the handler answers with a Kafka partial batch response naming, per
 * failed partition, the first record to retry (Powertools' shape `{"partition": "<topic>-<partition>",
 * "offset": <n>}`). AWS documents `ReportBatchItemFailures` for Amazon MSK and self-managed Kafka
 * mappings in provisioned poller mode ("Configuring error handling controls for Kafka event sources",
 * docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html), and the stack's mapping is
 * configured that way, with bounded retries, batch bisection and an on-failure destination.
 * `MERGE_REPORT_BATCH_ITEM_FAILURES=false` throws instead, which makes Lambda retry the whole batch in
 * any poller mode; the merge journal makes re-handling the records that had already succeeded harmless.
 */
import type { MSKEvent, MSKRecord } from 'aws-lambda';

export interface PartitionFailure {
  partitionKey: string;
  topic: string;
  partition: number;
  offset: number;
  error: unknown;
}

export interface MskBatchResult<R> {
  handled: Array<{ record: MSKRecord; result: R }>;
  failures: PartitionFailure[];
  /** Records not attempted because an earlier record of their partition failed. */
  notAttempted: number;
}

export interface KafkaBatchItemFailure {
  itemIdentifier: { partition: string; offset: number };
}

export interface KafkaBatchResponse {
  batchItemFailures: KafkaBatchItemFailure[];
}

export function decodeValue(record: MSKRecord): Buffer {
  return Buffer.from(record.value ?? '', 'base64');
}

export async function processMskEvent<R>(
  event: MSKEvent,
  handle: (value: Buffer, record: MSKRecord) => Promise<R>,
): Promise<MskBatchResult<R>> {
  const out: MskBatchResult<R> = { handled: [], failures: [], notAttempted: 0 };
  await Promise.all(
    Object.entries(event.records ?? {}).map(async ([partitionKey, records]) => {
      const ordered = [...records].sort((a, b) => a.offset - b.offset);
      for (const [i, record] of ordered.entries()) {
        try {
          out.handled.push({ record, result: await handle(decodeValue(record), record) });
        } catch (error) {
          out.failures.push({
            partitionKey,
            topic: record.topic,
            partition: record.partition,
            offset: record.offset,
            error,
          });
          out.notAttempted += ordered.length - i - 1;
          return;
        }
      }
    }),
  );
  return out;
}

/** The first failed record of each failed partition; Lambda resumes each partition from there. */
export function kafkaBatchResponse(failures: PartitionFailure[]): KafkaBatchResponse {
  return {
    batchItemFailures: failures.map((f) => ({
      itemIdentifier: { partition: `${f.topic}-${f.partition}`, offset: f.offset },
    })),
  };
}

/** Wraps records (Kafka values) into an MSK-shaped event, for the local bridge, the CLI and tests. */
export function toMskEvent(
  records: Array<{
    topic: string;
    partition: number;
    offset: number;
    value: Buffer | string;
    key?: Buffer | string;
    timestamp?: number;
  }>,
  bootstrapServers = '127.0.0.1:9092',
): MSKEvent {
  const grouped: MSKEvent['records'] = {};
  for (const r of records) {
    const k = `${r.topic}-${r.partition}`;
    const list = grouped[k] ?? [];
    grouped[k] = list;
    list.push({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      timestamp: r.timestamp ?? Date.now(),
      timestampType: 'CREATE_TIME',
      key: r.key === undefined ? '' : Buffer.from(r.key).toString('base64'),
      value: Buffer.from(r.value).toString('base64'),
      headers: [],
    });
  }
  return {
    eventSource: 'aws:kafka',
    eventSourceArn:
      'arn:aws:kafka:us-east-1:000000000000:cluster/local/00000000-0000-0000-0000-000000000000-1',
    bootstrapServers,
    records: grouped,
  };
}

/**
 * The messages in an event file: an MSK event (e.g. events/msk-merge-user-courses.json) gives its records'
 * values in order; anything else is one message to validate (and report), like a bad record on the topic.
 */
export function messagesOfEventFile(text: string): string[] {
  try {
    const parsed = JSON.parse(text) as { eventSource?: string; records?: Record<string, MSKRecord[]> };
    if (parsed?.eventSource === 'aws:kafka' && parsed.records) {
      return Object.values(parsed.records)
        .flat()
        .map((r) => decodeValue(r).toString('utf8'));
    }
  } catch {
    // Not JSON: still a message.
  }
  return [text];
}
