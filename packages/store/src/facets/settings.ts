import * as settings from '../queries/settings.js';
import type { StoreAccess } from './access.js';

/** Values shared by every process on one index (`store.settings`). */
export interface StoreSettings {
  /**
   * A value shared by every process on this index, created by `create()` on first use; the
   * first writer wins when several processes start at once.
   */
  getOrCreate(name: string, create: () => string): Promise<string>;
}

/** @internal The `store.settings` facet. */
export function storeSettings(s: StoreAccess): StoreSettings {
  return { getOrCreate: (name, create) => settings.getOrCreateSetting(s.read, name, create) };
}
