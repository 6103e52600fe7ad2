import type { Registry } from '@epoch/registry';
import type { Store } from '@epoch/store';
import type { ServerConfig } from '../config.js';

/** What the `/v2/` handlers are built from. */
export interface V2Services {
  /** Storage: the source of truth, written first. */
  registry: Registry;
  /** The SQL index, written through in the same request, after storage. */
  index: Store;
  /**
   * Whether listings may come from the index: true once a reconcile has completed in this
   * process. Until then (an upstream bucket being indexed at start-up) storage answers them.
   */
  indexReady: () => boolean;
  config: ServerConfig;
}
