/**
 * `@epoch/server`: the Epoch HTTP server. `startServer(loadConfig())` is what `epoch serve` runs.
 * @packageDocumentation
 */

export { isRepositoryPattern } from '@epoch/store';
export { createApp } from './app.js';
export {
  ConfigError,
  type ConfigOverrides,
  DEFAULT_S3_ENV_FILE,
  loadConfig,
  loadS3Config,
  parseDuration,
  parseEnvFile,
  SERVER_ENV_VARS,
  type ServerConfig,
  type ServerEnvVar,
  type SsoConfig,
} from './config.js';
export {
  collectGarbage,
  GcBusyError,
  type GcOptions,
  type GcReport,
  type GcReportList,
} from './gc/collector.js';
export { ProtectedTagError } from './gc/protected-tags.js';
export { createLogger, type Logger } from './log.js';
export { tuneHeapForUploads } from './ops/heap.js';
export { openIndex, reconcileIndex } from './reconcile.js';
export { type RunningServer, startServer } from './server.js';
export { openObjectStore } from './storage.js';
