/**
 * The JSON shapes of the server's `/api/` and `/auth/` answers, derived from the types the
 * server serialises (`@epoch/store`'s rows, `@epoch/oci`'s documents) by {@link Jsonify}: a
 * field renamed or retyped there fails this app's type check instead of its users' screens.
 * Only what the server composes itself is spelled out here.
 */
import type {
  Descriptor,
  IncrementalStats,
  Platform,
  SnapshotFormat,
  SnapshotConfig as StoredSnapshotConfig,
} from '@epoch/oci';

export type { IncrementalStats, SnapshotFormat };

import type {
  DashboardStats,
  ReferrerDescriptor,
  AuditEvent as StoredAuditEvent,
  PushDay as StoredPushDay,
  Repository as StoredRepository,
  RepositorySettings as StoredRepositorySettings,
  Tag as StoredTag,
  TagDetail as StoredTagDetail,
  Token as StoredToken,
  TokenScope,
} from '@epoch/store';

/** What `JSON.stringify` makes of a value of type `T`: dates become ISO strings. */
export type Jsonify<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Jsonify<U>[]
    : T extends object
      ? { [K in keyof T]: Jsonify<T[K]> }
      : T;

export type Stats = Jsonify<DashboardStats>;
export type Repository = Jsonify<StoredRepository>;
export type Tag = Jsonify<StoredTag>;
export type AuditEvent = Jsonify<StoredAuditEvent>;
export type PushDay = Jsonify<StoredPushDay>;
export type Token = Jsonify<StoredToken>;
export type Scope = TokenScope;
export type Referrer = Jsonify<ReferrerDescriptor>;
export type SnapshotConfig = Jsonify<StoredSnapshotConfig>;

/**
 * `GET`/`PUT /api/repository-settings/<name>`: what was chosen for a repository (by name, so a
 * repository that does not exist yet has settings too), and whether this visitor may change
 * them: the server answers that from the same rule it checks the change against (push rights on
 * the repository), so the dashboard never decides rights itself.
 */
export interface RepositorySettings extends Jsonify<StoredRepositorySettings> {
  name: string;
  writable: boolean;
}

/** `POST /api/tokens`: the new token with its plaintext, shown once. */
export interface CreatedToken extends Token {
  token: string;
}

/** A layer (or an index's child) as the tag detail lists it. */
export type Layer = Pick<Descriptor, 'mediaType' | 'digest' | 'size' | 'annotations'> & {
  /** The layer's `org.opencontainers.image.title`. */
  title?: string;
  platform?: Platform;
};

/** `GET /api/repositories/<name>/tags/<tag>`: the tag, its manifest and what it names. */
export interface TagDetail extends Jsonify<Omit<StoredTagDetail, 'manifest'>> {
  tag: string;
  /** The manifest document, parsed. */
  manifest: unknown;
  layers: Layer[];
  children?: Layer[];
  snapshotConfig?: SnapshotConfig;
  /** An incremental snapshot's storage against the version pushed before it. */
  incremental?: IncrementalStats;
  referrers: Referrer[];
}

/**
 * `/auth/me`: who the dashboard is talking for. Anonymous visitors get an answer too when they
 * have `/api/` rights (`signedIn: false`): read-only with anonymous pull, or admin in the
 * out-of-the-box local open mode.
 */
export interface Me {
  user: string;
  email: string;
  kind: 'anonymous' | 'token' | 'session' | 'static-token' | string;
  api: 'none' | 'read' | 'admin';
  grants: unknown;
  signedIn: boolean;
  csrfToken?: string;
}

export interface AuthConfig {
  sso: boolean;
  anonymousPull: boolean;
}

export interface Version {
  version: string;
  storage: 'filesystem' | 's3';
  index: 'sqlite' | 'mysql';
}

/** One page of a cursor-paginated list. */
export interface Page<T> {
  items: T[];
  nextCursor?: string;
}
