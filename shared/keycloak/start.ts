/**
 * Starting a Keycloak deletion run: select the candidates (read-only), then hand them to the sync chain as
 * an id run of job `delete-keycloak-users`. Blocks are synced first; only accepted blocks reach the delete
 * stage (see shared/sync/worker.ts), and every safety rule is checked again there.
 */
import type { PgPool } from '#shared/clients/postgres.ts';
import {
  type CandidateSelection,
  type Excluded,
  keycloakUsers,
  protectedAmong,
  readOnly,
  selectCandidates,
} from '#shared/keycloak/candidates.ts';
import type { DeleteMode } from '#shared/keycloak/delete-block.ts';
import type { UserDirectory } from '#shared/keycloak/user-directory.ts';
import type { MessageQueue } from '#shared/queue.ts';
import { type StartedRun, type StartRunDeps, type StartRunRequest, startRun } from '#shared/sync/run.ts';

export interface KeycloakDeletionRequest {
  /** Realm name; empty or undefined = every realm. */
  realm?: string;
  limit: number;
  protectedRoles: readonly string[];
  /** The id file: an extra filter on the selection, never a way around it. */
  ids?: readonly string[];
  /** Keyset paging: continue after the last id an earlier run selected. */
  afterId?: string;
  /** Keyspace of `sunbird.user`. */
  keyspace: string;
  mode: DeleteMode;
  dryRun: boolean;
  verify: boolean;
  blockSize: number;
  sleepMs: number;
  runId?: string;
  source: string;
}

export interface KeycloakSelectionDeps {
  pool: PgPool;
  directory: UserDirectory;
}

export interface PreparedDeletion {
  selection: CandidateSelection;
  /** Id-file ids that are no user of Keycloak (or of the chosen realm) at all. */
  notInKeycloak: string[];
  /** Ids the selection left out for a safety reason (protected, service account, not in Cassandra…). */
  excluded: Excluded[];
  /** The realm of every candidate, put on the blocks. */
  realmOf: Map<string, string>;
  runRequest: StartRunRequest;
}

export async function prepareKeycloakDeletion(
  req: KeycloakDeletionRequest,
  deps: KeycloakSelectionDeps,
): Promise<PreparedDeletion> {
  const selection = await selectCandidates(deps.pool, deps.directory, {
    ...(req.realm ? { realm: req.realm } : {}),
    protectedRoles: req.protectedRoles,
    limit: req.limit,
    ...(req.ids ? { ids: req.ids } : {}),
    ...(req.afterId ? { afterId: req.afterId } : {}),
  });
  const notSelected = selection.excluded.filter((e) => e.reason === 'not-selected').map((e) => e.id);
  const known = notSelected.length
    ? await readOnly(deps.pool, (db) => keycloakUsers(db, notSelected))
    : new Map();
  const notInKeycloak = notSelected.filter((id) => {
    const u = known.get(id);
    return !u || (req.realm !== undefined && req.realm !== '' && u.realm !== req.realm);
  });
  const unknown = new Set(notInKeycloak);
  // An id-file user the query left out because it holds a protected role directly is reported as such.
  const knownLeftOut = notSelected.filter((id) => !unknown.has(id));
  const protectedIds = knownLeftOut.length
    ? await readOnly(deps.pool, (db) => protectedAmong(db, knownLeftOut, req.protectedRoles))
    : new Set<string>();
  const excluded = selection.excluded
    .filter((e) => !unknown.has(e.id))
    .map((e): Excluded => (protectedIds.has(e.id) ? { ...e, reason: 'protected-role' } : e));
  // Realm, then id: blocks rarely straddle two realms, and the order is the same on every run.
  const candidates = [...selection.candidates].sort((a, b) =>
    a.realm === b.realm ? (a.id < b.id ? -1 : 1) : a.realm < b.realm ? -1 : 1,
  );
  const realmOf = new Map(candidates.map((c) => [c.id, c.realm]));
  const runRequest: StartRunRequest = {
    job: 'delete-keycloak-users',
    objectType: 'user',
    table: 'user',
    keyspace: req.keyspace,
    dryRun: req.dryRun,
    verify: req.verify,
    blockSize: req.blockSize,
    sleepMs: req.sleepMs,
    ids: candidates.map((c) => c.id),
    source: req.source,
    ...(req.runId ? { runId: req.runId } : {}),
    params: {
      realm: req.realm ?? '',
      limit: req.limit,
      protectedRoles: req.protectedRoles,
      mode: req.mode,
      idFile: Boolean(req.ids),
      afterId: req.afterId ?? null,
      selected: selection.selected,
      lastSelectedId: selection.lastSelectedId ?? null,
      excluded: excluded.length,
      notInKeycloak: notInKeycloak.length,
    },
  };
  return { selection, notInKeycloak, excluded, realmOf, runRequest };
}

/**
 * Puts the realm on each block that passes through (the chain's `startRun` knows only ids). A block whose
 * ids span realms keeps none; the delete stage then splits it by each user's current realm.
 */
export function withRealms(queue: MessageQueue, realmOf: ReadonlyMap<string, string>): MessageQueue {
  return {
    send: (bodies) =>
      queue.send(
        bodies.map((body) => {
          const msg = JSON.parse(body) as { type?: string; ids?: string[]; realm?: string };
          if (msg.type !== 'block' || msg.realm || !msg.ids) return body;
          const realms = new Set(msg.ids.map((id) => realmOf.get(id)));
          const [realm] = realms;
          return realms.size === 1 && realm ? JSON.stringify({ ...msg, realm }) : body;
        }),
      ),
  };
}

export interface StartedDeletion extends StartedRun {
  prepared: PreparedDeletion;
}

/** Selects the candidates and starts the chain (Lambda fan-out, or the CLI's `--target aws`). */
export async function startKeycloakDeletion(
  req: KeycloakDeletionRequest,
  deps: KeycloakSelectionDeps & StartRunDeps,
): Promise<StartedDeletion> {
  const prepared = await prepareKeycloakDeletion(req, deps);
  const started = await startRun(prepared.runRequest, {
    cassandra: deps.cassandra,
    ledger: deps.ledger,
    scanQueue: deps.scanQueue,
    blockQueue: withRealms(deps.blockQueue, prepared.realmOf),
  });
  return { ...started, prepared };
}
