import { sql } from 'kysely';
import { forEachChunk } from '../batch.js';
import type { Executor } from '../dialect.js';
import type { SqlTime } from '../schema.js';
import { fromSqlTime, toSqlTime } from '../sql-time.js';
import { recountRepositories } from './aggregates.js';
import { type RetentionPolicy, tagsToDelete } from './retention.js';

/** A manifest the collector deletes (or would). */
export interface GcManifest {
  id: number;
  digest: string;
  size: number;
  /** Its subject, when it is a referrer (the referrer descriptor object goes with it). */
  subject: string | null;
  /** When it was pushed: with the grace period, when it can be collected (plans only). */
  pushedAt?: Date;
}

/** A tag retention deletes (or would). */
export interface GcTag {
  name: string;
  manifestId: number;
  digest: string;
  pushedAt: SqlTime;
}

/** What one repository loses in a run. */
export interface RepositoryGcPlan {
  repositoryId: number;
  repository: string;
  tags: GcTag[];
  manifests: GcManifest[];
  /** Digests whose repository link goes (no surviving manifest of the repository uses them). */
  links: string[];
}

/** A blob row the collector deletes (or would). */
export interface GcBlob {
  digest: string;
  size: number;
  /** Its last push or link: with the grace period, when it can be collected (dry runs only). */
  updatedAt?: Date;
}

/** When a run looks at the index: what is younger than `cutoff` is never garbage. */
export interface GcClock {
  /** Now minus the grace period. */
  cutoff: SqlTime;
  now: Date;
}

interface RepositoryRows {
  manifests: {
    id: number;
    digest: string;
    size: number;
    subject: string | null;
    pushedAt: SqlTime;
  }[];
  tags: GcTag[];
  children: { manifestId: number; childDigest: string }[];
  manifestBlobs: { manifestId: number; digest: string }[];
  /** Links, with their blob's `updated_at` (a re-link of an existing link moves only that). */
  links: { digest: string; linkedAt: SqlTime; blobUpdatedAt: SqlTime | null }[];
  /** Digests a push announced since the cutoff (see `reviveForPush`). */
  recent: Set<string>;
}

async function loadRepository(
  x: Executor,
  repositoryId: number,
  cutoff: SqlTime | undefined,
): Promise<RepositoryRows> {
  const recent =
    cutoff === undefined
      ? []
      : await x.db.selectFrom('gc_recent').select('digest').where('at', '>=', cutoff).execute();
  const manifests = await x.db
    .selectFrom('manifests')
    .select(['id', 'digest', 'size', 'subject_digest', 'pushed_at'])
    .where('repository_id', '=', repositoryId)
    .execute();
  const tags = await x.db
    .selectFrom('tags')
    .select(['name', 'manifest_id', 'digest', 'pushed_at'])
    .where('repository_id', '=', repositoryId)
    .execute();
  const children = await x.db
    .selectFrom('manifest_children')
    .innerJoin('manifests', 'manifests.id', 'manifest_children.manifest_id')
    .select(['manifest_children.manifest_id', 'manifest_children.child_digest'])
    .where('manifests.repository_id', '=', repositoryId)
    .execute();
  const manifestBlobs = await x.db
    .selectFrom('manifest_blobs')
    .innerJoin('manifests', 'manifests.id', 'manifest_blobs.manifest_id')
    .select(['manifest_blobs.manifest_id', 'manifest_blobs.digest'])
    .where('manifests.repository_id', '=', repositoryId)
    .execute();
  const links = await x.db
    .selectFrom('repository_blobs')
    .leftJoin('blobs', 'blobs.digest', 'repository_blobs.digest')
    .select(['repository_blobs.digest', 'repository_blobs.linked_at', 'blobs.updated_at'])
    .where('repository_blobs.repository_id', '=', repositoryId)
    .execute();
  return {
    recent: new Set(recent.map((r) => r.digest)),
    manifests: manifests.map((m) => ({
      id: Number(m.id),
      digest: m.digest,
      size: Number(m.size),
      subject: m.subject_digest,
      pushedAt: m.pushed_at,
    })),
    tags: tags.map((t) => ({
      name: t.name,
      manifestId: Number(t.manifest_id),
      digest: t.digest,
      pushedAt: t.pushed_at,
    })),
    children: children.map((c) => ({
      manifestId: Number(c.manifest_id),
      childDigest: c.child_digest,
    })),
    manifestBlobs: manifestBlobs.map((b) => ({
      manifestId: Number(b.manifest_id),
      digest: b.digest,
    })),
    links: links.map((l) => ({
      digest: l.digest,
      linkedAt: l.linked_at,
      blobUpdatedAt: l.updated_at,
    })),
  };
}

/**
 * Mark: the manifests that stay. Roots are tagged manifests, manifests younger than the grace
 * period (or the policy's untagged expiry), and with `keepLast` the repository's newest
 * top-level manifests; then children of live indexes and referrers of live subjects, to a
 * fixpoint.
 */
function liveManifests(
  rows: RepositoryRows,
  tags: readonly GcTag[],
  policy: RetentionPolicy | undefined,
  clock: GcClock,
): Set<number> {
  const byDigest = new Map(rows.manifests.map((m) => [m.digest, m]));
  const byId = new Map(rows.manifests.map((m) => [m.id, m]));
  const childDigests = new Map<number, string[]>();
  const isChild = new Set<string>();
  for (const c of rows.children) {
    childDigests.set(c.manifestId, [...(childDigests.get(c.manifestId) ?? []), c.childDigest]);
    isChild.add(c.childDigest);
  }
  const referrers = new Map<string, number[]>();
  for (const m of rows.manifests) {
    if (m.subject) referrers.set(m.subject, [...(referrers.get(m.subject) ?? []), m.id]);
  }
  const expiry = policy?.untaggedExpiryMs;
  const untaggedSince =
    expiry === undefined
      ? clock.cutoff
      : ([clock.cutoff, toSqlTime(new Date(clock.now.getTime() - expiry))].sort()[0] ??
        clock.cutoff);

  const live = new Set<number>();
  const queue: number[] = [];
  const keep = (id: number): void => {
    if (live.has(id)) return;
    live.add(id);
    queue.push(id);
  };
  for (const t of tags) keep(t.manifestId);
  for (const m of rows.manifests) {
    if (m.pushedAt >= untaggedSince || rows.recent.has(m.digest)) keep(m.id);
  }
  if (policy?.keepLast !== undefined) {
    const topLevel = rows.manifests
      .filter((m) => m.subject === null && !isChild.has(m.digest))
      .sort((a, b) => (a.pushedAt === b.pushedAt ? b.id - a.id : a.pushedAt < b.pushedAt ? 1 : -1));
    for (const m of topLevel.slice(0, policy.keepLast)) keep(m.id);
  }
  while (queue.length > 0) {
    const id = queue.pop() as number;
    const m = byId.get(id);
    for (const child of childDigests.get(id) ?? []) {
      const row = byDigest.get(child);
      if (row) keep(row.id);
    }
    if (m) for (const r of referrers.get(m.digest) ?? []) keep(r);
  }
  return live;
}

function planFrom(
  repositoryId: number,
  repository: string,
  rows: RepositoryRows,
  policy: RetentionPolicy | undefined,
  clock: GcClock,
  applyTagRules: boolean,
): RepositoryGcPlan {
  const doomedTags = applyTagRules ? tagsToDelete(policy, rows.tags, clock.now) : [];
  const doomed = new Set(doomedTags.map((t) => t.name));
  const remaining = rows.tags.filter((t) => !doomed.has(t.name));
  const live = liveManifests(rows, remaining, policy, clock);
  const manifests = rows.manifests
    .filter((m) => !live.has(m.id))
    .map(({ id, digest, size, subject, pushedAt }) => ({
      id,
      digest,
      size,
      subject,
      pushedAt: fromSqlTime(pushedAt),
    }));
  const used = new Set(
    rows.manifestBlobs.filter((b) => live.has(b.manifestId)).map((b) => b.digest),
  );
  const links = rows.links
    .filter(
      (l) =>
        l.linkedAt < clock.cutoff &&
        (l.blobUpdatedAt === null || l.blobUpdatedAt < clock.cutoff) &&
        !rows.recent.has(l.digest) &&
        !used.has(l.digest),
    )
    .map((l) => l.digest)
    .sort();
  return { repositoryId, repository, tags: doomedTags, manifests, links };
}

/** Every repository, by id. */
export async function gcRepositories(x: Executor): Promise<{ id: number; name: string }[]> {
  const rows = await x.db.selectFrom('repositories').select(['id', 'name']).orderBy('id').execute();
  return rows.map((r) => ({ id: Number(r.id), name: r.name }));
}

/** Read-only: what a run would delete in one repository. */
export async function planRepository(
  x: Executor,
  repo: { id: number; name: string },
  policy: RetentionPolicy | undefined,
  clock: GcClock,
): Promise<RepositoryGcPlan> {
  return planFrom(
    repo.id,
    repo.name,
    await loadRepository(x, repo.id, clock.cutoff),
    policy,
    clock,
    true,
  );
}

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
  const at = toSqlTime(clock.now);
  const base = { at, actor, repository: plan.repository };
  await insertEvents(x, [
    ...tags.map((t) => ({ ...base, action: 'gc.delete.tag', reference: t.name, digest: t.digest })),
    ...manifests.map((m) => ({
      ...base,
      action: 'gc.delete.manifest',
      digest: m.digest,
      detail: JSON.stringify({ size: m.size }),
    })),
    ...links.map((d) => ({ ...base, action: 'gc.delete.link', digest: d })),
  ]);
  const done = { ...plan, tags, manifests, links };
  await insertPending(x, pendingFor(done), at);
  // The repository row was locked first: recount its aggregates from what is left.
  if (tags.length + manifests.length + links.length > 0) {
    await recountRepositories(x, [plan.repositoryId]);
  }
  return done;
}

/** An audit row, as the collector writes them: in the transaction of the deletion itself. */
export interface GcEvent {
  at: SqlTime;
  actor: string;
  action: string;
  repository?: string | null;
  reference?: string | null;
  digest?: string | null;
  detail?: string | null;
}

/** Appends audit rows, 500 per statement. */
export async function insertEvents(x: Executor, events: readonly GcEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    await x.db
      .insertInto('audit_events')
      .values(
        events.slice(i, i + 500).map((e) => ({
          at: e.at,
          actor: e.actor,
          action: e.action,
          repository: e.repository ?? null,
          reference: e.reference ?? null,
          digest: e.digest ?? null,
          detail: e.detail ?? null,
        })),
      )
      .execute();
  }
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

function unusedBlob(cutoff: SqlTime) {
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
 * Deletes the blob rows among `digests` that are still unused, inside the caller's write
 * transaction (rows locked first on MySQL: a concurrent link or reference upserts the same
 * row, so it either committed before, and the blob is kept, or waits and re-creates it).
 */
export async function deleteBlobRows(
  x: Executor,
  digests: readonly string[],
  cutoff: SqlTime,
  actor: string,
  at: SqlTime,
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
  await insertEvents(
    x,
    rows.map((r) => ({
      at,
      actor,
      action: 'gc.delete.blob',
      digest: r.digest,
      detail: JSON.stringify({ size: Number(r.size) }),
    })),
  );
  const deleted = rows.map((r) => ({ digest: r.digest, size: Number(r.size) }));
  await insertPending(x, pendingFor(deleted), at);
  return deleted;
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
  const ids = [...doomedManifests];
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await x.db
      .selectFrom('manifest_blobs')
      .select('digest')
      .where('manifest_id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const r of rows) candidates.add(r.digest);
  }
  for (let after: string | undefined; ; ) {
    const page = await blobCandidates(x, cutoff, after, 1000);
    for (const b of page) candidates.add(b.digest);
    if (page.length < 1000) break;
    after = page.at(-1)?.digest;
  }
  const freed: GcBlob[] = [];
  const all = [...candidates].sort();
  for (let i = 0; i < all.length; i += 500) {
    const batch = all.slice(i, i + 500);
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
  }
  return freed;
}

/** Which of `digests` have a blob row. */
export async function existingBlobs(x: Executor, digests: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < digests.length; i += 500) {
    const rows = await x.db
      .selectFrom('blobs')
      .select('digest')
      .where('digest', 'in', digests.slice(i, i + 500))
      .execute();
    for (const r of rows) found.add(r.digest);
  }
  return found;
}

/** What the index knows of one repository, for the orphan sweep and post-commit checks. */
export interface RepositoryKnown {
  manifests: Set<string>;
  tags: Set<string>;
  links: Set<string>;
  /** Blobs its manifests reference. */
  referenced: Set<string>;
}

/** The manifests, tags, links and referenced blobs the index holds for `repository`. */
export async function repositoryKnown(x: Executor, repository: string): Promise<RepositoryKnown> {
  const repo = await x.db
    .selectFrom('repositories')
    .select('id')
    .where('name', '=', repository)
    .executeTakeFirst();
  const known: RepositoryKnown = {
    manifests: new Set(),
    tags: new Set(),
    links: new Set(),
    referenced: new Set(),
  };
  if (!repo) return known;
  const rows = await loadRepository(x, Number(repo.id), undefined);
  for (const m of rows.manifests) known.manifests.add(m.digest);
  for (const t of rows.tags) known.tags.add(t.name);
  for (const l of rows.links) known.links.add(l.digest);
  for (const b of rows.manifestBlobs) known.referenced.add(b.digest);
  return known;
}

/**
 * Takes (or renews) the named lock for `holder` until `now + ttlMs`: true when it is held by
 * `holder` afterwards. A lock whose holder let it expire (a crashed process) is taken over.
 */
export async function acquireLock(
  x: Executor,
  name: string,
  holder: string,
  now: Date,
  ttlMs: number,
): Promise<boolean> {
  const at = toSqlTime(now);
  const expires = toSqlTime(new Date(now.getTime() + ttlMs));
  let query = x.db.selectFrom('gc_locks').selectAll().where('name', '=', name);
  if (x.dialect === 'mysql') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) {
    try {
      await x.db.insertInto('gc_locks').values({ name, holder, expires_at: expires }).execute();
      return true;
    } catch {
      // Another process inserted it first.
      return false;
    }
  }
  if (row.holder !== holder && row.expires_at >= at) return false;
  await x.db
    .updateTable('gc_locks')
    .set({ holder, expires_at: expires })
    .where('name', '=', name)
    .execute();
  return true;
}

/** Releases the lock if `holder` still holds it. */
export async function releaseLock(x: Executor, name: string, holder: string): Promise<void> {
  await x.db.deleteFrom('gc_locks').where('name', '=', name).where('holder', '=', holder).execute();
}

/** A finished run, as stored. */
export interface GcRunRecord {
  id: number;
  startedAt: Date;
  finishedAt: Date;
  dryRun: boolean;
  report: Record<string, unknown>;
}

/** Stores a finished run's report; keeps the last 50. */
export async function saveRun(x: Executor, run: Omit<GcRunRecord, 'id'>): Promise<number> {
  const result = await x.db
    .insertInto('gc_runs')
    .values({
      started_at: toSqlTime(run.startedAt),
      finished_at: toSqlTime(run.finishedAt),
      dry_run: run.dryRun ? 1 : 0,
      report: JSON.stringify(run.report),
    })
    .executeTakeFirstOrThrow();
  const id = Number(result.insertId);
  await x.db
    .deleteFrom('gc_runs')
    .where('id', '<=', id - 50)
    .execute();
  return id;
}

/** The most recent run, or `undefined`. */
export async function lastRun(x: Executor): Promise<GcRunRecord | undefined> {
  const row = await x.db
    .selectFrom('gc_runs')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    id: Number(row.id),
    startedAt: fromSqlTime(row.started_at),
    finishedAt: fromSqlTime(row.finished_at),
    dryRun: Number(row.dry_run) === 1,
    report: JSON.parse(row.report) as Record<string, unknown>,
  };
}

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

async function insertPending(
  x: Executor,
  objects: readonly PendingObject[],
  at: SqlTime,
): Promise<void> {
  for (let i = 0; i < objects.length; i += 500) {
    await x.db
      .insertInto('gc_pending')
      .values(
        objects.slice(i, i + 500).map((o) => ({
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
  }
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
  for (let i = 0; i < digests.length; i += 500) {
    const rows = await x.db
      .selectFrom('gc_recent')
      .select('digest')
      .where('digest', 'in', digests.slice(i, i + 500))
      .where('at', '>=', cutoff)
      .execute();
    for (const r of rows) recent.add(r.digest);
  }
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
    if (x.dialect === 'mysql') await insert.onDuplicateKeyUpdate({ at }).execute();
    else await insert.onConflict((oc) => oc.column('digest').doUpdateSet({ at })).execute();
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
