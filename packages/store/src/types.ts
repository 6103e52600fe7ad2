import type { PlatformSize, SnapshotFormat } from '@epoch/oci';
import type { RepositoryFilter } from './repository-pattern.js';

/** A page of names in byte order; `next` is the `last` value for the following page, if any. */
export interface NamePage {
  items: string[];
  next?: string;
}

/** Keyset page options for name listings (`/v2/_catalog`, `tags/list`). */
export interface NamePageOptions {
  /** Largest page (clamped to 1..10,000; default 1,000). */
  limit?: number;
  /** Exclusive start: the last name of the previous page. */
  last?: string;
  /** Only repositories matching the filter (the caller's): pages and markers never pass others. */
  filter?: RepositoryFilter;
}

/** A page of the control API; `nextCursor` is absent on the last page. */
export interface CursorPage<T> {
  items: T[];
  nextCursor?: string;
}

/** Cursor page options for the control API. */
export interface CursorPageOptions {
  /** Opaque cursor from a previous page's `nextCursor`. */
  cursor?: string;
  /** Largest page (clamped to 1..1,000; default 100). */
  limit?: number;
}

/**
 * A repository as `/api/repositories` shows it (upstream's `Repository` JSON shape).
 * `totalSize` is extended: the bytes of the distinct blobs the repository links or references,
 * each counted once (upstream summed tag sizes, double counting shared layers).
 */
export interface Repository {
  id: number;
  name: string;
  tagCount: number;
  totalSize: number;
  /** Of the most recently pushed tag. */
  artifactType?: string;
  /** Of the most recently pushed tag. */
  kind?: string;
  createdAt: Date;
  /** Last push or delete (upstream: last sync). */
  updatedAt: Date;
  /**
   * The snapshot format of a push that names none: the repository's setting
   * (`store.repositorySettings`), `full` when nobody set one.
   */
  defaultFormat: SnapshotFormat;
}

/** How `listRepositories` sorts: name ascending, the others descending. */
export type RepositorySort = 'name' | 'updated' | 'size' | 'tags';

/** Options of `listRepositories`. */
export interface ListRepositoriesOptions extends CursorPageOptions {
  /** Substring of the name (names are lowercase by the distribution grammar). */
  search?: string;
  /** Default `name`. */
  sort?: RepositorySort;
  /** Only repositories matching the filter: pages and cursors are computed from those alone. */
  filter?: RepositoryFilter;
}

/** Options of `listEvents`. */
export interface EventPageOptions extends CursorPageOptions {
  /**
   * Only events about a repository matching the filter; events about no repository (tokens,
   * sign-ins, blob-wide GC) are left out. Absent: every event (an administrator's view).
   */
  filter?: RepositoryFilter;
}

/**
 * A tag as `/api/repositories/{name}/tags` shows it (upstream's `Tag` JSON shape). Unlike
 * upstream, `digest` is the full `sha256:<hex>` digest, not the bare hex; `syncedAt` is gone
 * (the index is written through, there is no sync time).
 */
export interface Tag {
  id: number;
  repoName: string;
  name: string;
  digest: string;
  mediaType: string;
  /** The manifest's own `artifactType` field, if any. */
  artifactType?: string;
  kind: string;
  totalSize: number;
  /** Layers of a manifest; children of an index (as upstream). */
  layerCount: number;
  /** Per-child sizes, indexes only. */
  platformSizes?: PlatformSize[];
  pushedAt: Date;
}

/** A tag with its manifest, as `/api/repositories/{name}/tags/{tag}` needs it. */
export interface TagDetail extends Tag {
  /** Bytes of the manifest document. */
  size: number;
  /** The exact manifest bytes. */
  manifest: Uint8Array;
  /** Digest of the manifest's subject, if it has one. */
  subjectDigest?: string;
  /** Digest of the config blob (image manifests only). */
  configDigest?: string;
}

/** Aggregate numbers for the dashboard (upstream's `DashboardStats`, extended). */
export interface DashboardStats {
  repositoryCount: number;
  tagCount: number;
  blobCount: number;
  /** Stored bytes: every distinct blob counted once, however many manifests share it. */
  totalSize: number;
  /** Sum of the total sizes of all tags (what the catalog "contains", duplicates included). */
  logicalSize: number;
}

/** A blob row (upstream's `Blob` JSON shape). */
export interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  /** Number of manifests (per repository) whose config or layers include it. */
  refCount: number;
}

/** A referrer descriptor, as the OCI referrers API lists it. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}
