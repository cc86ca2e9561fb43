/**
 * In-memory adapters of the Keycloak job's ports, so the safety rules run in milliseconds in unit tests: a
 * Keycloak whose users hold roles directly or "in any way" (the effective roles the database adapter works
 * out from groups and composites), whose Admin API answers from a script, and the Sunbird directory and
 * deletion records in sets and maps.
 */
import { DeletionStopped, KeycloakDataError, KeycloakRefusedError } from '#shared/keycloak/errors.ts';
import type {
  DeletionOutcome,
  DeletionRecords,
  DeletionRow,
  FailedId,
  KeycloakUserRow,
  KeycloakUsers,
  Recheck,
  SelectOptions,
  StoreDeleteResult,
  UserDirectory,
  UserStore,
} from '#shared/keycloak/ports.ts';

export interface MemoryUser {
  id: string;
  realm: string;
  serviceAccount?: boolean;
  /** Roles mapped to the user directly (the original query's condition). */
  direct: string[];
  /** Roles held through groups, parent groups or composites (the database adapter resolves these). */
  inherited?: string[];
}

/** What the Admin API answers to DELETE of one id; default 204. */
export type AdminAnswer = 204 | 404 | 401 | 403 | 500;

export class MemoryKeycloak implements KeycloakUsers, UserStore {
  readonly mode = 'admin-api';
  readonly users = new Map<string, MemoryUser>();
  readonly realms = new Map<string, string>();
  /** Per-id scripted answers of the Admin API (consumed in order), then 204. */
  readonly answers = new Map<string, AdminAnswer[]>();
  /** Every DELETE the Admin API received. */
  readonly deleteCalls: string[] = [];
  /** Called just before each deletion: lets a test change a user between the re-check and the delete. */
  beforeDelete?: (id: string) => void;
  #unauthorizedInARow = 0;

  constructor(users: MemoryUser[] = []) {
    for (const u of users) this.add(u);
  }

  add(user: MemoryUser): void {
    if (!this.realms.has(user.realm)) this.realms.set(user.realm, `realm-id-${user.realm}`);
    this.users.set(user.id, { ...user });
  }

  #row(u: MemoryUser): KeycloakUserRow {
    return {
      id: u.id,
      realmId: this.realms.get(u.realm)!,
      realm: u.realm,
      serviceAccount: u.serviceAccount ?? false,
      hasRoleMapping: u.direct.length > 0,
    };
  }

  async select(opts: SelectOptions): Promise<KeycloakUserRow[]> {
    if (opts.realm) await this.realmId(opts.realm);
    const only = opts.ids ? new Set(opts.ids) : undefined;
    return [...this.users.values()]
      .filter((u) => u.direct.length > 0 && !u.direct.some((r) => opts.protectedRoles.includes(r)))
      .filter((u) => !opts.realm || u.realm === opts.realm)
      .filter((u) => !only || only.has(u.id))
      .filter((u) => !opts.afterId || u.id > opts.afterId)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, opts.limit)
      .map((u) => this.#row(u));
  }

  async lookup(ids: readonly string[]): Promise<Map<string, KeycloakUserRow>> {
    const out = new Map<string, KeycloakUserRow>();
    for (const id of ids) {
      const u = this.users.get(id);
      if (u) out.set(id, this.#row(u));
    }
    return out;
  }

  async protectedAmong(ids: readonly string[], protectedRoles: readonly string[]): Promise<Set<string>> {
    return new Set(
      ids.filter((id) => {
        const u = this.users.get(id);
        return u && [...u.direct, ...(u.inherited ?? [])].some((r) => protectedRoles.includes(r));
      }),
    );
  }

  async realmId(realm: string): Promise<string> {
    const id = this.realms.get(realm);
    if (!id) throw new KeycloakDataError(`Keycloak realm "${realm}" does not exist`);
    return id;
  }

  /** One DELETE through the scripted Admin API; the answer's meaning is the real adapter's. */
  #deleteOne(realm: string, id: string, out: StoreDeleteResult): void {
    for (;;) {
      this.deleteCalls.push(id);
      const answer = this.answers.get(id)?.shift() ?? 204;
      if (answer === 401) {
        if (++this.#unauthorizedInARow > 10) {
          throw new KeycloakRefusedError(
            `Keycloak answered 401 Unauthorized ${this.#unauthorizedInARow} times in a row`,
          );
        }
        continue; // a fresh token, the same id again
      }
      this.#unauthorizedInARow = 0;
      if (answer === 403)
        throw new KeycloakRefusedError('Keycloak answered 403 Forbidden: the admin lacks manage-users');
      if (answer === 500) out.failed.push({ id, error: 'HTTP 500', retryable: true } satisfies FailedId);
      else if (answer === 404 || this.users.get(id)?.realm !== realm) out.notFound.push(id);
      else {
        this.users.delete(id);
        out.deleted.push(id);
      }
      return;
    }
  }

  async delete(
    realm: { name: string; id: string },
    ids: readonly string[],
    _rule: Recheck,
  ): Promise<StoreDeleteResult> {
    const out: StoreDeleteResult = { deleted: [], notFound: [], refused: [], failed: [] };
    for (const id of ids) {
      this.beforeDelete?.(id);
      try {
        this.#deleteOne(realm.name, id, out);
      } catch (err) {
        if (err instanceof KeycloakRefusedError) throw new DeletionStopped(err, out);
        throw err;
      }
    }
    return out;
  }

  async afterDelete(): Promise<string[]> {
    return [];
  }

  /** The preflight answers as the real store does: a refused login, or no manage-users, is refused. */
  preflight: 'ok' | 'login-refused' | 'no-manage-users' = 'ok';
  /** Preflight checks made, with their samples. */
  readonly checks: Array<ReadonlyArray<{ realm: string; id: string }>> = [];

  async check(samples: ReadonlyArray<{ realm: string; id: string }>): Promise<void> {
    this.checks.push(samples);
    if (this.preflight === 'login-refused')
      throw new KeycloakRefusedError('Keycloak refused the admin login (password grant): HTTP 401');
    if (this.preflight === 'no-manage-users' && samples.length > 0)
      throw new KeycloakRefusedError(
        `the Keycloak admin may not delete users of realm "${samples[0]!.realm}": no manage-users privilege`,
      );
  }
}

/** The SQL store's semantics on the same memory: the re-check runs at the deletion itself (rows locked). */
export class MemorySqlStore implements UserStore {
  readonly mode = 'sql';
  readonly #kc: MemoryKeycloak;
  /** Fail every block (a rolled-back transaction). */
  failWith?: string;

  constructor(kc: MemoryKeycloak) {
    this.#kc = kc;
  }

  async delete(
    realm: { name: string; id: string },
    ids: readonly string[],
    rule: Recheck,
  ): Promise<StoreDeleteResult> {
    for (const id of ids) this.#kc.beforeDelete?.(id);
    if (this.failWith) {
      const error = `block rolled back: ${this.failWith}`;
      return {
        deleted: [],
        notFound: [],
        refused: [],
        failed: ids.map((id) => ({ id, error, retryable: true })),
      };
    }
    const rows = await this.#kc.lookup(ids);
    const locked = ids.filter((id) => rows.get(id)?.realmId === realm.id);
    const nowProtected = await this.#kc.protectedAmong(locked, rule.protectedRoles);
    const allowed = locked.filter((id) => rule.stillDeletable(rows.get(id), nowProtected.has(id)));
    for (const id of allowed) this.#kc.users.delete(id);
    return {
      deleted: allowed,
      notFound: ids.filter((id) => !locked.includes(id)),
      refused: locked.filter((id) => !allowed.includes(id)),
      failed: [],
    };
  }

  async afterDelete(): Promise<string[]> {
    return ['KEYCLOAK MUST BE RESTARTED (memory store)'];
  }

  async check(): Promise<void> {}
}

/** The Sunbird users that exist (sunbird.user). */
export class MemoryDirectory implements UserDirectory {
  readonly ids: Set<string>;
  constructor(ids: Iterable<string> = []) {
    this.ids = new Set(ids);
  }
  async existing(ids: readonly string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.ids.has(id)));
  }
}

export class MemoryDeletionRecords implements DeletionRecords {
  readonly #rows = new Map<string, DeletionRow>();

  async outcomes(runId: string, rangeNo: number, seq: number): Promise<Map<string, DeletionOutcome>> {
    const out = new Map<string, DeletionOutcome>();
    for (const [key, r] of this.#rows)
      if (key.startsWith(`${runId}/${rangeNo}/${seq}/`)) out.set(r.id, r.outcome);
    return out;
  }

  async write(runId: string, rows: readonly DeletionRow[]): Promise<void> {
    for (const r of rows) {
      const { retryable: _notKept, ...kept } = r;
      this.#rows.set(`${runId}/${r.rangeNo}/${r.seq}/${r.id}`, kept);
    }
  }

  async *rows(
    runId: string,
    blocks: ReadonlyArray<{ rangeNo: number; seq: number }>,
  ): AsyncGenerator<DeletionRow> {
    for (const b of blocks) {
      for (const [key, r] of this.#rows) if (key.startsWith(`${runId}/${b.rangeNo}/${b.seq}/`)) yield r;
    }
  }
}
