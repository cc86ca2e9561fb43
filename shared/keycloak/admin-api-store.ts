/**
 * The Admin API user store (deletion mode `admin-api`, the default): Keycloak runs its own removal (caches,
 * sessions, events). The re-check happened just before, in the delete-block core; a user that vanished in
 * between is a 404 (not found). A 403 or a refused login stops the run (`DeletionStopped`).
 */
import type { KeycloakAdminApi } from '#shared/keycloak/admin-api.ts';
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
}
