/**
 * The Admin API user store (deletion mode `admin-api`, the default): Keycloak runs its own removal (caches,
 * sessions, events). The re-check happened just before, in the delete-block core; a user that vanished in
 * between is a 404 (not found). A 403 or a refused login stops the run (`DeletionStopped`) — and the
 * preflight (`check`) finds both before the run syncs or deletes anything.
 */
import type { KeycloakAdminApi } from '#shared/keycloak/admin-api.ts';
import { KeycloakRefusedError } from '#shared/keycloak/errors.ts';
import type { StoreDeleteResult, UserStore } from '#shared/keycloak/ports.ts';

export class AdminApiUserStore implements UserStore {
  readonly mode = 'admin-api';
  readonly #api: KeycloakAdminApi;

  constructor(api: KeycloakAdminApi) {
    this.#api = api;
  }

  async delete(realm: { name: string; id: string }, ids: readonly string[]): Promise<StoreDeleteResult> {
    const out = await this.#api.deleteUsers(realm.name, ids);
    return { ...out, refused: [] };
  }

  async afterDelete(): Promise<string[]> {
    return [];
  }

  /** An admin token, and Keycloak's word that the admin may manage (delete) a candidate of each realm. */
  async check(samples: ReadonlyArray<{ realm: string; id: string }>): Promise<void> {
    await this.#api.login();
    for (const { realm, id } of samples) {
      if ((await this.#api.mayManageUser(realm, id)) === false) {
        throw new KeycloakRefusedError(
          `the Keycloak admin may not delete users of realm "${realm}": Keycloak reports no manage-users privilege for them (grant the realm's manage-users role, e.g. realm-management or ${realm}-realm in master)`,
        );
      }
    }
  }
}
