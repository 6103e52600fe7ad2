import type {
  Digest,
  ImageManifest,
  RepositoryPresence,
  RepositoryScan,
  ScanError,
  ScannedManifest,
} from '@epoch/oci';
import { type Selectable, sql } from 'kysely';
import { forEachChunk } from '../batch.js';
import { type Executor, ignoreDuplicate } from '../dialect.js';
import type { ManifestsTable, SqlTime } from '../schema.js';
import { toSqlTime } from '../sql-time.js';
import { indexNames, lockRepositoryId, recountRepositories } from './aggregates.js';
import { factColumns, factsOf, insertReferences, type ManifestFacts } from './manifests.js';
import { repositoryId } from './repositories.js';

/** Something that could not be read or applied; the run goes on without it. */
export type ReconcileError = ScanError;

/** Added/removed counters. */
export interface AddedRemoved {
  added: number;
  removed: number;
}

/** What a reconcile changed in the index. All zero (and no errors) means it already agreed. */
export interface ReconcileReport {
  repositories: AddedRemoved;
  tags: AddedRemoved & { updated: number };
  /** `updated`: rows whose derived columns (kind, sizes, subject…) were wrong. */
  manifests: AddedRemoved & { updated: number };
  /** Repository↔blob links. */
  links: AddedRemoved;
  /** Blob rows added, and blob rows whose size or reference count was corrected. */
  blobs: { added: number; updated: number };
  /** Repositories whose aggregates (counts, sizes) differed from their rows and were corrected. */
  aggregates: number;
  /** Tags and manifests read by the scan but deleted from storage before they were applied. */
  vanished: number;
  errors: ReconcileError[];
}

/** An empty report, to add each repository's changes to. */
export function emptyReport(): ReconcileReport {
  return {
    repositories: { added: 0, removed: 0 },
    tags: { added: 0, updated: 0, removed: 0 },
    manifests: { added: 0, updated: 0, removed: 0 },
    links: { added: 0, removed: 0 },
    blobs: { added: 0, updated: 0 },
    aggregates: 0,
    vanished: 0,
    errors: [],
  };
}

/** A manifest row as reconcile compares it: every column but its repository and raw bytes. */
type ManifestRow = Omit<Selectable<ManifestsTable>, 'repository_id' | 'raw'>;

function earlier(a: Date | undefined, cutoff: Date): Date {
  // Storage clocks (an S3 server) may run ahead of ours: never record a time after the
  // scan's start, or the row would look like a push the scan missed.
  return a === undefined || a > cutoff ? cutoff : a;
}

function sameFacts(row: ManifestRow, columns: ReturnType<typeof factColumns>): boolean {
  return (
    row.media_type === columns.media_type &&
    row.artifact_type === columns.artifact_type &&
    row.kind === columns.kind &&
    Number(row.size) === columns.size &&
    Number(row.total_size) === columns.total_size &&
    Number(row.layer_count) === columns.layer_count &&
    row.subject_digest === columns.subject_digest &&
    row.config_digest === columns.config_digest &&
    row.config_media_type === columns.config_media_type &&
    row.platform_sizes === columns.platform_sizes &&
    row.annotations === columns.annotations
  );
}

async function replaceReferences(
  x: Executor,
  manifestId: number,
  repositoryId: number,
  facts: ManifestFacts,
): Promise<void> {
  await x.db.deleteFrom('manifest_blobs').where('manifest_id', '=', manifestId).execute();
  await x.db.deleteFrom('manifest_children').where('manifest_id', '=', manifestId).execute();
  await insertReferences(x, manifestId, repositoryId, facts);
}

/**
 * Corrects a blob row's size, and the `total_size` of every repository holding the blob by the
 * difference. The blob row is locked first: pushes that add the blob to a repository read its
 * size under the same lock, so each sees either the old size (and is shifted here) or the new.
 */
async function correctBlobSize(x: Executor, digest: string, size: number): Promise<boolean> {
  let query = x.db.selectFrom('blobs').select('size').where('digest', '=', digest);
  if (x.dialect === 'mysql') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (row === undefined || Number(row.size) === size) return false;
  await x.db.updateTable('blobs').set({ size }).where('digest', '=', digest).execute();
  const holders = x.db
    .selectFrom('repository_blobs')
    .select('repository_id')
    .where('digest', '=', digest)
    .union(
      x.db
        .selectFrom('manifest_blobs')
        .select(sql<number>`coalesce(repository_id, 0)`.as('repository_id'))
        .where('digest', '=', digest),
    );
  const ids = (await holders.execute()).map((r) => Number(r.repository_id));
  await forEachChunk(
    ids.sort((a, b) => a - b),
    async (part) => {
      await x.db
        .updateTable('repositories')
        .set({ total_size: sql`total_size + ${size - Number(row.size)}` })
        .where('id', 'in', part)
        .execute();
    },
  );
  return true;
}

/**
 * Sets each blob's `ref_count` to the number of manifest rows referencing it, where it differs;
 * returns how many rows changed. Counting (rather than adding and subtracting) is what makes a
 * reconcile converge on exact counts whatever the damage.
 */
export async function recountBlobReferences(
  x: Executor,
  digests: readonly string[] | 'all',
  at: SqlTime,
): Promise<number> {
  const count = sql<number>`(select count(*) from manifest_blobs where manifest_blobs.digest = blobs.digest)`;
  const update = () =>
    x.db
      .updateTable('blobs')
      .set({ ref_count: count, updated_at: at })
      .where(sql<boolean>`ref_count <> ${count}`);
  if (digests === 'all') return Number((await update().executeTakeFirst()).numUpdatedRows);
  let changed = 0;
  await forEachChunk([...new Set(digests)].sort(), async (part) => {
    changed += Number(
      (await update().where('digest', 'in', part).executeTakeFirst()).numUpdatedRows,
    );
  });
  return changed;
}

/** One repository's reconcile in progress: what every phase of it reads and adds to. */
interface Pass {
  readonly x: Executor;
  readonly repo: RepositoryScan;
  readonly rid: number;
  readonly startedAt: Date;
  /** `startedAt` as stored: rows at or after it are never deleted or moved. */
  readonly cutoff: SqlTime;
  readonly report: ReconcileReport;
  /** Blobs whose references changed: their counts are recounted at the end. */
  readonly touched: Set<string>;
}

/** A time from storage, never after the scan's start (see {@link earlier}). */
function nowish(p: Pass, d: Date | undefined): SqlTime {
  return toSqlTime(earlier(d, p.startedAt));
}

/**
 * Makes the index's rows for one repository agree with storage; run inside one write
 * transaction. Adds or corrects manifests (derived columns too), tags, links and blob rows,
 * and removes what storage no longer has, except rows written at or after `startedAt`: those
 * may be pushes that landed after the storage read, and must not be undone. An empty `repo`
 * (no manifests, tags or blobs) removes the repository when nothing newer holds it.
 */
export async function reconcileRepository(
  x: Executor,
  read: RepositoryScan,
  startedAt: Date,
  report: ReconcileReport,
  recheck?: (repository: string) => Promise<RepositoryPresence>,
): Promise<void> {
  let repo = read;
  const empty = repo.manifests.size === 0 && repo.blobs.size === 0;
  const rid = await repositoryRow(x, repo, startedAt, empty, report);
  if (rid === undefined) return;
  const counters = JSON.stringify({ ...report, errors: 0 });
  // Every write to the repository's rows holds its lock (see aggregates.ts): the recount at
  // the end then counts rows no concurrent push can change before this commits.
  await lockRepositoryId(x, rid);
  // A delete removes storage first, then the index under this lock: what storage still holds
  // now, with the lock held, is either still there or its index rows are deleted after this
  // commits. Without the recheck a delete between the read and here would be undone.
  if (recheck && !empty) repo = withoutVanished(read, await recheck(read.name), report);
  const adopted = await adoptReferences(x, rid);
  const p: Pass = {
    x,
    repo,
    rid,
    startedAt,
    cutoff: toSqlTime(startedAt),
    report,
    touched: new Set(),
  };
  await reconcileRows(p);
  await recountChanged(p, adopted > 0 || JSON.stringify({ ...report, errors: 0 }) !== counters);
  if (empty) await removeRepositoryIfEmpty(x, rid, report);
}

/**
 * References written before `manifest_blobs.repository_id` existed (a replica still running
 * older code while the migration ran) get it now; returns how many.
 */
async function adoptReferences(x: Executor, rid: number): Promise<number> {
  const adopted = await x.db
    .updateTable('manifest_blobs')
    .set({ repository_id: rid })
    .where('repository_id', 'is', null)
    .where('manifest_id', 'in', (eb) =>
      eb.selectFrom('manifests').select('id').where('repository_id', '=', rid),
    )
    .executeTakeFirst();
  return Number(adopted.numUpdatedRows);
}

/** Manifests, tags, blob rows and links of the repository, made to agree with the scan. */
async function reconcileRows(p: Pass): Promise<void> {
  const rows = await manifestRows(p.x, p.rid);
  const ids = await reconcileManifests(p, rows);
  await reconcileTags(p, ids);
  await removeManifests(p, rows);
  const blobDigests = [...p.repo.blobs.keys()].sort();
  await reconcileBlobs(p, blobDigests);
  await reconcileLinks(p, blobDigests);
}

/**
 * Recounts what the pass changed: the reference counts of the blobs it touched, and the
 * repository's aggregates when `changed` (from the rows as this transaction leaves them).
 * Every other count, and drift in repositories it did not change, is found by the reconcile's
 * last pass (`recountBlobReferences(…, 'all')`, `repairAggregates`).
 */
async function recountChanged(p: Pass, changed: boolean): Promise<void> {
  if (p.touched.size > 0) {
    p.report.blobs.updated += await recountBlobReferences(
      p.x,
      [...p.touched],
      toSqlTime(new Date()),
    );
  }
  if (changed) p.report.aggregates += await recountRepositories(p.x, [p.rid]);
}

/** The scan less the tags and manifests storage no longer holds. */
function withoutVanished(
  repo: RepositoryScan,
  now: RepositoryPresence,
  report: ReconcileReport,
): RepositoryScan {
  const tags = new Map([...repo.tags].filter(([name]) => now.tags.has(name)));
  // A manifest still named by a kept tag stays (an upstream bucket's tag is its own manifest).
  const named = new Set([...tags.values()].map((t) => t.digest));
  const manifests = new Map(
    [...repo.manifests].filter(([digest]) => now.manifests.has(digest) || named.has(digest)),
  );
  const vanished = repo.tags.size - tags.size + repo.manifests.size - manifests.size;
  if (vanished === 0) return repo;
  report.vanished += vanished;
  return { ...repo, tags, manifests };
}

/**
 * The repository's id, its row inserted (with creation and update times from storage) when
 * storage has it and the index does not; `undefined` when neither has anything.
 */
async function repositoryRow(
  x: Executor,
  repo: RepositoryScan,
  startedAt: Date,
  empty: boolean,
  report: ReconcileReport,
): Promise<number | undefined> {
  const existing = await repositoryId(x, repo.name);
  if (existing !== undefined || empty) return existing;
  const times = [...repo.manifests.values(), ...repo.tags.values()].map((m) =>
    earlier(m.pushedAt, startedAt).getTime(),
  );
  const first = new Date(times.length > 0 ? Math.min(...times) : startedAt.getTime());
  const last = new Date(times.length > 0 ? Math.max(...times) : startedAt.getTime());
  // Ignore a concurrent insert of the same name: the row is what matters, not who made it.
  const insert = x.db
    .insertInto('repositories')
    .values({ name: repo.name, created_at: toSqlTime(first), updated_at: toSqlTime(last) });
  await ignoreDuplicate(x, insert, 'name').execute();
  const rid = await repositoryId(x, repo.name);
  if (rid === undefined) throw new Error(`repository ${repo.name} disappeared during insert`);
  await indexNames(x, [{ id: rid, name: repo.name }]);
  report.repositories.added++;
  return rid;
}

/** The repository's manifest rows by digest. */
async function manifestRows(x: Executor, rid: number): Promise<Map<string, ManifestRow>> {
  const rows = new Map<string, ManifestRow>();
  for (const row of await x.db
    .selectFrom('manifests')
    .select([
      'id',
      'digest',
      'media_type',
      'artifact_type',
      'kind',
      'size',
      'total_size',
      'layer_count',
      'subject_digest',
      'config_digest',
      'config_media_type',
      'platform_sizes',
      'annotations',
      'pushed_at',
    ])
    .where('repository_id', '=', rid)
    .execute()) {
    rows.set(row.digest, { ...row, id: Number(row.id) });
  }
  return rows;
}

/**
 * The blob and child references of the given manifest rows, read in bounded statements rather
 * than two queries per manifest (at a million manifests, those alone took most of a reconcile).
 */
async function referencesOf(
  x: Executor,
  manifestIds: readonly number[],
): Promise<{ blobs: Map<number, string[]>; children: Map<number, string[]> }> {
  const blobs = new Map<number, string[]>();
  const children = new Map<number, string[]>();
  const add = (map: Map<number, string[]>, id: number | string, digest: string) => {
    const list = map.get(Number(id)) ?? [];
    list.push(digest);
    map.set(Number(id), list);
  };
  await forEachChunk(manifestIds, async (part) => {
    for (const r of await x.db
      .selectFrom('manifest_blobs')
      .select(['manifest_id', 'digest'])
      .where('manifest_id', 'in', part)
      .execute()) {
      add(blobs, r.manifest_id, r.digest);
    }
    for (const r of await x.db
      .selectFrom('manifest_children')
      .select(['manifest_id', 'child_digest'])
      .where('manifest_id', 'in', part)
      .execute()) {
      add(children, r.manifest_id, r.child_digest);
    }
  });
  return { blobs, children };
}

/** Whether `have` holds exactly the digests of `want` (each once). */
function sameSet(have: readonly string[], want: ReadonlySet<string>): boolean {
  return have.length === want.size && have.every((d) => want.has(d));
}

/**
 * Adds the manifests storage has and the index lacks, and corrects those whose derived columns
 * or references differ; images first, so an index's sizes can be taken from its children.
 * Returns the row id of every manifest storage has.
 */
async function reconcileManifests(
  p: Pass,
  rows: ReadonlyMap<string, ManifestRow>,
): Promise<Map<string, number>> {
  const { x, repo, rid } = p;
  const images = new Map<string, ImageManifest>();
  for (const [digest, m] of repo.manifests) {
    if (m.parsed.kind === 'manifest') images.set(digest, m.parsed.manifest);
  }
  const ordered = [...repo.manifests.values()].sort(
    (a, b) => Number(a.parsed.kind === 'index') - Number(b.parsed.kind === 'index'),
  );
  const references = await referencesOf(
    x,
    [...rows.values()].map((r) => r.id),
  );
  const ids = new Map<string, number>();
  for (const m of ordered) {
    const facts = await factsOf(x, rid, {
      digest: m.digest as Digest,
      bytes: m.bytes,
      parsed: m.parsed,
      childManifests: images,
    });
    const row = rows.get(m.digest);
    if (row === undefined) {
      ids.set(m.digest, await addManifest(p, m, facts));
      continue;
    }
    ids.set(m.digest, row.id);
    await correctManifest(p, row, m, facts, {
      blobs: references.blobs.get(row.id) ?? [],
      children: references.children.get(row.id) ?? [],
    });
  }
  return ids;
}

/**
 * Corrects a manifest row whose derived columns or references differ from what its bytes
 * say. The references may be damaged even when the row is right: they are compared too.
 */
async function correctManifest(
  p: Pass,
  row: ManifestRow,
  m: ScannedManifest,
  facts: ManifestFacts,
  have: { blobs: readonly string[]; children: readonly string[] },
): Promise<void> {
  const { x, rid } = p;
  const columns = factColumns(m.parsed.mediaType, m.bytes, facts);
  const wantBlobs = new Set(facts.blobs.map((b) => b.digest));
  const sameRow = sameFacts(row, columns);
  const sameReferences =
    sameSet(have.blobs, wantBlobs) && sameSet(have.children, new Set(facts.children));
  if (sameRow && sameReferences) return;
  if (!sameRow) await x.db.updateTable('manifests').set(columns).where('id', '=', row.id).execute();
  await replaceReferences(x, row.id, rid, facts);
  for (const d of [...have.blobs, ...wantBlobs]) p.touched.add(d);
  p.report.manifests.updated++;
}

/** Inserts a manifest row storage has (with its references); returns its id. */
async function addManifest(p: Pass, m: ScannedManifest, facts: ManifestFacts): Promise<number> {
  const { x, rid } = p;
  const insert = x.db.insertInto('manifests').values({
    repository_id: rid,
    digest: m.digest,
    ...factColumns(m.parsed.mediaType, m.bytes, facts),
    raw: m.bytes,
    pushed_at: nowish(p, m.pushedAt),
  });
  // A push of the same digest may have committed since the rows were read; it wrote the same
  // row, so keep it.
  await ignoreDuplicate(x, insert, 'repository_id').execute();
  const row = await x.db
    .selectFrom('manifests')
    .select('id')
    .where('repository_id', '=', rid)
    .where('digest', '=', m.digest)
    .executeTakeFirstOrThrow();
  const id = Number(row.id);
  await replaceReferences(x, id, rid, facts);
  for (const b of facts.blobs) p.touched.add(b.digest);
  p.report.manifests.added++;
  return id;
}

/** Adds and moves tags to what storage has, and removes the tags it no longer has. */
async function reconcileTags(p: Pass, ids: ReadonlyMap<string, number>): Promise<void> {
  const { x, repo, rid, cutoff, report } = p;
  const tagRows = await x.db
    .selectFrom('tags')
    .select(['id', 'name', 'digest', 'pushed_at'])
    .where('repository_id', '=', rid)
    .execute();
  const tagByName = new Map(tagRows.map((t) => [t.name, t]));
  for (const [name, tag] of [...repo.tags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const manifestId = ids.get(tag.digest);
    if (manifestId === undefined) {
      report.errors.push({
        repository: repo.name,
        message: `tag ${name} points at ${tag.digest}, which storage does not hold`,
      });
      continue;
    }
    const row = tagByName.get(name);
    if (row === undefined) {
      const insert = x.db.insertInto('tags').values({
        repository_id: rid,
        name,
        manifest_id: manifestId,
        digest: tag.digest,
        pushed_at: nowish(p, tag.pushedAt),
      });
      // A push that created the tag meanwhile is newer than what was read: it wins.
      await ignoreDuplicate(x, insert, 'name').execute();
      report.tags.added++;
    } else if (row.digest !== tag.digest && row.pushed_at < cutoff) {
      await x.db
        .updateTable('tags')
        .set({ manifest_id: manifestId, digest: tag.digest, pushed_at: nowish(p, tag.pushedAt) })
        .where('id', '=', row.id)
        .where('pushed_at', '<', cutoff)
        .execute();
      report.tags.updated++;
    }
  }
  const staleTags = tagRows
    .filter((t) => !repo.tags.has(t.name) && t.pushed_at < cutoff)
    .map((t) => Number(t.id));
  await forEachChunk(staleTags, async (part) => {
    const result = await x.db
      .deleteFrom('tags')
      .where('id', 'in', part)
      .where('pushed_at', '<', cutoff)
      .executeTakeFirst();
    report.tags.removed += Number(result.numDeletedRows);
  });
}

/** Removes the manifests storage no longer has, unless a newer tag still points at one. */
async function removeManifests(p: Pass, rows: ReadonlyMap<string, ManifestRow>): Promise<void> {
  const { x, repo, cutoff } = p;
  for (const row of rows.values()) {
    if (repo.manifests.has(row.digest) || row.pushed_at >= cutoff) continue;
    const newer = await x.db
      .selectFrom('tags')
      .select('id')
      .where('manifest_id', '=', row.id)
      .where('pushed_at', '>=', cutoff)
      .executeTakeFirst();
    if (newer !== undefined) continue;
    for (const b of await x.db
      .selectFrom('manifest_blobs')
      .select('digest')
      .where('manifest_id', '=', row.id)
      .execute()) {
      p.touched.add(b.digest);
    }
    await x.db.deleteFrom('tags').where('manifest_id', '=', row.id).execute();
    await x.db.deleteFrom('manifest_blobs').where('manifest_id', '=', row.id).execute();
    await x.db.deleteFrom('manifest_children').where('manifest_id', '=', row.id).execute();
    await x.db.deleteFrom('manifests').where('id', '=', row.id).execute();
    p.report.manifests.removed++;
  }
}

/** Adds the blob rows storage has and the index lacks, and corrects sizes that differ. */
async function reconcileBlobs(p: Pass, digests: readonly string[]): Promise<void> {
  const { x, repo, report } = p;
  const known = new Map<string, number>();
  await forEachChunk(digests, async (part) => {
    for (const b of await x.db
      .selectFrom('blobs')
      .select(['digest', 'size'])
      .where('digest', 'in', part)
      .execute()) {
      known.set(b.digest, Number(b.size));
    }
  });
  for (const digest of digests) {
    const blob = repo.blobs.get(digest);
    if (blob === undefined) continue;
    const size = known.get(digest);
    if (size !== undefined) {
      if (size !== blob.size && (await correctBlobSize(x, digest, blob.size))) {
        report.blobs.updated++;
      }
      continue;
    }
    // References to it may already exist: its count is recounted at the end.
    p.touched.add(digest);
    const at = nowish(p, blob.linkedAt);
    const insert = x.db.insertInto('blobs').values({
      digest,
      size: blob.size,
      media_type: blob.mediaType ?? 'application/octet-stream',
      ref_count: 0,
      created_at: at,
      updated_at: at,
    });
    await ignoreDuplicate(x, insert, 'digest').execute();
    report.blobs.added++;
  }
}

/** Adds the links storage has and the index lacks, and removes those it no longer has. */
async function reconcileLinks(p: Pass, digests: readonly string[]): Promise<void> {
  const { x, repo, rid, cutoff, report } = p;
  const linkRows = await x.db
    .selectFrom('repository_blobs')
    .select(['digest', 'linked_at'])
    .where('repository_id', '=', rid)
    .execute();
  const linked = new Set(linkRows.map((l) => l.digest));
  for (const digest of digests) {
    const blob = repo.blobs.get(digest);
    if (!blob?.linked || linked.has(digest)) continue;
    const insert = x.db
      .insertInto('repository_blobs')
      .values({ repository_id: rid, digest, linked_at: nowish(p, blob.linkedAt) });
    await ignoreDuplicate(x, insert, 'digest').execute();
    report.links.added++;
  }
  const staleLinks = linkRows
    .filter((l) => !repo.blobs.get(l.digest)?.linked && l.linked_at < cutoff)
    .map((l) => l.digest);
  await forEachChunk(staleLinks, async (part) => {
    const result = await x.db
      .deleteFrom('repository_blobs')
      .where('repository_id', '=', rid)
      .where('digest', 'in', part)
      .where('linked_at', '<', cutoff)
      .executeTakeFirst();
    report.links.removed += Number(result.numDeletedRows);
  });
}

/** Deletes a repository storage no longer has, when nothing newer holds it. */
async function removeRepositoryIfEmpty(
  x: Executor,
  rid: number,
  report: ReconcileReport,
): Promise<void> {
  const holds = await x.db
    .selectFrom('repositories')
    .select('id')
    .where('id', '=', rid)
    .where((eb) =>
      eb.or([
        eb.exists(eb.selectFrom('manifests').select('id').where('repository_id', '=', rid)),
        eb.exists(
          eb.selectFrom('repository_blobs').select('digest').where('repository_id', '=', rid),
        ),
      ]),
    )
    .executeTakeFirst();
  if (holds !== undefined) return;
  await x.db.deleteFrom('repositories').where('id', '=', rid).execute();
  report.repositories.removed++;
}

/** Names of every repository row, for finding those storage no longer has. */
export async function repositoryNames(x: Executor): Promise<string[]> {
  return (await x.db.selectFrom('repositories').select('name').execute()).map((r) => r.name);
}
