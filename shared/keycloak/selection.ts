/**
 * Which Keycloak users may be deleted.
 *
 * The original job's rule, kept: users with at least one direct role mapping and no role named `admin`,
 * at most 20000, and only those that also exist in Cassandra `sunbird.user`. Stricter than the original
 * (deleting the wrong user is the worst thing this job can do):
 * - a protected role also protects when it is held through a group (or a parent group) or inside a
 *   composite role, not only as a direct mapping;
 * - service-account users (they belong to a client) are never candidates.
 */
import { KeycloakDataError } from '#shared/keycloak/errors.ts';
import type { KeycloakUserRow, KeycloakUsers, SelectOptions, UserDirectory } from '#shared/keycloak/ports.ts';

export interface Candidate {
  id: string;
  /** Realm name. */
  realm: string;
}

export type ExclusionReason =
  | 'protected-role'
  | 'service-account'
  | 'not-in-cassandra'
  /** An id from the id file that the Keycloak query did not select (unknown, no role, other realm…). */
  | 'not-selected';

export interface Excluded {
  id: string;
  realm?: string;
  reason: ExclusionReason;
}

export interface CandidateSelection {
  candidates: Candidate[];
  excluded: Excluded[];
  /** Rows the Keycloak query returned (before protection and Cassandra checks). */
  selected: number;
  /** The greatest id the query returned; pass as `afterId` to continue past it. */
  lastSelectedId?: string;
}

export function validateSelectOptions(opts: SelectOptions): void {
  if (!Number.isInteger(opts.limit) || opts.limit < 1)
    throw new KeycloakDataError('limit must be a whole number ≥ 1');
  if (opts.protectedRoles.filter((r) => r.trim()).length === 0) {
    throw new KeycloakDataError('at least one protected role name is required');
  }
}

export async function selectCandidates(
  users: KeycloakUsers,
  directory: UserDirectory,
  opts: SelectOptions,
): Promise<CandidateSelection> {
  validateSelectOptions(opts);
  const rows = await users.select(opts);
  const protectedIds = await users.protectedAmong(
    rows.map((r) => r.id),
    opts.protectedRoles,
  );
  const excluded: Excluded[] = [];
  const eligible: KeycloakUserRow[] = [];
  for (const row of rows) {
    if (protectedIds.has(row.id)) excluded.push({ id: row.id, realm: row.realm, reason: 'protected-role' });
    else if (row.serviceAccount) excluded.push({ id: row.id, realm: row.realm, reason: 'service-account' });
    else eligible.push(row);
  }
  const inCassandra = await directory.existing(eligible.map((r) => r.id));
  const candidates: Candidate[] = [];
  for (const row of eligible) {
    if (inCassandra.has(row.id)) candidates.push({ id: row.id, realm: row.realm });
    else excluded.push({ id: row.id, realm: row.realm, reason: 'not-in-cassandra' });
  }
  if (opts.ids) {
    const selected = new Set(rows.map((r) => r.id));
    for (const id of new Set(opts.ids)) if (!selected.has(id)) excluded.push({ id, reason: 'not-selected' });
  }
  const last = rows.at(-1);
  return { candidates, excluded, selected: rows.length, ...(last ? { lastSelectedId: last.id } : {}) };
}

export interface PreparedSelection {
  selection: CandidateSelection;
  /** Id-file ids that are no user of Keycloak (or of the chosen realm) at all. */
  notInKeycloak: string[];
  /** Ids the selection left out for a safety reason (protected, service account, not in Cassandra…). */
  excluded: Excluded[];
  /** The candidates by realm, in realm then id order (the same on every run). */
  byRealm: Map<string, string[]>;
}

/**
 * The selection, with the id file's leftovers explained: an id the query did not select is either no
 * Keycloak user (of the realm) at all, or one holding a protected role directly (reported as such).
 */
export async function prepareSelection(
  users: KeycloakUsers,
  directory: UserDirectory,
  opts: SelectOptions,
): Promise<PreparedSelection> {
  const selection = await selectCandidates(users, directory, opts);
  const notSelected = selection.excluded.filter((e) => e.reason === 'not-selected').map((e) => e.id);
  const known = await users.lookup(notSelected);
  const notInKeycloak = notSelected.filter((id) => {
    const u = known.get(id);
    return !u || (opts.realm !== undefined && opts.realm !== '' && u.realm !== opts.realm);
  });
  const unknown = new Set(notInKeycloak);
  const knownLeftOut = notSelected.filter((id) => !unknown.has(id));
  const protectedIds = await users.protectedAmong(knownLeftOut, opts.protectedRoles);
  const excluded = selection.excluded
    .filter((e) => !unknown.has(e.id))
    .map((e): Excluded => (protectedIds.has(e.id) ? { ...e, reason: 'protected-role' } : e));
  const byRealm = new Map<string, string[]>();
  const ordered = [...selection.candidates].sort((a, b) =>
    a.realm === b.realm ? (a.id < b.id ? -1 : 1) : a.realm < b.realm ? -1 : 1,
  );
  for (const c of ordered) {
    const list = byRealm.get(c.realm) ?? [];
    list.push(c.id);
    byRealm.set(c.realm, list);
  }
  return { selection, notInKeycloak, excluded, byRealm };
}
