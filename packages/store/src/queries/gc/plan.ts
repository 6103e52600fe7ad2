/**
 * GC planning, read-only: which tags, manifests and repository links of one repository a run
 * would delete (mark from the roots a policy keeps), and what the index knows of a repository.
 */

import type { Executor } from '../../dialect.js';
import type { SqlTime } from '../../schema.js';
import { fromSqlTime, toSqlTime } from '../../sql-time.js';
import { type RetentionPolicy, tagsToDelete } from '../retention.js';

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

/** One repository's rows, as a plan reads them. */
export interface RepositoryRows {
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

/** The rows of one repository a plan is made from (`cutoff`: also the recent pushes). */
export async function loadRepository(
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

/**
 * The plan for `rows`: with `applyTagRules`, the tags the policy deletes go first (a plan);
 * without, only what is garbage on the rows as they are (the re-check of an apply).
 */
export function planFrom(
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
