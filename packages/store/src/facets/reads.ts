import * as activity from '../queries/activity.js';
import * as aggregates from '../queries/aggregates.js';
import * as blobs from '../queries/blobs.js';
import * as manifests from '../queries/manifests.js';
import * as repositories from '../queries/repositories.js';
import * as stats from '../queries/stats.js';
import * as tags from '../queries/tags.js';
import type { RepositoryFilter } from '../repository-pattern.js';
import type {
  Blob,
  CursorPage,
  CursorPageOptions,
  DashboardStats,
  ListRepositoriesOptions,
  NamePage,
  NamePageOptions,
  ReferrerDescriptor,
  Repository,
  Tag,
  TagDetail,
} from '../types.js';
import type { StoreAccess } from './access.js';

/**
 * Reads of the index (`store.reads`): what the registry API asks (blobs, manifests, tags,
 * catalog, referrers) and what the control API and dashboard show (repositories with
 * aggregates, tags, statistics, activity). None of them writes.
 */
export interface IndexReads {
  /**
   * Whether the index records the blob for `repo`: linked there or referenced by one of its
   * manifests. The index's view only: whether a blob is served is decided by storage's link
   * markers (`@epoch/registry`'s `Blobs`).
   */
  isBlobLinked(repo: string, digest: string): Promise<boolean>;
  /**
   * Stored sizes of those of `digests` linked to `repo` (pushed or mounted there), as the index
   * records them: a fast first answer for a manifest PUT, which storage then confirms.
   */
  linkedBlobSizes(repo: string, digests: readonly string[]): Promise<Map<string, number>>;
  /** A blob row, or `undefined`. */
  getBlob(digest: string): Promise<Blob | undefined>;
  /** Whether the repository holds this manifest. */
  hasManifest(repo: string, digest: string): Promise<boolean>;
  /** Tags of `repo` pointing at `digest`, in byte order. */
  tagsOf(repo: string, digest: string): Promise<string[]>;
  /** Tag names in byte order, keyset-paginated (`tags/list`). */
  listTagNames(repo: string, options?: NamePageOptions): Promise<NamePage>;
  /** Repository names in byte order, keyset-paginated (`_catalog`). */
  listRepositoryNames(options?: NamePageOptions): Promise<NamePage>;
  /** Whether the repository holds at least one manifest. */
  repositoryExists(repo: string): Promise<boolean>;
  /** Referrer descriptors of `subject` in `repo`, optionally filtered by artifact type. */
  listReferrers(
    repo: string,
    subject: string,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]>;
  /** Dashboard numbers, of the repositories matching `filter` when one is given. */
  stats(filter?: RepositoryFilter): Promise<DashboardStats>;
  /** Repositories with aggregates, searched, sorted and keyset-paginated. */
  listRepositories(options?: ListRepositoriesOptions): Promise<CursorPage<Repository>>;
  /**
   * Repositories (ids after `after`, `limit` of them checked) whose maintained aggregates differ
   * from a recount of their rows: empty when the index is consistent.
   */
  aggregateDrift(
    after?: number,
    limit?: number,
  ): Promise<{ drift: aggregates.AggregateDrift[]; last: number | undefined }>;
  /** One repository with aggregates, or `undefined`. */
  getRepository(name: string): Promise<Repository | undefined>;
  /** Tags of a repository, most recently pushed first, keyset-paginated. */
  listTags(repo: string, options?: CursorPageOptions): Promise<CursorPage<Tag>>;
  /** One tag with its manifest bytes, or `undefined`. */
  getTag(repo: string, tag: string): Promise<TagDetail | undefined>;
  /**
   * Manifest pushes per UTC day since `since`, oldest first (days without pushes left out), to
   * the repositories matching `filter` when one is given.
   */
  pushesPerDay(since: Date, filter?: RepositoryFilter): Promise<activity.PushDay[]>;
}

/** @internal The `store.reads` facet. */
export function indexReads(s: StoreAccess): IndexReads {
  const x = s.read;
  return {
    isBlobLinked: (repo, digest) => blobs.isBlobLinked(x, repo, digest),
    linkedBlobSizes: (repo, digests) => blobs.linkedBlobSizes(x, repo, digests),
    getBlob: (digest) => blobs.getBlob(x, digest),
    hasManifest: (repo, digest) => manifests.hasManifest(x, repo, digest),
    tagsOf: (repo, digest) => tags.tagsOf(x, repo, digest),
    listTagNames: (repo, options) => tags.listTagNames(x, repo, options),
    listRepositoryNames: (options) => repositories.listRepositoryNames(x, options),
    repositoryExists: (repo) => repositories.repositoryExists(x, repo),
    listReferrers: (repo, subject, artifactType) =>
      manifests.listReferrers(x, repo, subject, artifactType),
    stats: (filter) => stats.stats(x, filter),
    listRepositories: (options) => repositories.listRepositories(x, options),
    aggregateDrift: (after, limit) => aggregates.aggregateDrift(x, after, limit),
    getRepository: (name) => repositories.getRepository(x, name),
    listTags: (repo, options) => tags.listTags(x, repo, options),
    getTag: (repo, tag) => tags.getTag(x, repo, tag),
    pushesPerDay: (since, filter) => activity.pushesPerDay(x, since, filter),
  };
}
