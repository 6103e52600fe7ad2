/**
 * The storage layer: one `ObjectStore` interface, its typed errors, the base class that checks
 * every call's arguments, and the two drivers built on it (filesystem, the embedded default, and S3).
 */
export { BaseObjectStore, MAX_LIST_LIMIT } from './base.js';
export * from './errors.js';
export { createFsObjectStore, FsObjectStore } from './fs-store.js';
export { compareKeys, MAX_KEY_BYTES, validateKey, validatePrefix } from './keys.js';
export type * from './object-store.js';
export {
  AWS_CAPABILITIES,
  FALLBACKS as S3_FALLBACKS,
  type S3Capabilities,
  type S3Feature,
  UnsupportedStorageFeatureError,
} from './s3-capabilities.js';
export {
  createS3ObjectStore,
  resolveS3Config,
  type S3Config,
  S3ConfigError,
  type S3ConfigProblem,
  type S3Setting,
  type S3Settings,
  type S3Tuning,
} from './s3-config.js';
export type { S3ObjectStore } from './s3-store.js';
export { streamInto } from './send.js';
