import type { PlatformSize } from '@epoch/oci';
import { sql } from 'kysely';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { type Executor, upsert } from '../dialect.js';
import type { SqlTime } from '../schema.js';
import { fromSqlTime } from '../sql-time.js';
import type {
  CursorPage,
  CursorPageOptions,
  NamePage,
  NamePageOptions,
  Tag,
  TagDetail,
} from '../types.js';
import { type AggregateDelta, adjustRepository, lockRepository } from './aggregates.js';
import { namePage, repositoryId, touchRepository } from './repositories.js';

/** The tag `name` of the repository, with the total size of the manifest it points at. */
function tagRow(x: Executor, repositoryId: number, name: string) {
  return x.db
    .selectFrom('tags')
    .innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(['tags.id', 'tags.manifest_id', 'manifests.total_size'])
    .where('tags.repository_id', '=', repositoryId)
    .where('tags.name', '=', name)
    .executeTakeFirst();
}

/**
 * Points `name` at a manifest. A re-push (same or another digest) moves `pushed_at` to `at`,
 * so "recently pushed" sorting follows pushes, not first creation. Run while holding the
 * repository's lock (see `aggregates.ts`); returns what it changed in the repository's
 * aggregates (`manifestTotal` is the total size of the manifest it now points at).
 */
export async function upsertTag(
  x: Executor,
  repositoryId: number,
  name: string,
  manifestId: number,
  digest: string,
  at: SqlTime,
  manifestTotal: number,
): Promise<AggregateDelta> {
  const before = await tagRow(x, repositoryId, name);
  const insert = x.db
    .insertInto('tags')
    .values({ repository_id: repositoryId, name, manifest_id: manifestId, digest, pushed_at: at });
  await upsert(x, insert, ['repository_id', 'name'], {
    manifest_id: manifestId,
    digest,
    pushed_at: at,
  }).execute();
  if (before === undefined) return { tags: 1, logical: manifestTotal };
  if (Number(before.manifest_id) === manifestId) return {};
  return { logical: manifestTotal - Number(before.total_size) };
}

/** Deletes a tag; returns whether it existed. Moves the repository's `updated_at` forward. */
export async function deleteTag(
  x: Executor,
  repo: string,
  tag: string,
  at: SqlTime,
): Promise<boolean> {
  const id = await lockRepository(x, repo);
  if (id === undefined) return false;
  const row = await tagRow(x, id, tag);
  if (row === undefined) return false;
  const result = await x.db.deleteFrom('tags').where('id', '=', row.id).executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) return false;
  await adjustRepository(x, id, { tags: -1, logical: -Number(row.total_size) });
  await touchRepository(x, id, at);
  return true;
}

/** Tags of `repo` pointing at `digest`, in byte order. */
export async function tagsOf(x: Executor, repo: string, digest: string): Promise<string[]> {
  const rows = await x.db
    .selectFrom('tags')
    .innerJoin('repositories', 'repositories.id', 'tags.repository_id')
    .select('tags.name')
    .where('repositories.name', '=', repo)
    .where('tags.digest', '=', digest)
    .orderBy('tags.name')
    .execute();
  return rows.map((row) => row.name);
}

/**
 * Tag names of a repository in byte order (the distribution spec's lexical order; uppercase
 * before lowercase), keyset-paginated on the unique (repository, name) key. An unknown
 * repository gives an empty page: ask `repositoryExists` to tell it apart from an empty one.
 */
export async function listTagNames(
  x: Executor,
  repo: string,
  options: NamePageOptions = {},
): Promise<NamePage> {
  const limit = pageLimit(options.limit, 1000, 10_000);
  const id = await repositoryId(x, repo);
  if (id === undefined) return { items: [] };
  let query = x.db
    .selectFrom('tags')
    .select('name')
    .where('repository_id', '=', id)
    .orderBy('name')
    .limit(limit + 1);
  if (options.last !== undefined) query = query.where('name', '>', options.last);
  return namePage(
    (await query.execute()).map((row) => row.name),
    limit,
  );
}

function tagQuery(x: Executor) {
  return x.db
    .selectFrom('tags')
    .innerJoin('repositories', 'repositories.id', 'tags.repository_id')
    .innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select([
      'tags.id',
      'repositories.name as repo_name',
      'tags.name',
      'tags.digest',
      'tags.pushed_at',
      'manifests.media_type',
      'manifests.artifact_type',
      'manifests.kind',
      'manifests.total_size',
      'manifests.layer_count',
      'manifests.platform_sizes',
    ]);
}

interface TagRow {
  id: number;
  repo_name: string;
  name: string;
  digest: string;
  pushed_at: SqlTime;
  media_type: string;
  artifact_type: string | null;
  kind: string;
  total_size: number;
  layer_count: number;
  platform_sizes: string | null;
}

function toTag(row: TagRow): Tag {
  const tag: Tag = {
    id: Number(row.id),
    repoName: row.repo_name,
    name: row.name,
    digest: row.digest,
    mediaType: row.media_type,
    kind: row.kind,
    totalSize: Number(row.total_size),
    layerCount: Number(row.layer_count),
    pushedAt: fromSqlTime(row.pushed_at),
  };
  if (row.artifact_type) tag.artifactType = row.artifact_type;
  if (row.platform_sizes) tag.platformSizes = JSON.parse(row.platform_sizes) as PlatformSize[];
  return tag;
}

/**
 * Tags of a repository, most recently pushed first, keyset-paginated on (pushed_at, id) with
 * the `(repository_id, pushed_at, id)` index.
 */
export async function listTags(
  x: Executor,
  repo: string,
  options: CursorPageOptions = {},
): Promise<CursorPage<Tag>> {
  const limit = pageLimit(options.limit);
  let query = tagQuery(x)
    .where('repositories.name', '=', repo)
    .orderBy('tags.pushed_at', 'desc')
    .orderBy('tags.id', 'desc')
    .limit(limit + 1);
  if (options.cursor !== undefined) {
    const [pushedAt, id] = decodeCursor(options.cursor);
    query = query.where(
      sql<boolean>`(tags.pushed_at < ${String(pushedAt)} or (tags.pushed_at = ${String(pushedAt)} and tags.id < ${id}))`,
    );
  }
  const rows = await query.execute();
  const items = rows.slice(0, limit).map(toTag);
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  if (last === undefined) return { items };
  return { items, nextCursor: encodeCursor([last.pushed_at, Number(last.id)]) };
}

/** One tag with its manifest bytes, or `undefined`. */
export async function getTag(
  x: Executor,
  repo: string,
  tag: string,
): Promise<TagDetail | undefined> {
  const row = await tagQuery(x)
    .select([
      'manifests.size',
      'manifests.raw',
      'manifests.subject_digest',
      'manifests.config_digest',
    ])
    .where('repositories.name', '=', repo)
    .where('tags.name', '=', tag)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  const detail: TagDetail = {
    ...toTag(row),
    size: Number(row.size),
    manifest: row.raw,
  };
  if (row.subject_digest) detail.subjectDigest = row.subject_digest;
  if (row.config_digest) detail.configDigest = row.config_digest;
  return detail;
}
