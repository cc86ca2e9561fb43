/**
 * The Keycloak deletion job's rules on in-memory adapters: who is a candidate, the re-check at delete time,
 * what each Admin API answer means, the stop on 401/403, the delete stage and its records, and the whole
 * local job. The same rules run against real Keycloak and PostgreSQL in test/integration/keycloak-*.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Context, SQSEvent } from 'aws-lambda';
import { toSqsEvent } from '#scripts/offline/sqs-bridge.ts';
import { loadFlatConfig } from '#shared/config.ts';
import { type DeleteBlockDeps, DeleteBlockStopped, deleteBlock } from '#shared/keycloak/delete-block.ts';
import {
  DELETE_STAGE,
  DeleteStage,
  type DeleteStageDeps,
  processDeleteBlock,
} from '#shared/keycloak/delete-stage.ts';
import { DeleteStageStopped, KeycloakDataError } from '#shared/keycloak/errors.ts';
import { createDeleteHandler } from '#shared/keycloak/handler.ts';
import {
  deletionCounts,
  LIST_FILES,
  runDeletionRows,
  selectionLists,
  writeLists,
} from '#shared/keycloak/lists.ts';
import { runDeletionLocally } from '#shared/keycloak/local.ts';
import {
  MemoryDeletionRecords,
  MemoryDirectory,
  MemoryKeycloak,
  MemorySqlStore,
  type MemoryUser,
} from '#shared/keycloak/memory.ts';
import type { UserStore } from '#shared/keycloak/ports.ts';
import { prepareSelection, selectCandidates } from '#shared/keycloak/selection.ts';
import {
  deletionRequest,
  deletionRunRequest,
  type KeycloakDeletionRequest,
  startKeycloakDeletion,
} from '#shared/keycloak/start.ts';
import { createLogger } from '#shared/logger.ts';
import { MemoryQueue } from '#shared/queue/queue.ts';
import { FakeSyncApi, MemoryIdSource, MemoryRunLedger } from '#shared/sync/memory.ts';
import { type Block, blockSchema, MessageError } from '#shared/sync/messages.ts';

const ROLES = ['admin'];

/** A realm with one user of each kind the rules distinguish. */
function realm(): { kc: MemoryKeycloak; dir: MemoryDirectory } {
  const users: MemoryUser[] = [
    { id: 'u-normal-1', realm: 'sunbird', direct: ['public'] },
    { id: 'u-normal-2', realm: 'sunbird', direct: ['public', 'editor'] },
    { id: 'u-admin-direct', realm: 'sunbird', direct: ['admin'] },
    { id: 'u-admin-group', realm: 'sunbird', direct: ['public'], inherited: ['admin'] },
    { id: 'u-service', realm: 'sunbird', direct: ['public'], serviceAccount: true },
    { id: 'u-not-in-cassandra', realm: 'sunbird', direct: ['public'] },
    { id: 'u-no-roles', realm: 'sunbird', direct: [] },
    { id: 'u-other-realm', realm: 'other', direct: ['public'] },
  ];
  const kc = new MemoryKeycloak(users);
  const dir = new MemoryDirectory(users.map((u) => u.id).filter((id) => id !== 'u-not-in-cassandra'));
  return { kc, dir };
}

function deps(kc: MemoryKeycloak, dir: MemoryDirectory, store: () => UserStore = () => kc): DeleteBlockDeps {
  return { users: kc, directory: dir, store, protectedRoles: ROLES };
}

function block(ids: string[], over: Partial<Block> = {}, dryRun = false): Block {
  return {
    type: 'block',
    run: {
      runId: 'kcdel-1',
      job: 'delete-keycloak-users',
      objectType: 'user',
      dryRun,
      verify: false,
      blockSize: 100,
      sleepMs: 0,
      next: DELETE_STAGE,
    },
    rangeNo: 0,
    seq: 0,
    ids,
    context: { realm: 'sunbird' },
    ...over,
  };
}

const noStore = (): UserStore => assert.fail('a dry run never sets up a store (no Keycloak login)');

describe('candidate selection', () => {
  test('candidates hold a role, no protected role in any way, are no service account, and exist in Cassandra', async () => {
    const { kc, dir } = realm();
    const sel = await selectCandidates(kc, dir, { realm: 'sunbird', protectedRoles: ROLES, limit: 100 });
    assert.deepEqual(sel.candidates.map((c) => c.id).sort(), ['u-normal-1', 'u-normal-2']);
    const reasons = Object.fromEntries(sel.excluded.map((e) => [e.id, e.reason]));
    assert.deepEqual(reasons, {
      'u-admin-group': 'protected-role',
      'u-service': 'service-account',
      'u-not-in-cassandra': 'not-in-cassandra',
    });
    const seen = new Set([...sel.candidates.map((c) => c.id), ...sel.excluded.map((e) => e.id)]);
    assert.equal(seen.has('u-admin-direct'), false, 'a direct admin never leaves the query');
    assert.equal(seen.has('u-no-roles'), false, 'no role mapping: never a candidate');
    assert.equal(seen.has('u-other-realm'), false);
  });

  test('every realm when none is named; an unknown realm is bad input', async () => {
    const { kc, dir } = realm();
    const all = await selectCandidates(kc, dir, { protectedRoles: ROLES, limit: 100 });
    assert.ok(all.candidates.some((c) => c.realm === 'other'));
    await assert.rejects(
      selectCandidates(kc, dir, { realm: 'nope', protectedRoles: ROLES, limit: 1 }),
      KeycloakDataError,
    );
  });

  test('the limit and --after-id page through the users in id order', async () => {
    const kc = new MemoryKeycloak(
      Array.from({ length: 7 }, (_, i) => ({ id: `u${i}`, realm: 'sunbird', direct: ['public'] })),
    );
    const dir = new MemoryDirectory([...kc.users.keys()]);
    const first = await selectCandidates(kc, dir, { protectedRoles: ROLES, limit: 3 });
    assert.deepEqual(
      first.candidates.map((c) => c.id),
      ['u0', 'u1', 'u2'],
    );
    assert.equal(first.lastSelectedId, 'u2');
    const next = await selectCandidates(kc, dir, {
      protectedRoles: ROLES,
      limit: 3,
      afterId: first.lastSelectedId!,
    });
    assert.deepEqual(
      next.candidates.map((c) => c.id),
      ['u3', 'u4', 'u5'],
    );
  });

  test('a limit below 1 and an empty protected-role list are refused', async () => {
    const { kc, dir } = realm();
    await assert.rejects(selectCandidates(kc, dir, { protectedRoles: ROLES, limit: 0 }), KeycloakDataError);
    await assert.rejects(selectCandidates(kc, dir, { protectedRoles: [' '], limit: 5 }), KeycloakDataError);
  });

  test('the id file only filters: unknown ids and other realms are "not in Keycloak", a direct admin is protected', async () => {
    const { kc, dir } = realm();
    const prepared = await prepareSelection(kc, dir, {
      realm: 'sunbird',
      protectedRoles: ROLES,
      limit: 100,
      ids: ['u-normal-1', 'u-admin-direct', 'ghost', 'u-other-realm', 'u-no-roles'],
    });
    assert.deepEqual(
      prepared.selection.candidates.map((c) => c.id),
      ['u-normal-1'],
    );
    assert.deepEqual(prepared.notInKeycloak.sort(), ['ghost', 'u-other-realm']);
    const reasons = Object.fromEntries(prepared.excluded.map((e) => [e.id, e.reason]));
    assert.equal(reasons['u-admin-direct'], 'protected-role');
    assert.equal(reasons['u-no-roles'], 'not-selected');
    const lists = selectionLists(prepared);
    assert.deepEqual(lists.notFound.sort(), ['ghost', 'u-other-realm']);
    assert.deepEqual(lists.skippedProtected, ['u-admin-direct']);
    assert.deepEqual(lists.skipped, [{ id: 'u-no-roles', reason: 'not selected (no role mapping)' }]);
  });

  test('candidates are grouped by realm, in realm then id order', async () => {
    const kc = new MemoryKeycloak([
      { id: 'b', realm: 'r2', direct: ['x'] },
      { id: 'a', realm: 'r2', direct: ['x'] },
      { id: 'c', realm: 'r1', direct: ['x'] },
    ]);
    const prepared = await prepareSelection(kc, new MemoryDirectory(['a', 'b', 'c']), {
      protectedRoles: ROLES,
      limit: 9,
    });
    assert.deepEqual(
      [...prepared.byRealm],
      [
        ['r1', ['c']],
        ['r2', ['a', 'b']],
      ],
    );
  });
});

describe('deleting a block (re-check, then the store)', () => {
  test('a dry run deletes nothing, lists what would go, and never sets up a store', async () => {
    const { kc, dir } = realm();
    const r = await deleteBlock(
      { realm: 'sunbird', ids: ['u-normal-1', 'u-admin-group'], dryRun: true },
      deps(kc, dir, noStore),
    );
    assert.deepEqual(r.wouldDelete, ['u-normal-1']);
    assert.deepEqual(r.skippedProtected, ['u-admin-group']);
    assert.equal(kc.users.size, 8);
    assert.deepEqual(kc.deleteCalls, []);
  });

  test('every rule is checked again at delete time', async () => {
    const { kc, dir } = realm();
    const ids = [
      'u-normal-1',
      'u-normal-2',
      'u-service',
      'u-no-roles',
      'u-not-in-cassandra',
      'u-other-realm',
      'gone',
    ];
    kc.users.get('u-normal-2')!.inherited = ['admin']; // gained a protected role since the selection
    const r = await deleteBlock({ realm: 'sunbird', ids, dryRun: false }, deps(kc, dir));
    assert.deepEqual(r.deleted, ['u-normal-1']);
    assert.deepEqual(r.skippedProtected.sort(), ['u-normal-2', 'u-service']);
    assert.deepEqual(r.skippedNoRoleMapping, ['u-no-roles']);
    assert.deepEqual(r.skippedNotInCassandra, ['u-not-in-cassandra']);
    assert.deepEqual(r.notFound.sort(), ['gone', 'u-other-realm']);
    assert.deepEqual(kc.deleteCalls, ['u-normal-1'], 'only the eligible id reached the Admin API');
  });

  test('Admin API answers: 204 deleted, 404 not found, 500 a retryable failure', async () => {
    const kc = new MemoryKeycloak(['a', 'b', 'c'].map((id) => ({ id, realm: 'sunbird', direct: ['x'] })));
    kc.answers.set('b', [404]);
    kc.answers.set('c', [500]);
    const r = await deleteBlock(
      { realm: 'sunbird', ids: ['a', 'b', 'c'], dryRun: false },
      deps(kc, new MemoryDirectory(['a', 'b', 'c'])),
    );
    assert.deepEqual(r.deleted, ['a']);
    assert.deepEqual(r.notFound, ['b']);
    assert.deepEqual(r.failed, [{ id: 'c', error: 'HTTP 500', retryable: true }]);
  });

  test('403 stops the block: what was done is kept, the cause says the credentials were refused', async () => {
    const kc = new MemoryKeycloak(['a', 'b', 'c'].map((id) => ({ id, realm: 'sunbird', direct: ['x'] })));
    kc.answers.set('b', [403]);
    const err = await deleteBlock(
      { realm: 'sunbird', ids: ['a', 'b', 'c'], dryRun: false },
      deps(kc, new MemoryDirectory(['a', 'b', 'c'])),
    ).then(
      () => assert.fail('403 must stop'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeleteBlockStopped);
    assert.deepEqual(err.partial.deleted, ['a']);
    assert.equal(err.kind, 'credentials-refused');
    assert.ok(kc.users.has('c'), 'nothing after the 403 was tried');
  });

  test('one 401 fetches a new token and deletes the same id; more than 10 in a row stop the run', async () => {
    const kc = new MemoryKeycloak(['a', 'b'].map((id) => ({ id, realm: 'sunbird', direct: ['x'] })));
    kc.answers.set('a', [401]);
    kc.answers.set('b', Array(11).fill(401));
    const dir = new MemoryDirectory(['a', 'b']);
    const err = await deleteBlock({ realm: 'sunbird', ids: ['a', 'b'], dryRun: false }, deps(kc, dir)).then(
      () => assert.fail('eleven 401s must stop'),
      (e: unknown) => e as DeleteBlockStopped,
    );
    assert.deepEqual(err.partial.deleted, ['a']);
    assert.match(err.message, /401 Unauthorized 11 times in a row/);
  });

  test('SQL store: a role granted between the re-check and the delete is caught under the lock', async () => {
    const { kc, dir } = realm();
    const sql = new MemorySqlStore(kc);
    kc.beforeDelete = (id) => {
      if (id === 'u-normal-2') kc.users.get(id)!.inherited = ['admin'];
    };
    const r = await deleteBlock(
      { realm: 'sunbird', ids: ['u-normal-1', 'u-normal-2'], dryRun: false },
      deps(kc, dir, () => sql),
    );
    assert.deepEqual(r.deleted, ['u-normal-1']);
    assert.deepEqual(r.skippedProtected, ['u-normal-2']);
    assert.ok(kc.users.has('u-normal-2'));
    assert.deepEqual(
      r.warnings,
      ['KEYCLOAK MUST BE RESTARTED (memory store)'],
      'after SQL deletions the store’s warning is passed on',
    );
  });

  test('SQL store: a rolled-back block fails every id, retryably, and deletes nothing', async () => {
    const { kc, dir } = realm();
    const sql = new MemorySqlStore(kc);
    sql.failWith = 'deadlock detected';
    const r = await deleteBlock(
      { realm: 'sunbird', ids: ['u-normal-1'], dryRun: false },
      deps(kc, dir, () => sql),
    );
    assert.deepEqual(r.failed, [
      { id: 'u-normal-1', error: 'block rolled back: deadlock detected', retryable: true },
    ]);
    assert.deepEqual(r.warnings, []);
  });

  test('ids are trimmed and de-duplicated; a block of nothing does nothing', async () => {
    const { kc, dir } = realm();
    const r = await deleteBlock(
      { realm: 'sunbird', ids: [' u-normal-1', 'u-normal-1 ', ''], dryRun: false },
      deps(kc, dir),
    );
    assert.deepEqual(r.deleted, ['u-normal-1']);
    const empty = await deleteBlock({ realm: 'sunbird', ids: [' '], dryRun: false }, deps(kc, dir, noStore));
    assert.deepEqual(empty.deleted, []);
  });

  test('without a protected role name nothing is deleted at all', async () => {
    const { kc, dir } = realm();
    await assert.rejects(
      deleteBlock(
        { realm: 'sunbird', ids: ['u-normal-1'], dryRun: false },
        { ...deps(kc, dir), protectedRoles: [] },
      ),
      /at least one protected role/,
    );
    assert.ok(kc.users.has('u-normal-1'));
  });
});

function stageDeps(
  kc: MemoryKeycloak,
  dir: MemoryDirectory,
): DeleteStageDeps & { ledger: MemoryRunLedger; records: MemoryDeletionRecords } {
  return { ...deps(kc, dir), ledger: new MemoryRunLedger(), records: new MemoryDeletionRecords() };
}

async function rowsOf(d: ReturnType<typeof stageDeps>, runId = 'kcdel-1') {
  const rows = [];
  for await (const r of runDeletionRows(d.ledger, d.records, runId)) rows.push(r);
  return rows;
}

describe('the delete stage', () => {
  test('each id’s outcome and the block’s row are recorded', async () => {
    const { kc, dir } = realm();
    const d = stageDeps(kc, dir);
    await processDeleteBlock(block(['u-normal-1', 'u-admin-group', 'ghost']), d);
    const outcomes = Object.fromEntries((await rowsOf(d)).map((r) => [r.id, r.outcome]));
    assert.deepEqual(outcomes, {
      'u-normal-1': 'deleted',
      'u-admin-group': 'skipped-protected',
      ghost: 'not-found',
    });
    const [b] = await collect(d.ledger.blocks('kcdel-1', DELETE_STAGE));
    assert.equal(b?.status, 'succeeded');
    assert.deepEqual(await deletionCounts(d.ledger, d.records, 'kcdel-1'), {
      deleted: 1,
      'skipped-protected': 1,
      'not-found': 1,
    });
  });

  test('a block without a realm is split by each user’s realm now; unknown ids are not found', async () => {
    const { kc, dir } = realm();
    const d = stageDeps(kc, dir);
    const { context: _none, ...noRealm } = block(['u-normal-1', 'u-other-realm', 'ghost']);
    await processDeleteBlock(noRealm, d);
    const outcomes = Object.fromEntries((await rowsOf(d)).map((r) => [r.id, [r.outcome, r.realm]]));
    assert.deepEqual(outcomes, {
      'u-normal-1': ['deleted', 'sunbird'],
      'u-other-realm': ['deleted', 'other'],
      ghost: ['not-found', null],
    });
  });

  test('a block of a run that did not ask for deletion is refused, whatever queue it came from', async () => {
    const { kc, dir } = realm();
    const b = block(['u-normal-1']);
    const { next: _n, ...plainRun } = b.run;
    await assert.rejects(processDeleteBlock({ ...b, run: plainRun }, stageDeps(kc, dir)), MessageError);
    assert.ok(kc.users.has('u-normal-1'));
  });

  test('a redelivered block never downgrades "deleted" to "not found"', async () => {
    const { kc, dir } = realm();
    const d = stageDeps(kc, dir);
    await processDeleteBlock(block(['u-normal-1']), d);
    await processDeleteBlock(block(['u-normal-1']), d);
    assert.deepEqual(
      (await rowsOf(d)).map((r) => r.outcome),
      ['deleted'],
    );
  });

  test('a 500 makes the block worth another delivery; a protected skip does not', async () => {
    const { kc, dir } = realm();
    kc.answers.set('u-normal-1', [500]);
    const d = stageDeps(kc, dir);
    assert.equal((await processDeleteBlock(block(['u-normal-1']), d)).retryable, true);
    assert.equal((await processDeleteBlock(block(['u-admin-group'], { seq: 1 }), d)).retryable, false);
  });

  test('403: the stage stops and records every id of the block, done or not attempted', async () => {
    const { kc, dir } = realm();
    kc.answers.set('u-normal-2', [403]);
    const d = stageDeps(kc, dir);
    const err = await processDeleteBlock(block(['u-normal-1', 'u-normal-2']), d).then(
      () => assert.fail('403 stops'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeleteStageStopped);
    assert.equal(err.kind, 'credentials-refused');
    const rows = Object.fromEntries((await rowsOf(d)).map((r) => [r.id, r.outcome]));
    assert.deepEqual(rows, { 'u-normal-1': 'deleted', 'u-normal-2': 'failed' });
  });

  test('a lost database mid-block: the unsettled ids are recorded as failed and the error goes back for redelivery', async () => {
    const { kc, dir } = realm();
    kc.lookup = async () => {
      throw new Error('connection terminated');
    };
    const d = stageDeps(kc, dir);
    await assert.rejects(processDeleteBlock(block(['u-normal-1']), d), /connection terminated/);
    const [row] = await rowsOf(d);
    assert.deepEqual([row?.outcome, row?.error], ['failed', 'connection terminated']);
  });

  test('after a stop, later blocks are not attempted: recorded as such locally, left for redelivery on SQS', async () => {
    for (const recordNotAttempted of [true, false]) {
      const { kc, dir } = realm();
      kc.answers.set('u-normal-1', [403]);
      const d = stageDeps(kc, dir);
      const stage = new DeleteStage(d, { recordNotAttempted });
      const first = await stage.handle(block(['u-normal-1']));
      assert.match(first.stopped ?? '', /403/);
      const second = await stage.handle(block(['u-normal-2'], { seq: 1 }));
      assert.match(second.rows[0]?.error ?? '', /^not attempted: run stopped: .*403/);
      assert.ok(kc.users.has('u-normal-2'));
      const recorded = (await rowsOf(d)).map((r) => r.id);
      assert.deepEqual(recorded, recordNotAttempted ? ['u-normal-1', 'u-normal-2'] : ['u-normal-1']);
    }
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function request(over: Partial<KeycloakDeletionRequest> = {}): KeycloakDeletionRequest {
  return {
    realm: 'sunbird',
    protectedRoles: ROLES,
    limit: 100,
    keyspace: 'sunbird',
    mode: 'admin-api',
    dryRun: false,
    verify: false,
    blockSize: 1,
    sleepMs: 0,
    source: 'test',
    ...over,
  };
}

describe('starting and running a deletion', () => {
  test('the request follows the configuration; a console payload overrides it', () => {
    const cfg = loadFlatConfig({
      env: {},
      overrides: { KEYCLOAK_REALM: 'sunbird', SYNC_BLOCK_SIZE: '0', SYNC_SLEEP_TIME: '-1' },
    });
    const req = deletionRequest(cfg, { source: 's', over: { limit: 5, dryRun: false } });
    assert.deepEqual(
      [req.realm, req.limit, req.dryRun, req.blockSize, req.sleepMs],
      ['sunbird', 5, false, 100, 10_000],
    );
  });

  test('the candidates travel as a sync run that goes on to the delete stage, one realm per block', async () => {
    const { kc, dir } = realm();
    const prepared = await prepareSelection(kc, dir, { protectedRoles: ROLES, limit: 100 });
    const req = deletionRunRequest(request({ realm: undefined, blockSize: 10 }), prepared);
    assert.equal(req.next, DELETE_STAGE);
    assert.equal(req.runIdPrefix, 'kcdel');
    assert.deepEqual(
      req.groups?.map((g) => [g.context?.realm, g.ids]),
      [
        ['other', ['u-other-realm']],
        ['sunbird', ['u-normal-1', 'u-normal-2']],
      ],
    );
    const q = new MemoryQueue(100);
    const started = await startKeycloakDeletion(request({ realm: undefined, blockSize: 10 }), {
      users: kc,
      directory: dir,
      ids: new MemoryIdSource({}),
      ledger: new MemoryRunLedger(),
      scanQueue: q,
      blockQueue: q,
    });
    assert.match(started.runId, /^kcdel-user-/);
    q.close();
    const blocks: Block[] = [];
    for (let b = await q.take(); b; b = await q.take()) blocks.push(blockSchema.parse(JSON.parse(b)));
    assert.deepEqual(
      blocks.map((b) => b.context?.realm),
      ['other', 'sunbird'],
    );
  });

  test('a deletion start repeated with its key selects nothing and returns the first run', async () => {
    const { kc, dir } = realm();
    const q = new MemoryQueue(100);
    const ledger = new MemoryRunLedger();
    let selections = 0;
    const counting = new Proxy(kc, {
      get: (t, p) => {
        if (p === 'select') selections++;
        const v = Reflect.get(t, p);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    const deps = {
      users: counting,
      directory: dir,
      ids: new MemoryIdSource({}),
      ledger,
      scanQueue: q,
      blockQueue: q,
    };
    const req = { ...request({ realm: undefined, blockSize: 10 }), idempotencyKey: 'key:evt-1' };
    const first = await startKeycloakDeletion(req, deps);
    const again = await startKeycloakDeletion(req, deps);
    assert.ok(first.prepared && first.blocks === 2);
    assert.deepEqual(
      [again.runId, again.duplicate, again.blocks, again.prepared],
      [first.runId, 'started', 0, undefined],
    );
    assert.equal(selections, 1, 'the repeat did not query Keycloak');
    assert.equal(q.size, 2);
    const other = await startKeycloakDeletion({ ...req, idempotencyKey: 'key:evt-2' }, deps);
    assert.notEqual(other.runId, first.runId);
    assert.match(other.runId, /^kcdel-user-/);
  });

  test('the whole job here: synced first, then deleted; the lists say what happened to each user', async () => {
    const { kc, dir } = realm();
    const d = stageDeps(kc, dir);
    const api = new FakeSyncApi();
    const r = await runDeletionLocally(request(), {
      sync: { ids: new MemoryIdSource({}), ledger: d.ledger, syncApi: api },
      stage: d,
    });
    assert.deepEqual(api.ids.sort(), ['u-normal-1', 'u-normal-2']);
    assert.deepEqual(r.lists.deleted.sort(), ['u-normal-1', 'u-normal-2']);
    assert.deepEqual(r.lists.skippedProtected.sort(), ['u-admin-group', 'u-service']);
    assert.deepEqual(r.lists.skipped, [{ id: 'u-not-in-cassandra', reason: 'not in Cassandra' }]);
    assert.equal(r.stoppedBy, undefined);
    const dirOut = await mkdtemp(join(tmpdir(), 'kc-lists-'));
    const files = await writeLists(dirOut, r.lists, false);
    assert.equal(files.length, 5);
    assert.equal(await readFile(join(dirOut, LIST_FILES.deleted), 'utf8'), 'u-normal-1\nu-normal-2\n');
  });

  test('a block the Sync API refused is never deleted: its ids are failures to retry', async () => {
    const { kc, dir } = realm();
    const d = stageDeps(kc, dir);
    const api = new FakeSyncApi({
      answer: (c) => (c.ids.includes('u-normal-2') ? { status: 500 } : { status: 200 }),
    });
    const r = await runDeletionLocally(request(), {
      sync: { ids: new MemoryIdSource({}), ledger: d.ledger, syncApi: api },
      stage: d,
    });
    assert.deepEqual(r.lists.deleted, ['u-normal-1']);
    assert.ok(kc.users.has('u-normal-2'));
    assert.match(
      r.lists.failed.find((f) => f.id === 'u-normal-2')?.error ?? '',
      /^not deleted: sync failed: HTTP 500/,
    );
  });

  test('a dry run syncs nothing (the Sync API is not called) and lists who would be deleted', async () => {
    const { kc, dir } = realm();
    const d = { ...stageDeps(kc, dir), store: noStore };
    const api = new FakeSyncApi();
    const r = await runDeletionLocally(request({ dryRun: true }), {
      sync: { ids: new MemoryIdSource({}), ledger: d.ledger, syncApi: api },
      stage: d,
    });
    assert.equal(api.calls.length, 0);
    assert.deepEqual(r.lists.wouldDelete.sort(), ['u-normal-1', 'u-normal-2']);
    assert.equal(kc.users.size, 8);
  });

  test('a 403 stops the whole job: later blocks are neither synced nor deleted, and are listed as failed', async () => {
    const kc = new MemoryKeycloak(
      ['a', 'b', 'c', 'd'].map((id) => ({ id, realm: 'sunbird', direct: ['x'] })),
    );
    kc.answers.set('a', [403]);
    const d = stageDeps(kc, new MemoryDirectory(['a', 'b', 'c', 'd']));
    const api = new FakeSyncApi();
    const r = await runDeletionLocally(request({ sleepMs: 0 }), {
      sync: { ids: new MemoryIdSource({}), ledger: d.ledger, syncApi: api },
      stage: d,
    });
    assert.match(r.stoppedBy ?? '', /403/);
    assert.deepEqual(r.lists.deleted, []);
    assert.deepEqual(r.lists.failed.map((f) => f.id).sort(), ['a', 'b', 'c', 'd']);
    assert.ok(api.calls.length < 4, `blocks after the stop were not synced (${api.calls.length} calls)`);
    assert.equal(kc.users.size, 4);
  });
});

describe('the delete function’s handler', () => {
  const context = { getRemainingTimeInMillis: () => 60_000, awsRequestId: 'req-1' } as unknown as Context;
  const logger = createLogger({ serviceName: 'test', level: 'SILENT' });

  test('403 on the first record: both records of the batch come back, the second without an attempt', async () => {
    const { kc, dir } = realm();
    kc.answers.set('u-normal-1', [403]);
    const d = stageDeps(kc, dir);
    const handler = createDeleteHandler({ stageDeps: () => d, logger });
    const event: SQSEvent = toSqsEvent(
      [block(['u-normal-1']), block(['u-normal-2'], { seq: 1 })].map((b, i) => ({
        MessageId: `m${i}`,
        ReceiptHandle: `h${i}`,
        Body: JSON.stringify(b),
      })),
      'arn:aws:sqs:us-east-1:000000000000:delete',
      'us-east-1',
    );
    const res = await handler(event, context);
    assert.deepEqual(res.batchItemFailures, [{ itemIdentifier: 'm0' }, { itemIdentifier: 'm1' }]);
    assert.deepEqual(kc.deleteCalls, ['u-normal-1']);
    assert.ok(kc.users.has('u-normal-2'));
  });

  test('near the timeout, no block is started: the rest come back unstarted, their users untouched', async () => {
    const { kc, dir } = realm();
    const handler = createDeleteHandler({ stageDeps: () => stageDeps(kc, dir), logger, reserveMs: 30_000 });
    const left = [45_000, 29_999];
    const ctx = {
      awsRequestId: 'r',
      getRemainingTimeInMillis: () => left.shift() ?? 0,
    } as unknown as Context;
    const event = toSqsEvent(
      [block(['u-normal-1']), block(['u-normal-2'], { seq: 1 })].map((b, i) => ({
        MessageId: `m${i}`,
        ReceiptHandle: `h${i}`,
        Body: JSON.stringify(b),
      })),
      'arn:aws:sqs:us-east-1:000000000000:delete',
      'us-east-1',
    );
    const res = await handler(event, ctx);
    assert.deepEqual(res.batchItemFailures, [{ itemIdentifier: 'm1' }]);
    assert.deepEqual(kc.deleteCalls, ['u-normal-1']);
    assert.ok(kc.users.has('u-normal-2'));
  });

  test('a malformed record is reported alone; the rest of the batch is deleted', async () => {
    const { kc, dir } = realm();
    const handler = createDeleteHandler({ stageDeps: () => stageDeps(kc, dir), logger });
    const event = toSqsEvent(
      [
        { MessageId: 'bad', ReceiptHandle: 'h0', Body: '{"type":"block"' },
        { MessageId: 'good', ReceiptHandle: 'h1', Body: JSON.stringify(block(['u-normal-1'])) },
      ],
      'arn:aws:sqs:us-east-1:000000000000:delete',
      'us-east-1',
    );
    const res = await handler(event, context);
    assert.deepEqual(res.batchItemFailures, [{ itemIdentifier: 'bad' }]);
    assert.equal(kc.users.has('u-normal-1'), false);
  });
});
