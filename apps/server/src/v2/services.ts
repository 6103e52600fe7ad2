import type { Registry } from '@epoch/registry';
import type { ServerConfig } from '../config.js';

/** What the `/v2/` handlers are built from. */
export interface V2Services {
  registry: Registry;
  config: ServerConfig;
}
