import { sql } from 'kysely';
import { forEachChunk } from '../batch.js';
import { type Executor, ignoreDuplicate, upsert } from '../dialect.js';
import type { SqlTime } from '../schema.js';
import type { Blob } from '../types.js';
import { adjustRepository, lockRepository, members, sizeOf } from './aggregates.js';
import { repositoryId, upsertRepository } from './repositories.js';

/** What a manifest says about one of its blobs. */
export interface BlobReference {
  digest: string;
  size: number;
  mediaType: string;
}

/**
 * Adds one reference to each blob (inserting unknown blobs with `ref_count` 1). The caller
 * passes each digest once per manifest row. Rows are touched in digest order so concurrent
 * pushes sharing blobs lock them in the same order and cannot deadlock each other.
 */
export async function addBlobReferences(
  x: Executor,
  blobs: readonly BlobReference[],
  at: SqlTime,
): Promise<void> {
  const sorted = [...blobs].sort((a, b) =>
    a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0,
  );
  await forEachChunk(sorted, async (part) => {
    const insert = x.db.insertInto('blobs').values(
      part.map((blob) => ({
        digest: blob.digest,
        size: blob.size,
        media_type: blob.mediaType,
        ref_count: 1,
        created_at: at,
        updated_at: at,
      })),
    );
    await upsert(x, insert, ['digest'], {
      ref_count: sql`ref_count + 1`,
      updated_at: at,
    }).execute();
  });
}

/** Removes one reference from each blob (digest order, as above); never below zero. */
export async function removeBlobReferences(
  x: Executor,
  digests: readonly string[],
  at: SqlTime,
): Promise<void> {
  await forEachChunk([...digests].sort(), async (part) => {
    await x.db
      .updateTable('blobs')
      .set({
        ref_count: sql`case when ref_count > 0 then ref_count - 1 else 0 end`,
        updated_at: at,
      })
      .where('digest', 'in', part)
      .execute();
  });
}

/**
 * Links a blob to a repository (it was pushed or mounted there), creating the repository row
 * (not yet visible: it has no manifest) and the blob row (`ref_count` 0) when needed. The
 * repository's `updated_at` does not move: a blob upload is not a push of anything visible.
 */
export async function linkBlob(
  x: Executor,
  repo: string,
  blob: BlobReference,
  at: SqlTime,
): Promise<void> {
  const id = await upsertRepository(x, repo, at, false);
  const insertBlob = x.db.insertInto('blobs').values({
    digest: blob.digest,
    size: blob.size,
    media_type: blob.mediaType,
    ref_count: 0,
    created_at: at,
    updated_at: at,
  });
  const insertLink = x.db
    .insertInto('repository_blobs')
    .values({ repository_id: id, digest: blob.digest, linked_at: at });
  // `updated_at` restarts the GC grace period of a blob that is being used again (and the
  // upsert locks the blob row, so its size is settled for the size added below).
  await upsert(x, insertBlob, ['digest'], { updated_at: at }).execute();
  // No change on a duplicate: 0 affected rows, 1 for an insert.
  const result = await ignoreDuplicate(x, insertLink, 'digest').executeTakeFirst();
  const linked = Number(result.numInsertedOrUpdatedRows ?? 0);
  if (linked === 1 && !(await members(x, id, [blob.digest], 'references')).has(blob.digest)) {
    await adjustRepository(x, id, { size: await sizeOf(x, [blob.digest]) });
  }
}

/** Removes a repository↔blob link; returns whether it existed. References by manifests stay. */
export async function unlinkBlob(x: Executor, repo: string, digest: string): Promise<boolean> {
  const id = await lockRepository(x, repo);
  if (id === undefined) return false;
  // The blob row's lock settles its size for the size taken off below.
  if (x.dialect === 'mysql') {
    await x.db
      .selectFrom('blobs')
      .select('digest')
      .where('digest', '=', digest)
      .forUpdate()
      .execute();
  }
  const result = await x.db
    .deleteFrom('repository_blobs')
    .where('repository_id', '=', id)
    .where('digest', '=', digest)
    .executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) return false;
  if (!(await members(x, id, [digest], 'references')).has(digest)) {
    await adjustRepository(x, id, { size: -(await sizeOf(x, [digest])) });
  }
  return true;
}

/** Whether the index records the blob for `repo`: linked there, or referenced by its manifests. */
export async function isBlobLinked(x: Executor, repo: string, digest: string): Promise<boolean> {
  const row = await x.db
    .selectFrom('repositories')
    .select('repositories.id')
    .where('repositories.name', '=', repo)
    .where((eb) =>
      eb.or([
        eb.exists(
          eb
            .selectFrom('repository_blobs')
            .select(sql.lit(1).as('one'))
            .whereRef('repository_blobs.repository_id', '=', 'repositories.id')
            .where('repository_blobs.digest', '=', digest),
        ),
        eb.exists(
          eb
            .selectFrom('manifest_blobs')
            .innerJoin('manifests', 'manifests.id', 'manifest_blobs.manifest_id')
            .select(sql.lit(1).as('one'))
            .whereRef('manifests.repository_id', '=', 'repositories.id')
            .where('manifest_blobs.digest', '=', digest),
        ),
      ]),
    )
    .executeTakeFirst();
  return row !== undefined;
}

/** A blob row, or `undefined`. */
export async function getBlob(x: Executor, digest: string): Promise<Blob | undefined> {
  const row = await x.db
    .selectFrom('blobs')
    .select(['digest', 'size', 'media_type', 'ref_count'])
    .where('digest', '=', digest)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return {
    digest: row.digest,
    size: Number(row.size),
    mediaType: row.media_type,
    refCount: Number(row.ref_count),
  };
}

/**
 * The stored sizes of those of `digests` that are linked to `repo` (pushed or mounted there),
 * as the index knows them. Only a hint: storage decides (see the server's manifest PUT).
 */
export async function linkedBlobSizes(
  x: Executor,
  repo: string,
  digests: readonly string[],
): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  const id = await repositoryId(x, repo);
  if (id === undefined) return sizes;
  await forEachChunk([...new Set(digests)], async (part) => {
    const rows = await x.db
      .selectFrom('repository_blobs')
      .innerJoin('blobs', 'blobs.digest', 'repository_blobs.digest')
      .select(['blobs.digest', 'blobs.size'])
      .where('repository_blobs.repository_id', '=', id)
      .where('repository_blobs.digest', 'in', part)
      .execute();
    for (const row of rows) sizes.set(row.digest, Number(row.size));
  });
  return sizes;
}
