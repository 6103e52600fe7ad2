import * as settings from '../queries/repository-settings.js';
import { toSqlTime } from '../sql-time.js';
import type { StoreAccess } from './access.js';

/**
 * What people chose for each repository (`store.repositorySettings`), kept by repository name
 * so that it outlives the repository's index rows (see migration `0005`).
 */
export interface StoreRepositorySettings {
  /** The settings of repository `name`: the defaults (no `updatedAt`) when nobody set any. */
  get(name: string): Promise<settings.RepositorySettings>;
  /**
   * Sets the settings of repository `name` as `actor`, whether or not the repository holds
   * anything yet, and returns them as they were and as they are now.
   */
  set(
    name: string,
    change: settings.RepositorySettingsChange,
    actor: string,
    at?: Date,
  ): Promise<{ before: settings.RepositorySettings; after: settings.RepositorySettings }>;
}

/** @internal The `store.repositorySettings` facet. */
export function storeRepositorySettings(s: StoreAccess): StoreRepositorySettings {
  return {
    get: (name) => settings.getRepositorySettings(s.read, name),
    set: (name, change, actor, at = new Date()) =>
      s.write((x) => settings.setRepositorySettings(x, name, change, actor, toSqlTime(at))),
  };
}
