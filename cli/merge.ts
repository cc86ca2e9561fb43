/**
 * `sunbird-dataops merge-user-courses --from A --to B | --event file.json | --bridge`
 *
 * One merge, run locally through the same path as the Lambda (validation, journal, outputs on Kafka),
 * or the bridge that feeds the real input topic to the handler. Exit codes: 0 merged (or already
 * merged), 1 the merge did not happen (event rejected and reported on the failed topic), 2 bad usage or
 * configuration, 3 Cassandra or Kafka unreachable, timed out or refusing us (nothing written before
 * Kafka answered; the journal keeps a merge whose events could not be published).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  addSettingOptions,
  type CommandResult,
  configFromOptions,
  EXIT,
  EXIT_CODES_HELP,
  Out,
  UsageError,
} from '#cli/common.ts';
import type { FlatConfig, SettingKey } from '#shared/config.ts';
import { DataOpsError, type ErrorKind, kindOf, oneLine } from '#shared/core/errors.ts';
import { TallyMetrics } from '#shared/core/metrics.ts';
import { createLogger } from '#shared/logger.ts';
import { runMskBridge } from '#shared/merge/bridge.ts';
import { mergeRequestEvent } from '#shared/merge/events.ts';
import { messagesOfEventFile } from '#shared/merge/msk.ts';
import { type MessageResult, processMergeMessage } from '#shared/merge/process.ts';
import { createMergeRuntime } from '#shared/merge/runtime.ts';

const MERGE_SETTINGS: SettingKey[] = [
  'cassandra.hosts',
  'cassandra.port',
  'cassandra.localDataCenter',
  'cassandra.username',
  'cassandra.password',
  'cassandra.coursesKeyspace',
  'cassandra.opsKeyspace',
  'kafka.brokers',
  'kafka.env',
  'merge.inputTopic',
  'merge.failedTopic',
  'merge.courseBatchTopic',
  'merge.groupId',
  'merge.writeConcurrency',
  'log.level',
];

interface MergeCliOptions {
  from?: string;
  to?: string;
  event?: string;
  bridge?: boolean;
  [setting: string]: unknown;
}

function readEventFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --event ${file}: ${(err as Error).message}`);
  }
}

function describe(result: MessageResult): string {
  if (result.status !== 'merged') return `${result.status}: ${result.reason} (reported on the failed topic)`;
  const o = result.outcome;
  const s = o.summary;
  return [
    `${o.fromAccountId} → ${o.toAccountId}: ${o.mode} (plan ${o.planId})`,
    `  content rows copied ${s.consumptionCopied}, merged ${s.consumptionMerged}`,
    `  enrolments copied ${s.enrolmentsCopied}, kept ${s.enrolmentsKept}`,
    `  activity aggregates updated ${s.aggUpdated}`,
    `  writes this run ${o.writes}, batch-enrolment-sync events ${o.eventsEmitted}, ${o.durationMs.toFixed(0)} ms`,
  ].join('\n');
}

/** Merges each message in order; the exit code is 1 when any was not merged (rejected and reported). */
async function mergeHere(cfg: FlatConfig, values: string[], out: Out): Promise<CommandResult> {
  const runtime = createMergeRuntime(cfg, new TallyMetrics());
  const results: MessageResult[] = [];
  try {
    for (const value of values) {
      const result = await processMergeMessage(value, runtime.deps);
      out.say(describe(result));
      results.push(result);
    }
  } finally {
    await runtime.close();
  }
  const merged = results.filter((r) => r.status === 'merged').length;
  const json = {
    status: merged === results.length ? 'merged' : 'some not merged',
    merged,
    notMerged: results.length - merged,
    results: results.map((r) =>
      r.status === 'merged'
        ? {
            status: r.status,
            from: r.outcome.fromAccountId,
            to: r.outcome.toAccountId,
            mode: r.outcome.mode,
            writes: r.outcome.writes,
          }
        : { status: r.status, reason: r.reason },
    ),
  };
  return { exitCode: merged === results.length ? EXIT.ok : EXIT.someFailed, json };
}

function messagesOf(opts: MergeCliOptions): string[] {
  const modes = [opts.from !== undefined || opts.to !== undefined, opts.event !== undefined].filter(Boolean);
  if (modes.length !== 1) throw new UsageError('give either --from and --to, or --event, or --bridge');
  if (!opts.event && (!opts.from || !opts.to)) throw new UsageError('--from and --to go together');
  return opts.event
    ? messagesOfEventFile(readEventFile(opts.event))
    : [mergeRequestEvent(opts.from!, opts.to!)];
}

export function registerMergeCommand(program: Command): Command {
  const cmd = program
    .command('merge-user-courses')
    .description(
      'merge one account’s course progress into another (exactly once), or run the local MSK bridge',
    )
    .option('--from <accountId>', 'account merged from (fromAccountId)')
    .option('--to <accountId>', 'account merged into (toAccountId)')
    .option('--event <file>', 'a merge event JSON, or an MSK event whose records are merged in order')
    .option('--bridge', 'consume the input topic and invoke the handler with MSK-shaped events until Ctrl-C')
    .addHelpText('after', EXIT_CODES_HELP);
  addSettingOptions(cmd, MERGE_SETTINGS);
  cmd.action(async (opts: MergeCliOptions) => {
    const out: Out = new Out(opts);
    try {
      const cfg = configFromOptions(opts, MERGE_SETTINGS);
      if (opts.bridge) {
        const logger = createLogger({
          serviceName: 'merge-user-courses',
          level: cfg['log.level'],
          toStderr: true,
        });
        const controller = new AbortController();
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort());
        const r = await runMskBridge({ cfg, logger, signal: controller.signal });
        out.say(`bridge stopped after ${r.batches} batch(es), ${r.records} record(s)`);
        out.finish({ exitCode: EXIT.ok, json: { status: 'stopped', ...r } });
      }
      out.finish(await mergeHere(cfg, messagesOf(opts), out));
    } catch (err) {
      out.fail(kindOf(err) === 'bad-input' ? err : new MergeNotDone(err));
    }
  });
  return cmd;
}

/** An infrastructure failure of a merge, said as such; its kind (and exit code) is its cause's. */
class MergeNotDone extends DataOpsError {
  override name = 'MergeNotDone';
  constructor(cause: unknown) {
    super(`merge did not complete: ${oneLine(cause)}`, { cause });
  }
  get kind(): ErrorKind {
    return kindOf(this.cause) ?? 'run-failed';
  }
}
