/**
 * Starting a Keycloak deletion run: select the candidates (read-only), then hand them to the sync chain as
 * an id run whose accepted blocks go on to the delete stage (`next: "delete"`), each block carrying its
 * realm. Only blocks the Sync API accepted reach the delete stage, and every safety rule is checked again
 * there.
 */
import { effectivePacing, type FlatConfig } from '#shared/config.ts';
import { DELETE_STAGE } from '#shared/keycloak/delete-stage.ts';
import type { DeleteMode, KeycloakUsers, SelectOptions, UserDirectory } from '#shared/keycloak/ports.ts';
import { type PreparedSelection, prepareSelection } from '#shared/keycloak/selection.ts';
import {
  onceByKey,
  runSettingsOf,
  type StartedRun,
  type StartRunDeps,
  type StartRunRequest,
  startRun,
} from '#shared/sync/run.ts';

export const KEYCLOAK_JOB = 'delete-keycloak-users';

export interface KeycloakDeletionRequest extends SelectOptions {
  /** Keyspace of `sunbird.user`. */
  keyspace: string;
  mode: DeleteMode;
  dryRun: boolean;
  verify: boolean;
  blockSize: number;
  sleepMs: number;
  runId?: string;
  /** Makes the start idempotent (see `StartRunRequest.idempotencyKey`). */
  idempotencyKey?: string;
  source: string;
  /** Kept with the run in the ledger (e.g. where the CLI writes its files). */
  params?: Record<string, unknown>;
}

/** What a caller may set over the configuration (a console payload). */
export interface DeletionOverrides {
  realm?: string | undefined;
  limit?: number | undefined;
  dryRun?: boolean | undefined;
  verify?: boolean | undefined;
  blockSize?: number | undefined;
  sleepMs?: number | undefined;
  runId?: string | undefined;
}

/** The deletion request the configuration asks for; `ids` (the id file) only filters the candidates. */
export function deletionRequest(
  cfg: FlatConfig,
  opts: {
    source: string;
    ids?: string[] | undefined;
    afterId?: string | undefined;
    over?: DeletionOverrides;
  },
): KeycloakDeletionRequest {
  const over = opts.over ?? {};
  const realm = over.realm ?? cfg['keycloak.realm'];
  return {
    ...(realm ? { realm } : {}),
    limit: over.limit ?? cfg['keycloak.limit'],
    protectedRoles: cfg['keycloak.protectedRoles'],
    ...(opts.ids ? { ids: opts.ids } : {}),
    ...(opts.afterId ? { afterId: opts.afterId } : {}),
    keyspace: cfg['cassandra.keyspace'],
    mode: cfg['keycloak.deleteMode'],
    dryRun: over.dryRun ?? cfg['sync.dryRun'],
    verify: over.verify ?? cfg['sync.verify'],
    ...effectivePacing(over.blockSize ?? cfg['sync.blockSize'], over.sleepMs ?? cfg['sync.sleepMs']),
    ...(over.runId ? { runId: over.runId } : {}),
    source: opts.source,
  };
}

/** The sync run that carries the candidates: blocks per realm, going on to the delete stage. */
export function deletionRunRequest(
  req: KeycloakDeletionRequest,
  prepared: PreparedSelection,
): StartRunRequest {
  const { selection } = prepared;
  return {
    job: KEYCLOAK_JOB,
    runIdPrefix: 'kcdel',
    objectType: 'user',
    table: 'user',
    keyspace: req.keyspace,
    dryRun: req.dryRun,
    verify: req.verify,
    blockSize: req.blockSize,
    sleepMs: req.sleepMs,
    next: DELETE_STAGE,
    groups: [...prepared.byRealm].map(([realm, ids]) => ({ ids, context: { realm } })),
    source: req.source,
    ...(req.runId ? { runId: req.runId } : {}),
    ...(req.idempotencyKey ? { idempotencyKey: req.idempotencyKey } : {}),
    params: {
      ...req.params,
      realm: req.realm ?? '',
      limit: req.limit,
      protectedRoles: req.protectedRoles,
      mode: req.mode,
      idFile: Boolean(req.ids),
      afterId: req.afterId ?? null,
      selected: selection.selected,
      lastSelectedId: selection.lastSelectedId ?? null,
      excluded: prepared.excluded.length,
      notInKeycloak: prepared.notInKeycloak.length,
    },
  };
}

export interface SelectionDeps {
  users: KeycloakUsers;
  directory: UserDirectory;
}

export function prepareDeletion(
  req: KeycloakDeletionRequest,
  deps: SelectionDeps,
): Promise<PreparedSelection> {
  return prepareSelection(deps.users, deps.directory, req);
}

export interface StartedDeletion extends StartedRun {
  /** The selection; absent when the start was a repeat of an earlier one (nothing was selected). */
  prepared?: PreparedSelection;
}

/**
 * Selects the candidates and starts the chain (Lambda fan-out, or the CLI's `--target aws`). With an
 * idempotency key, the key is claimed before the selection, so a repeated start selects nothing.
 */
export function startKeycloakDeletion(
  req: KeycloakDeletionRequest,
  deps: SelectionDeps & StartRunDeps,
): Promise<StartedDeletion> {
  const { idempotencyKey, ...once } = req;
  const fresh = runSettingsOf(deletionRunRequest(once, EMPTY));
  return onceByKey(idempotencyKey, fresh, deps.ledger, async (runId) => {
    const prepared = await prepareDeletion(once, deps);
    const started = await startRun(deletionRunRequest({ ...once, runId }, prepared), deps);
    return { ...started, prepared };
  });
}

/** The selection of a repeated start, which selects nothing. */
const EMPTY: PreparedSelection = {
  byRealm: new Map(),
  excluded: [],
  notInKeycloak: [],
  selection: { candidates: [], excluded: [], selected: 0 },
};
