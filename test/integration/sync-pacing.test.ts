/**
 * Adaptive pacing (`--pace auto`) against the Sync API stand-in, through the real undici client: it
 * speeds up while answers are healthy, every worker waits out a 429's Retry-After and the rate comes
 * down, and it keeps within --max-rate and the concurrency. The assertions are about order and counts
 * (what started before what, how many in flight), never about how fast this machine is. Last, the CLI as
 * an operator runs it: the estimate before, the achieved rate after.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type SyncApiStandin, startSyncApiStandin } from '#scripts/sync-api-standin/index.ts';
import { SyncApiClient } from '#shared/clients/sync-api.ts';
import { runLocal } from '#shared/sync/local.ts';
import { MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import { AutoPacer } from '#shared/sync/pacing.ts';
import type { SyncApi, SyncCallResult, SyncOptions } from '#shared/sync/ports.ts';
import type { StartRunRequest } from '#shared/sync/run.ts';
import { isolatedKeyspaces } from '#test/helpers/cassandra.ts';
import { blockCalls } from '#test/helpers/cli.ts';

let standin: SyncApiStandin;
let client: SyncApiClient;

before(async () => {
  standin = await startSyncApiStandin({ port: 0 });
  client = new SyncApiClient({ endpoint: `${standin.url}/v1/data/sync`, connections: 16, maxRetries: 3 });
});

after(async () => {
  await client.close();
  await standin.close();
});

/** The client, with each attempt's start and answer noted in order, and the calls in flight counted. */
class Observed implements SyncApi {
  readonly events: Array<{
    kind: 'start' | 'answer';
    at: number;
    status?: number | null;
    retryAfterMs?: number;
  }> = [];
  inFlight = 0;
  maxInFlight = 0;
  check(signal?: AbortSignal): Promise<void> {
    return client.check(signal);
  }
  async sync(objectType: string, ids: string[], options: SyncOptions = {}): Promise<SyncCallResult> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.events.push({ kind: 'start', at: performance.now() });
    try {
      return await client.sync(objectType, ids, {
        ...options,
        onAttempt: (a) => {
          this.events.push({
            kind: 'answer',
            at: performance.now(),
            status: a.status,
            ...(a.retryAfterMs !== undefined ? { retryAfterMs: a.retryAfterMs } : {}),
          });
          options.onAttempt?.(a);
        },
        beforeRetry: async () => {
          await options.beforeRetry?.();
          this.events.push({ kind: 'start', at: performance.now() });
        },
      });
    } finally {
      this.inFlight--;
    }
  }
}

function request(blocks: number, over: Partial<StartRunRequest> = {}): StartRunRequest {
  return {
    job: 'sync',
    objectType: 'user',
    table: 'user',
    keyspace: 'ks',
    dryRun: false,
    verify: false,
    blockSize: 2,
    sleepMs: 10_000,
    pace: 'auto',
    ids: Array.from({ length: blocks * 2 }, (_, i) => `pace-${i}`),
    source: 'test',
    ...over,
  };
}

async function run(req: StartRunRequest, api: SyncApi, pacer: AutoPacer, workers: number) {
  return runLocal(
    req,
    { ids: new MemoryIdSource({}), ledger: new MemoryRunLedger(), syncApi: api, pacer },
    {},
    { workerConcurrency: workers },
  );
}

describe('auto pacing against the stand-in', () => {
  test('with healthy answers it speeds up, and never sleeps the run’s sleep time', async () => {
    standin.reset();
    const api = new Observed();
    const pacer = new AutoPacer({ maxConcurrency: 8, initialRate: 4 });
    const result = await run(request(60), api, pacer, 8);
    assert.equal(result.blocksSucceeded, 60);
    const state = pacer.state();
    assert.equal(state.decreases, 0);
    assert.ok(state.increases >= 1 && state.rate > 4, JSON.stringify(state));
    const starts = api.events.filter((e) => e.kind === 'start').map((e) => e.at);
    for (let k = 1; k < starts.length; k++) assert.ok(starts[k]! - starts[k - 1]! < 10_000, 'no 10 s sleep');
    assert.equal(blockCalls(standin).filter((r) => r.status === 429).length, 0);
  });

  test('a 429 with Retry-After: no worker starts a call until it has passed, the rate comes down, the block still succeeds', async () => {
    standin.reset();
    // The preflight, then six blocks pass; the seventh is throttled.
    standin.setFaults({
      script: [...Array.from({ length: 7 }, () => ({ passThrough: true })), { status: 429, retryAfter: 1 }],
    });
    const api = new Observed();
    const pacer = new AutoPacer({ maxConcurrency: 4, initialRate: 20 });
    const result = await run(request(30), api, pacer, 4);
    assert.equal(result.blocksSucceeded, 30, 'the throttled block was retried and accepted');
    assert.equal(blockCalls(standin).length, 31);
    const i = api.events.findIndex((e) => e.status === 429);
    assert.ok(i > 0);
    assert.equal(api.events[i]!.retryAfterMs, 1000);
    assert.ok(pacer.state().decreases >= 1);
    assert.ok(pacer.state().ceiling !== null && pacer.state().rate < pacer.state().ceiling!);
    // A start noted after the 429's answer was let through after it: each waited out the Retry-After.
    const later = api.events.slice(i + 1).filter((e) => e.kind === 'start');
    assert.ok(later.length >= 24, 'the rest of the run came after it');
    for (const e of later) assert.ok(e.at - api.events[i]!.at >= 990, `${e.at - api.events[i]!.at} ms`);
  });

  test('it keeps within --max-rate and the concurrency ceiling', async () => {
    standin.reset();
    standin.setFaults({ latencyMs: 150 });
    const api = new Observed();
    const starts: number[] = [];
    const timed: SyncApi = {
      check: (signal) => api.check(signal),
      sync: (t, ids, o) => {
        starts.push(performance.now());
        return api.sync(t, ids, o);
      },
    };
    const pacer = new AutoPacer({ maxConcurrency: 3, initialRate: 8 });
    const result = await run(request(40, { maxRate: 8 }), timed, pacer, 12);
    assert.equal(result.blocksSucceeded, 40);
    assert.ok(api.maxInFlight <= 3, `in flight: ${api.maxInFlight}`);
    assert.ok(pacer.state().rate <= 8);
    let most = 0;
    for (let a = 0, b = 0; a < starts.length; a++) {
      while (starts[a]! - starts[b]! >= 1000) b++;
      most = Math.max(most, a - b + 1);
    }
    assert.ok(most <= 8 + 2, `calls started in any second: ${most}`);
  });
});

describe('the CLI with --pace auto', () => {
  let ks: { sunbird: string; ops: string };
  let drop: () => Promise<void>;

  before(async () => {
    const iso = await isolatedKeyspaces('pace', ['sunbird', 'ops']);
    ks = iso.ks;
    drop = iso.drop;
  });
  after(() => drop());

  test('prints a time-to-resync estimate before the run and the achieved rate after it', async () => {
    standin.reset();
    const dir = await mkdtemp(join(tmpdir(), 'pace-cli-'));
    const ids = Array.from({ length: 500 }, (_, i) => `cli-pace-${i}`);
    await writeFile(join(dir, 'ids.csv'), ids.join('\n'));
    const cli = join(import.meta.dirname, '..', '..', 'bin', 'sunbird-dataops.js');
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [
        cli,
        'sync',
        '--table',
        'user',
        '--id-file',
        join(dir, 'ids.csv'),
        '--out',
        dir,
        '--context_param',
        'dry_run=false',
        '--context_param',
        'pace=auto',
        '--max-rate',
        '50',
        '--sync-api-endpoint',
        `${standin.url}/v1/data/sync`,
      ],
      {
        env: {
          ...process.env,
          SUNBIRD_KEYSPACE: ks.sunbird,
          DATAOPS_KEYSPACE: ks.ops,
          SYNC_SLEEP_TIME: '60000',
        },
      },
    );
    assert.match(stderr, /estimate: 500 ids in 5 calls, auto pacing with up to 8 in flight/);
    assert.match(stderr, /--max-rate of 50 calls\/s/);
    assert.match(stdout, /ids synced: 500, failed: 0/);
    assert.match(stdout, /achieved [\d.]+ ids\/s \([\d.]+ calls\/s\); 10,000,000 ids at this rate: /);
    const sent = blockCalls(standin).flatMap(
      (r) => (r.body as { request: { objectIds: string[] } }).request.objectIds,
    );
    assert.deepEqual(new Set(sent), new Set(ids));
  });
});
