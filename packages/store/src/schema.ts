import type { Generated } from 'kysely';

/**
 * A point in time as stored: `YYYY-MM-DD HH:MM:SS.mmm` in UTC. One text form for both dialects
 * (MySQL `DATETIME(3)` parses and prints it unchanged; SQLite keeps it as TEXT) so comparisons,
 * keyset cursors and sorting behave the same everywhere and no driver applies a time zone.
 */
export type SqlTime = string;

/** `repositories`: one row per repository name that was ever pushed to or linked. */
export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: SqlTime;
  /** Last push or delete in the repository (never a sync or reindex time). */
  updated_at: SqlTime;
  /** Manifest rows of the repository (listed when > 0); see `queries/aggregates.ts`. */
  manifest_count: Generated<number>;
  /** Tag rows of the repository. */
  tag_count: Generated<number>;
  /** Bytes of the distinct blobs it links or its manifests reference. */
  total_size: Generated<number>;
  /** Sum over its tags of the total size of the manifest each points at. */
  logical_size: Generated<number>;
}

/** `manifests`: one row per (repository, manifest digest). */
export interface ManifestsTable {
  id: Generated<number>;
  repository_id: number;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  kind: string;
  /** Bytes of the manifest document itself. */
  size: number;
  total_size: number;
  layer_count: number;
  subject_digest: string | null;
  config_digest: string | null;
  /** The config's media type: the referrers API's `artifactType` when the manifest has none. */
  config_media_type: string | null;
  /** JSON array of `PlatformSize`, for indexes only. */
  platform_sizes: string | null;
  /** JSON object of the manifest's annotations (for referrer descriptors), or null. */
  annotations: string | null;
  raw: Uint8Array;
  pushed_at: SqlTime;
}

/** `tags`: one row per (repository, tag name). */
export interface TagsTable {
  id: Generated<number>;
  repository_id: number;
  name: string;
  manifest_id: number;
  digest: string;
  pushed_at: SqlTime;
}

/** `manifest_blobs`: the config and layer blobs an image manifest references. */
export interface ManifestBlobsTable {
  manifest_id: number;
  digest: string;
  /** The manifest's repository (migration `0004`; every write sets it). */
  repository_id: number | null;
}

/** `repository_trigrams`: the three-character substrings of each repository name (search). */
export interface RepositoryTrigramsTable {
  gram: string;
  repository_id: number;
}

/** `manifest_children`: the child manifests an index references. */
export interface ManifestChildrenTable {
  manifest_id: number;
  child_digest: string;
}

/** `repository_blobs`: blobs pushed to or mounted into a repository. */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  linked_at: SqlTime;
}

/** `blobs`: every blob digest the index knows, stored once. */
export interface BlobsTable {
  digest: string;
  size: number;
  media_type: string;
  /** Number of manifest rows whose config or layers include this blob. */
  ref_count: number;
  created_at: SqlTime;
  /** Last time `ref_count` changed or the blob was linked: the clock a GC grace period reads. */
  updated_at: SqlTime;
}

/** `tokens`: API and registry tokens, stored as SHA-256 hashes only. */
export interface TokensTable {
  id: Generated<number>;
  name: string;
  token_hash: string;
  created_by: string;
  /** Space-separated scopes, e.g. `pull push`. */
  scopes: string;
  repo_pattern: string;
  expires_at: SqlTime | null;
  last_used_at: SqlTime | null;
  revoked_at: SqlTime | null;
  created_at: SqlTime;
}

/** `audit_events`: an append-only log of who did what. */
export interface AuditEventsTable {
  id: Generated<number>;
  at: SqlTime;
  actor: string;
  action: string;
  repository: string | null;
  reference: string | null;
  digest: string | null;
  /** JSON object with action-specific details, or null. */
  detail: string | null;
}

/** `settings`: named values shared by every server process (e.g. the token-signing key). */
export interface SettingsTable {
  name: string;
  value: string;
  created_at: SqlTime;
}

/**
 * `repository_settings`: what a person chose for one repository, by name (migration `0005`: it
 * outlives the repository's `repositories` row, which storage owns).
 */
export interface RepositorySettingsTable {
  name: string;
  /** A `SnapshotFormat` of `@epoch/oci`. */
  default_format: string;
  updated_at: SqlTime;
  /** Who set it (a principal's name, as in the audit log). */
  updated_by: string;
}

/** `retention_policies`: per repository pattern, first match (lowest position) wins. */
export interface RetentionPoliciesTable {
  id: Generated<number>;
  position: number;
  repository_pattern: string;
  keep_last: number | null;
  max_age_days: number | null;
  /** JSON array of tag patterns retention never deletes. */
  keep_tags: string;
  /** JSON array of tag patterns that refuse overwrite and delete. */
  protected_tags: string;
  untagged_expiry_ms: number | null;
  updated_at: SqlTime;
}

/** `gc_locks`: one row per held lock; a holder that crashed loses it at `expires_at`. */
export interface GcLocksTable {
  name: string;
  holder: string;
  expires_at: SqlTime;
}

/** `gc_pending`: storage objects to delete once their index rows are gone (GC's second step). */
export interface GcPendingTable {
  id: Generated<number>;
  object_key: string;
  /** `blob`, `manifest`, `referrer`, `link` or `tag`: what to re-check before deleting. */
  kind: string;
  repository: string | null;
  digest: string | null;
  tag: string | null;
  size: number;
  created_at: SqlTime;
}

/** `gc_recent`: digests a push announced it needs, with when (see `reviveForPush`). */
export interface GcRecentTable {
  digest: string;
  at: SqlTime;
}

/** `gc_runs`: the reports of finished GC runs (JSON). */
export interface GcRunsTable {
  id: Generated<number>;
  started_at: SqlTime;
  finished_at: SqlTime;
  dry_run: number;
  report: string;
}

/** The whole schema, as Kysely sees it. */
export interface Database {
  repositories: RepositoriesTable;
  manifests: ManifestsTable;
  tags: TagsTable;
  manifest_blobs: ManifestBlobsTable;
  repository_trigrams: RepositoryTrigramsTable;
  manifest_children: ManifestChildrenTable;
  repository_blobs: RepositoryBlobsTable;
  blobs: BlobsTable;
  tokens: TokensTable;
  audit_events: AuditEventsTable;
  settings: SettingsTable;
  repository_settings: RepositorySettingsTable;
  retention_policies: RetentionPoliciesTable;
  gc_locks: GcLocksTable;
  gc_pending: GcPendingTable;
  gc_recent: GcRecentTable;
  gc_runs: GcRunsTable;
}
