/**
 * `@epoch/store`: the SQL index of Epoch (repositories, tags, manifests, blobs, repository↔blob
 * links, tokens, audit events) on MySQL/MariaDB or SQLite, written through on every push.
 *
 * @packageDocumentation
 */

export type { DialectName } from './dialect.js';
export { IndexUnavailableError, InvalidCursorError } from './errors.js';
export type { StoreAudit } from './facets/audit.js';
export type { GcTimes, StoreGc } from './facets/gc.js';
export type { IndexReads } from './facets/reads.js';
export type { StoreRepositorySettings } from './facets/repository-settings.js';
export type { StoreRetention } from './facets/retention.js';
export type { StoreSettings } from './facets/settings.js';
export type { StoreTokens } from './facets/tokens.js';
export type { IndexWrites } from './facets/writes.js';
export type { PushDay } from './queries/activity.js';
export type { AggregateDelta, AggregateDrift } from './queries/aggregates.js';
export type { AuditEvent, NewAuditEvent } from './queries/events.js';
export type {
  DrainResult,
  GcBlob,
  GcManifest,
  GcRunRecord,
  GcTag,
  PendingObject,
  RepositoryGcPlan,
  RepositoryKnown,
} from './queries/gc/index.js';
export type {
  DeleteManifestResult,
  ManifestRecord,
  RecordManifestResult,
} from './queries/manifests.js';
export type {
  AddedRemoved,
  ReconcileError,
  ReconcileReport,
} from './queries/reconcile.js';
export type {
  RepositorySettings,
  RepositorySettingsChange,
} from './queries/repository-settings.js';
export {
  globToRegExp,
  matchesAny,
  policyFor,
  type RetentionPolicy,
  tagsToDelete,
} from './queries/retention.js';
export { hashToken, type Token } from './queries/tokens.js';
export {
  isRepositoryPattern,
  matchesPattern,
  type RepositoryFilter,
} from './repository-pattern.js';
export { openStore, Store, type StoreOptions } from './store.js';
export {
  type CheckedToken,
  checkToken,
  isTokenScope,
  MAX_TOKEN_LIFETIME_MS,
  TOKEN_SCOPES,
  type TokenRequest,
  type TokenRuleCode,
  TokenRuleError,
  type TokenScope,
} from './token-rules.js';
export type {
  Blob,
  CursorPage,
  CursorPageOptions,
  DashboardStats,
  EventPageOptions,
  ListRepositoriesOptions,
  NamePage,
  NamePageOptions,
  ReferrerDescriptor,
  Repository,
  RepositorySort,
  Tag,
  TagDetail,
} from './types.js';
