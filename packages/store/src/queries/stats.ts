import type { Executor } from '../dialect.js';
import type { DashboardStats } from '../types.js';

/**
 * Dashboard numbers. `totalSize` sums each distinct blob once (the blobs table is keyed by
 * digest), so layers shared between manifests or repositories are not double counted as
 * upstream did; `logicalSize` is the sum of every tag's total size, duplicates included.
 */
export async function stats(x: Executor): Promise<DashboardStats> {
  const repositories = await x.db
    .selectFrom('repositories')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('manifests')
          .select('manifests.id')
          .whereRef('manifests.repository_id', '=', 'repositories.id'),
      ),
    )
    .executeTakeFirstOrThrow();
  const tags = await x.db
    .selectFrom('tags')
    .innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select((eb) => [
      eb.fn.countAll<number>().as('n'),
      eb.fn.coalesce(eb.fn.sum<number>('manifests.total_size'), eb.lit(0)).as('size'),
    ])
    .executeTakeFirstOrThrow();
  const blobs = await x.db
    .selectFrom('blobs')
    .select((eb) => [
      eb.fn.countAll<number>().as('n'),
      eb.fn.coalesce(eb.fn.sum<number>('blobs.size'), eb.lit(0)).as('size'),
    ])
    .executeTakeFirstOrThrow();
  return {
    repositoryCount: Number(repositories.n),
    tagCount: Number(tags.n),
    blobCount: Number(blobs.n),
    totalSize: Number(blobs.size),
    logicalSize: Number(tags.size),
  };
}
