/**
 * GC applying: the deletions of a run, each in the caller's write transaction, with their
 * audit events and the storage objects they leave to delete (see `queue.ts`).
 */

import { sql } from 'kysely';
import { forEachChunk } from '../../batch.js';
import type { Executor } from '../../dialect.js';
import type { SqlTime } from '../../schema.js';
import { toSqlTime } from '../../sql-time.js';
import { recountRepositories } from '../aggregates.js';
import { appendEvents } from '../events.js';
import type { RetentionPolicy } from '../retention.js';
import { unusedBlob } from './blobs.js';
import {
  type GcBlob,
  type GcClock,
  type GcTag,
  loadRepository,
  planFrom,
  type RepositoryGcPlan,
} from './plan.js';
import { insertPending, type PendingObject } from './queue.js';

/**
 * Sweep one repository inside the caller's write transaction. The repository row is locked
 * first (every push and link of the repository upserts it), so on MySQL a concurrent push of
 * the repository waits for this transaction or is seen by it. Then everything is decided
 * again on the rows as they are now: only what the plan named and is still garbage goes. A
 * push that re-tagged a manifest, indexed a parent or re-linked a blob meanwhile wins.
 * Blob reference counts drop without moving `updated_at`: the collector's own deletions do not
 * restart a blob's grace period, pushes do.
 */
export async function applyRepositoryPlan(
  x: Executor,
  plan: RepositoryGcPlan,
  policy: RetentionPolicy | undefined,
  clock: GcClock,
  actor: string,
  pendingFor: (done: RepositoryGcPlan) => PendingObject[],
): Promise<RepositoryGcPlan> {
  if (x.dialect === 'mysql') {
    await sql`select id from repositories where id = ${plan.repositoryId} for update`.execute(x.db);
  }
  const tags: GcTag[] = [];
  for (const tag of plan.tags) {
    const result = await x.db
      .deleteFrom('tags')
      .where('repository_id', '=', plan.repositoryId)
      .where('name', '=', tag.name)
      .where('manifest_id', '=', tag.manifestId)
      .where('pushed_at', '=', tag.pushedAt)
      .executeTakeFirst();
    if (Number(result.numDeletedRows) > 0) tags.push(tag);
  }
  const now = planFrom(
    plan.repositoryId,
    plan.repository,
    await loadRepository(x, plan.repositoryId, clock.cutoff),
    policy,
    clock,
    false,
  );
  const stillGarbage = new Set(now.manifests.map((m) => m.id));
  const manifests = plan.manifests.filter((m) => stillGarbage.has(m.id));
  for (const m of manifests) await dropManifest(x, m.id);
  const stillUnused = new Set(now.links);
  const links = plan.links.filter((d) => stillUnused.has(d));
  await forEachChunk(links, async (part) => {
    await x.db
      .deleteFrom('repository_blobs')
      .where('repository_id', '=', plan.repositoryId)
      .where('digest', 'in', part)
      .execute();
  });
  const base = { at: clock.now, actor, repository: plan.repository };
  await appendEvents(x, [
    ...tags.map((t) => ({ ...base, action: 'gc.delete.tag', reference: t.name, digest: t.digest })),
    ...manifests.map((m) => ({
      ...base,
      action: 'gc.delete.manifest',
      digest: m.digest,
      detail: { size: m.size },
    })),
    ...links.map((d) => ({ ...base, action: 'gc.delete.link', digest: d })),
  ]);
  const done = { ...plan, tags, manifests, links };
  await insertPending(x, pendingFor(done), toSqlTime(clock.now));
  // The repository row was locked first: recount its aggregates from what is left.
  if (tags.length + manifests.length + links.length > 0) {
    await recountRepositories(x, [plan.repositoryId]);
  }
  return done;
}

async function dropManifest(x: Executor, id: number): Promise<void> {
  const blobs = (
    await x.db.selectFrom('manifest_blobs').select('digest').where('manifest_id', '=', id).execute()
  ).map((row) => row.digest);
  await x.db.deleteFrom('tags').where('manifest_id', '=', id).execute();
  await x.db.deleteFrom('manifest_blobs').where('manifest_id', '=', id).execute();
  await x.db.deleteFrom('manifest_children').where('manifest_id', '=', id).execute();
  const deleted = await x.db.deleteFrom('manifests').where('id', '=', id).executeTakeFirst();
  if (Number(deleted.numDeletedRows) === 0) return;
  for (const digest of [...blobs].sort()) {
    await x.db
      .updateTable('blobs')
      .set({ ref_count: sql`case when ref_count > 0 then ref_count - 1 else 0 end` })
      .where('digest', '=', digest)
      .execute();
  }
}

/**
 * Deletes the blob rows among `digests` that are still unused, inside the caller's write
 * transaction (rows locked first on MySQL: a concurrent link or reference upserts the same
 * row, so it either committed before, and the blob is kept, or waits and re-creates it).
 */
export async function deleteBlobRows(
  x: Executor,
  digests: readonly string[],
  cutoff: SqlTime,
  actor: string,
  at: Date,
  pendingFor: (deleted: GcBlob[]) => PendingObject[],
): Promise<GcBlob[]> {
  if (digests.length === 0) return [];
  const sorted = [...digests].sort();
  if (x.dialect === 'mysql') {
    await x.db
      .selectFrom('blobs')
      .select('digest')
      .where('digest', 'in', sorted)
      .orderBy('digest')
      .forUpdate()
      .execute();
  }
  const rows = await x.db
    .selectFrom('blobs')
    .select(['digest', 'size'])
    .where('digest', 'in', sorted)
    .where(unusedBlob(cutoff))
    .execute();
  const gone = rows.map((r) => r.digest);
  if (gone.length > 0) await x.db.deleteFrom('blobs').where('digest', 'in', gone).execute();
  await appendEvents(
    x,
    rows.map((r) => ({
      at,
      actor,
      action: 'gc.delete.blob',
      digest: r.digest,
      detail: { size: Number(r.size) },
    })),
  );
  const deleted = rows.map((r) => ({ digest: r.digest, size: Number(r.size) }));
  await insertPending(x, pendingFor(deleted), toSqlTime(at));
  return deleted;
}
