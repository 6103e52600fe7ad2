/** GC planning for blob rows: which rows nothing uses any more (read-only). */

import { sql } from 'kysely';
import { forEachChunk } from '../../batch.js';
import type { Executor } from '../../dialect.js';
import type { SqlTime } from '../../schema.js';
import { fromSqlTime } from '../../sql-time.js';
import type { GcBlob, RepositoryGcPlan } from './plan.js';

/** The condition of a blob row nothing uses, older than `cutoff` and not recently pushed. */
export function unusedBlob(cutoff: SqlTime) {
  return sql<boolean>`blobs.ref_count = 0 and blobs.updated_at < ${cutoff}
    and not exists (select 1 from repository_blobs rb where rb.digest = blobs.digest)
    and not exists (select 1 from manifest_blobs mb where mb.digest = blobs.digest)
    and not exists (select 1 from gc_recent r where r.digest = blobs.digest and r.at >= ${cutoff})`;
}

/** One page of blob rows nothing uses and that are older than the cutoff, by digest. */
export async function blobCandidates(
  x: Executor,
  cutoff: SqlTime,
  after: string | undefined,
  limit: number,
): Promise<GcBlob[]> {
  let query = x.db
    .selectFrom('blobs')
    .select(['digest', 'size'])
    .where('ref_count', '=', 0)
    .where('updated_at', '<', cutoff)
    .where(unusedBlob(cutoff))
    .orderBy('digest')
    .limit(limit);
  if (after !== undefined) query = query.where('digest', '>', after);
  return (await query.execute()).map((r) => ({ digest: r.digest, size: Number(r.size) }));
}

/**
 * Dry run: the blobs a real run would free, given the manifests and links it would delete
 * (their references no longer count), without writing anything.
 */
export async function blobsFreedBy(
  x: Executor,
  plans: readonly RepositoryGcPlan[],
  cutoff: SqlTime,
): Promise<GcBlob[]> {
  const doomedManifests = new Set(plans.flatMap((p) => p.manifests.map((m) => m.id)));
  const doomedLinks = new Set(plans.flatMap((p) => p.links.map((d) => `${p.repositoryId} ${d}`)));
  const candidates = new Set<string>(plans.flatMap((p) => p.links));
  await forEachChunk([...doomedManifests], async (part) => {
    const rows = await x.db
      .selectFrom('manifest_blobs')
      .select('digest')
      .where('manifest_id', 'in', part)
      .execute();
    for (const r of rows) candidates.add(r.digest);
  });
  for (let after: string | undefined; ; ) {
    const page = await blobCandidates(x, cutoff, after, 1000);
    for (const b of page) candidates.add(b.digest);
    if (page.length < 1000) break;
    after = page.at(-1)?.digest;
  }
  const freed: GcBlob[] = [];
  await forEachChunk([...candidates].sort(), async (batch) => {
    const blobs = await x.db
      .selectFrom('blobs')
      .select(['digest', 'size', 'updated_at'])
      .where('digest', 'in', batch)
      .where('updated_at', '<', cutoff)
      .execute();
    const refs = await x.db
      .selectFrom('manifest_blobs')
      .select(['manifest_id', 'digest'])
      .where('digest', 'in', batch)
      .execute();
    const links = await x.db
      .selectFrom('repository_blobs')
      .select(['repository_id', 'digest'])
      .where('digest', 'in', batch)
      .execute();
    const used = new Set([
      ...refs.filter((r) => !doomedManifests.has(Number(r.manifest_id))).map((r) => r.digest),
      ...links
        .filter((l) => !doomedLinks.has(`${Number(l.repository_id)} ${l.digest}`))
        .map((l) => l.digest),
    ]);
    for (const b of blobs) {
      if (used.has(b.digest)) continue;
      freed.push({ digest: b.digest, size: Number(b.size), updatedAt: fromSqlTime(b.updated_at) });
    }
  });
  return freed;
}

/** Which of `digests` have a blob row. */
export async function existingBlobs(x: Executor, digests: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  await forEachChunk(digests, async (part) => {
    const rows = await x.db
      .selectFrom('blobs')
      .select('digest')
      .where('digest', 'in', part)
      .execute();
    for (const r of rows) found.add(r.digest);
  });
  return found;
}
