import { sql } from 'kysely';
import type { Executor } from '../dialect.js';
import { nameMatches, type RepositoryFilter } from '../repository-pattern.js';
import type { DashboardStats } from '../types.js';

/**
 * Dashboard numbers. `totalSize` sums each distinct blob once (the blobs table is keyed by
 * digest), so layers shared between manifests or repositories are not double counted as
 * upstream did; `logicalSize` is the sum of every tag's total size, duplicates included.
 * With a `filter`, every number is computed from the matching repositories alone: their tags,
 * and the distinct blobs they link or reference. Repository, tag and logical-size numbers come
 * from the repositories' maintained aggregates (see `aggregates.ts`), not from their rows.
 */
export async function stats(x: Executor, filter?: RepositoryFilter): Promise<DashboardStats> {
  const repositories = await x.db
    .selectFrom('repositories')
    .select((eb) => [
      eb.fn.countAll<number>().as('n'),
      eb.fn.coalesce(eb.fn.sum<number>('tag_count'), sql.lit(0)).as('tags'),
      eb.fn.coalesce(eb.fn.sum<number>('logical_size'), sql.lit(0)).as('logical'),
    ])
    .where('manifest_count', '>', 0)
    .$if(filter !== undefined, (qb) =>
      qb.where((eb) => nameMatches(eb, 'repositories.name', filter as RepositoryFilter)),
    )
    .executeTakeFirstOrThrow();
  // The distinct blobs of the matching repositories as a derived table joined to `blobs`, not
  // `blobs.digest IN (… UNION …)`: MariaDB runs such a subquery once per blob row.
  const held = (f: RepositoryFilter) =>
    x.db
      .selectFrom('repository_blobs')
      .innerJoin('repositories', 'repositories.id', 'repository_blobs.repository_id')
      .select('repository_blobs.digest')
      .where((e) => nameMatches(e, 'repositories.name', f))
      .union(
        x.db
          .selectFrom('manifest_blobs')
          .innerJoin('repositories', 'repositories.id', 'manifest_blobs.repository_id')
          .select('manifest_blobs.digest')
          .where((e) => nameMatches(e, 'repositories.name', f)),
      );
  const blobs =
    filter === undefined
      ? await x.db
          .selectFrom('blobs')
          .select((eb) => [
            eb.fn.countAll<number>().as('n'),
            eb.fn.coalesce(eb.fn.sum<number>('blobs.size'), eb.lit(0)).as('size'),
          ])
          .executeTakeFirstOrThrow()
      : await x.db
          .selectFrom(held(filter).as('h'))
          .innerJoin('blobs', 'blobs.digest', 'h.digest')
          .select((eb) => [
            eb.fn.countAll<number>().as('n'),
            eb.fn.coalesce(eb.fn.sum<number>('blobs.size'), eb.lit(0)).as('size'),
          ])
          .executeTakeFirstOrThrow();
  return {
    repositoryCount: Number(repositories.n),
    tagCount: Number(repositories.tags),
    blobCount: Number(blobs.n),
    totalSize: Number(blobs.size),
    logicalSize: Number(repositories.logical),
  };
}
