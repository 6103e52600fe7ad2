/**
 * The deletion queue: storage objects the index no longer needs wait in `gc_pending` until a
 * drain deletes them, and pushes take back what they need first (`reviveForPush`).
 */

import { forEachChunk } from '../../batch.js';
import { type Executor, upsert } from '../../dialect.js';
import type { SqlTime } from '../../schema.js';
import { existingBlobs } from './blobs.js';
import { type RepositoryKnown, repositoryKnown } from './plan.js';

/** A storage object the index no longer needs, waiting for the collector to delete it. */
export interface PendingObject {
  key: string;
  /** What the index must not hold any more for the object to go. */
  kind: 'blob' | 'manifest' | 'referrer' | 'link' | 'tag';
  repository?: string;
  /** The blob, or the manifest (for `referrer`: the referring manifest). */
  digest?: string;
  tag?: string;
  size?: number;
}

/** Adds objects to the deletion queue, `BATCH_SIZE` per statement. */
export async function insertPending(
  x: Executor,
  objects: readonly PendingObject[],
  at: SqlTime,
): Promise<void> {
  await forEachChunk(objects, async (part) => {
    await x.db
      .insertInto('gc_pending')
      .values(
        part.map((o) => ({
          object_key: o.key,
          kind: o.kind,
          repository: o.repository ?? null,
          digest: o.digest ?? null,
          tag: o.tag ?? null,
          size: o.size ?? 0,
          created_at: at,
        })),
      )
      .execute();
  });
}

/**
 * Orphans (objects the index does not know) join the pending list, in one transaction that
 * checks again that the index still does not know them; returns those added.
 */
export async function condemnOrphans(
  x: Executor,
  objects: readonly PendingObject[],
  at: SqlTime,
  cutoff: SqlTime,
): Promise<PendingObject[]> {
  const needed = await stillNeeded(x, objects, cutoff);
  const orphans = objects.filter((_, i) => !needed[i]);
  await insertPending(x, orphans, at);
  return orphans;
}

/** For each object, whether the index holds something that needs it. */
async function stillNeeded(
  x: Executor,
  objects: readonly PendingObject[],
  cutoff: SqlTime,
): Promise<boolean[]> {
  const blobs = await existingBlobs(
    x,
    objects.filter((o) => o.kind === 'blob' && o.digest).map((o) => o.digest as string),
  );
  const digests = [...new Set(objects.flatMap((o) => (o.digest ? [o.digest] : [])))];
  const recent = new Set<string>();
  await forEachChunk(digests, async (part) => {
    const rows = await x.db
      .selectFrom('gc_recent')
      .select('digest')
      .where('digest', 'in', part)
      .where('at', '>=', cutoff)
      .execute();
    for (const r of rows) recent.add(r.digest);
  });
  const known = new Map<string, RepositoryKnown>();
  const out: boolean[] = [];
  for (const o of objects) {
    if (o.digest !== undefined && recent.has(o.digest)) {
      out.push(true);
      continue;
    }
    if (o.kind === 'blob') {
      out.push(o.digest !== undefined && blobs.has(o.digest));
      continue;
    }
    const repo = o.repository ?? '';
    let k = known.get(repo);
    if (!k) {
      k = await repositoryKnown(x, repo);
      known.set(repo, k);
    }
    const d = o.digest ?? '';
    if (o.kind === 'tag') out.push(k.tags.has(o.tag ?? ''));
    else if (o.kind === 'link') out.push(k.links.has(d) || k.referenced.has(d));
    else out.push(k.manifests.has(d));
  }
  return out;
}

/** What one drain step did. */
export interface DrainResult {
  deleted: PendingObject[];
  /** Pending objects the index needs again (a push came back for them): kept in storage. */
  rescued: number;
  /** Whether more pending rows may follow. */
  more: boolean;
}

/**
 * Deletes up to `limit` pending objects: inside one write transaction the rows are locked
 * (MySQL) or the database is (SQLite), each object is checked against the index once more,
 * `remove` deletes the keys still unneeded from storage, and only then are the rows dropped.
 * A push that needs an object again deletes its pending row first (`reviveForPush`), so it
 * either lands before this transaction (the object stays) or waits for it and finds the object
 * gone (it uploads again). If `remove` fails, nothing is committed and the next run retries.
 */
export async function drainPending(
  x: Executor,
  limit: number,
  cutoff: SqlTime,
  remove: (keys: string[]) => Promise<void>,
): Promise<DrainResult> {
  let query = x.db.selectFrom('gc_pending').selectAll().orderBy('id').limit(limit);
  if (x.dialect === 'mysql') query = query.forUpdate();
  const rows = await query.execute();
  if (rows.length === 0) return { deleted: [], rescued: 0, more: false };
  const objects: PendingObject[] = rows.map((r) => ({
    key: r.object_key,
    kind: r.kind as PendingObject['kind'],
    ...(r.repository !== null ? { repository: r.repository } : {}),
    ...(r.digest !== null ? { digest: r.digest } : {}),
    ...(r.tag !== null ? { tag: r.tag } : {}),
    size: Number(r.size),
  }));
  const needed = await stillNeeded(x, objects, cutoff);
  const deleted = objects.filter((_, i) => !needed[i]);
  await remove([...new Set(deleted.map((o) => o.key))]);
  await x.db
    .deleteFrom('gc_pending')
    .where(
      'id',
      'in',
      rows.map((r) => r.id),
    )
    .execute();
  return { deleted, rescued: objects.length - deleted.length, more: rows.length === limit };
}

/**
 * Called by a push before it looks in storage for what it will use (a blob it uploads or
 * mounts; a manifest's own digest, blobs and children, and its tags): the digests are noted in
 * `gc_recent` (a collector that has not decided yet sees them as needed for the grace period)
 * and any pending deletion of them is cancelled (a collector that has decided skips them, or,
 * if it is deleting them right now, the push waits and then finds them gone and uploads). Together with {@link drainPending} this means a push never ends up naming an
 * object the collector deletes after the push looked at it.
 */
export async function reviveForPush(
  x: Executor,
  repository: string,
  digests: readonly string[],
  tags: readonly string[],
  at: SqlTime,
): Promise<void> {
  await forEachChunk([...new Set(digests)].sort(), async (part) => {
    const insert = x.db.insertInto('gc_recent').values(part.map((digest) => ({ digest, at })));
    await upsert(x, insert, ['digest'], { at }).execute();
    await x.db.deleteFrom('gc_pending').where('digest', 'in', part).execute();
  });
  if (tags.length > 0) {
    await x.db
      .deleteFrom('gc_pending')
      .where('repository', '=', repository)
      .where('tag', 'in', [...tags])
      .execute();
  }
}

/** Forgets push announcements older than the cutoff (they no longer protect anything). */
export async function pruneRecent(x: Executor, cutoff: SqlTime): Promise<void> {
  await x.db.deleteFrom('gc_recent').where('at', '<', cutoff).execute();
}
