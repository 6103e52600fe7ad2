import { sql } from 'kysely';
import type { Executor } from '../dialect.js';
import type { SqlTime } from '../schema.js';
import type { Blob } from '../types.js';
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
  for (const blob of sorted) {
    const insert = x.db.insertInto('blobs').values({
      digest: blob.digest,
      size: blob.size,
      media_type: blob.mediaType,
      ref_count: 1,
      created_at: at,
      updated_at: at,
    });
    if (x.dialect === 'mysql') {
      await insert
        .onDuplicateKeyUpdate({ ref_count: sql`ref_count + 1`, updated_at: at })
        .execute();
    } else {
      await insert
        .onConflict((oc) =>
          oc.column('digest').doUpdateSet({ ref_count: sql`ref_count + 1`, updated_at: at }),
        )
        .execute();
    }
  }
}

/** Removes one reference from each blob (digest order, as above); never below zero. */
export async function removeBlobReferences(
  x: Executor,
  digests: readonly string[],
  at: SqlTime,
): Promise<void> {
  for (const digest of [...digests].sort()) {
    await x.db
      .updateTable('blobs')
      .set({
        ref_count: sql`case when ref_count > 0 then ref_count - 1 else 0 end`,
        updated_at: at,
      })
      .where('digest', '=', digest)
      .execute();
  }
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
  if (x.dialect === 'mysql') {
    // `updated_at` restarts the GC grace period of a blob that is being used again.
    await insertBlob.onDuplicateKeyUpdate({ updated_at: at }).execute();
    await insertLink.onDuplicateKeyUpdate({ digest: sql`digest` }).execute();
  } else {
    await insertBlob
      .onConflict((oc) => oc.column('digest').doUpdateSet({ updated_at: at }))
      .execute();
    await insertLink.onConflict((oc) => oc.doNothing()).execute();
  }
}

/** Removes a repository↔blob link; returns whether it existed. References by manifests stay. */
export async function unlinkBlob(x: Executor, repo: string, digest: string): Promise<boolean> {
  const id = await repositoryId(x, repo);
  if (id === undefined) return false;
  const result = await x.db
    .deleteFrom('repository_blobs')
    .where('repository_id', '=', id)
    .where('digest', '=', digest)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * Whether `repo` may serve the blob (design invariant 6): it was linked there, or one of the
 * repository's manifests references it.
 */
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
