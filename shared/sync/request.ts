/**
 * Building a sync run's request from configuration — the one place for it, used by the CLI, the fan-out
 * function's start payload, and any job that syncs its own ids through the same chain.
 */

import { effectivePacing, type FlatConfig } from '#shared/config.ts';
import { BadInputError } from '#shared/core/errors.ts';
import { type ObjectType, type Table, tableOf } from '#shared/sync/objects.ts';
import type { StartRunRequest } from '#shared/sync/run.ts';

/** What a caller may set over the configuration (a console payload, a CLI flag). */
export interface RunOverrides {
  objectType?: ObjectType;
  table?: Table;
  dryRun?: boolean;
  verify?: boolean;
  blockSize?: number;
  sleepMs?: number;
  pace?: 'fixed' | 'auto';
  maxRate?: number;
  runId?: string;
  /** The id filter between the scan and the blocks (a name the scanning side resolves). */
  filter?: string;
}

/** The table and object type to sync: either may be given, the other follows. */
export function syncTarget(
  cfg: FlatConfig,
  over: RunOverrides = {},
): { table: Table; objectType: ObjectType } {
  const objectType = over.objectType ?? (cfg['sync.objectType'] || undefined);
  const table =
    over.table ?? (cfg['sync.table'] || undefined) ?? (objectType ? tableOf(objectType) : undefined);
  if (objectType === 'location') {
    throw new BadInputError(
      'objectType location has no Cassandra table here; sync locations by id file with --table user|organisation',
    );
  }
  if (!table) {
    throw new BadInputError(
      'say what to sync: --table user|organisation (sunbird_cassandra_table) or --object-type',
    );
  }
  return { table, objectType: objectType ?? table };
}

/** Auto pacing (with its cap) when asked for; fixed pacing is the absence of both. */
export function autoPace(pace: 'fixed' | 'auto', maxRate: number): { pace?: 'auto'; maxRate?: number } {
  if (pace !== 'auto') return {};
  return maxRate > 0 ? { pace, maxRate } : { pace };
}

/** The run settings the configuration (and the caller's overrides) ask for. */
export function syncRequest(
  cfg: FlatConfig,
  opts: {
    source: string;
    ids?: string[] | undefined;
    over?: RunOverrides;
    job?: string;
    params?: Record<string, unknown>;
  },
): StartRunRequest {
  const over = opts.over ?? {};
  const { table, objectType } = syncTarget(cfg, over);
  return {
    job: opts.job ?? 'sync',
    objectType,
    table,
    keyspace: cfg['cassandra.keyspace'],
    dryRun: over.dryRun ?? cfg['sync.dryRun'],
    verify: over.verify ?? cfg['sync.verify'],
    ...effectivePacing(over.blockSize ?? cfg['sync.blockSize'], over.sleepMs ?? cfg['sync.sleepMs']),
    ...autoPace(over.pace ?? cfg['sync.pace'], over.maxRate ?? cfg['sync.maxRate']),
    ...(opts.ids ? { ids: opts.ids } : {}),
    ...(over.runId ? { runId: over.runId } : {}),
    ...(over.filter ? { filter: over.filter } : {}),
    ...(opts.params ? { params: opts.params } : {}),
    source: opts.source,
    plan: { rowsPerTask: cfg['scan.rowsPerTask'], minTasks: cfg['scan.minTasks'] },
  };
}
