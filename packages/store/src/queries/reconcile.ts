import type { Digest, ImageManifest, ParsedManifest } from '@epoch/oci';
import { type Selectable, sql } from 'kysely';
import type { Executor } from '../dialect.js';
import type { ManifestsTable, SqlTime } from '../schema.js';
import { toSqlTime } from '../sql-time.js';
import { factsOf, type ManifestFacts } from './manifests.js';
import { repositoryId } from './repositories.js';

/** A manifest storage holds (see {@link StorageSnapshot}). */
export interface SnapshotManifest {
  readonly digest: Digest | string;
  readonly bytes: Uint8Array;
  readonly parsed: ParsedManifest;
  /** When storage wrote it; defaults to the snapshot's start. */
  readonly pushedAt?: Date | undefined;
}

/** A tag storage holds: the digest of its bytes. */
export interface SnapshotTag {
  readonly digest: Digest | string;
  readonly pushedAt?: Date | undefined;
}

/** A blob a repository may serve: linked by a marker, or referenced by its manifests. */
export interface SnapshotBlob {
  readonly size: number;
  readonly mediaType?: string | undefined;
  /** Whether storage links it to the repository (a `repository_blobs` row). */
  readonly linked: boolean;
  readonly linkedAt?: Date | undefined;
}

/** Everything storage holds for one repository. */
export interface RepositorySnapshot {
  readonly name: string;
  /** By digest; every tag's digest must be among them. */
  readonly manifests: ReadonlyMap<string, SnapshotManifest>;
  /** Tag name → what it points at. */
  readonly tags: ReadonlyMap<string, SnapshotTag>;
  /** Blob digest → size and link state. */
  readonly blobs: ReadonlyMap<string, SnapshotBlob>;
}

/** Something that could not be read or applied; the run goes on without it. */
export interface ReconcileError {
  readonly repository?: string | undefined;
  readonly key?: string | undefined;
  readonly message: string;
}

/**
 * The registry as storage holds it, read without touching the index (`@epoch/registry`'s
 * `readStorageSnapshot` returns one). Defined here, structurally, so the index does not
 * depend on the storage package.
 */
export interface StorageSnapshot {
  /**
   * When the storage read began. Index rows written at or after it may record pushes the read
   * missed, so reconciling never deletes or moves them.
   */
  readonly startedAt: Date;
  readonly repositories: Iterable<RepositorySnapshot>;
  /** Problems met while reading; carried into the report. */
  readonly errors?: readonly ReconcileError[];
}

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
    errors: [],
  };
}

/** A manifest row as reconcile compares it: every column but its repository and raw bytes. */
type ManifestRow = Omit<Selectable<ManifestsTable>, 'repository_id' | 'raw'>;

const IN_CHUNK = 500;

function chunks<T>(items: readonly T[], size = IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function earlier(a: Date | undefined, cutoff: Date): Date {
  // Storage clocks (an S3 server) may run ahead of ours: never record a time after the
  // snapshot start, or the row would look like a push the snapshot missed.
  return a === undefined || a > cutoff ? cutoff : a;
}

/** The columns `factsOf` derives, in the form stored. */
function factColumns(m: SnapshotManifest, facts: ManifestFacts) {
  return {
    media_type: m.parsed.mediaType,
    artifact_type: facts.artifactType,
    kind: facts.kind,
    size: m.bytes.byteLength,
    total_size: facts.totalSize,
    layer_count: facts.layerCount,
    subject_digest: facts.subject,
    config_digest: facts.configDigest,
    config_media_type: facts.configMediaType,
    platform_sizes: facts.platformSizes,
    annotations: facts.annotations,
  };
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
  facts: ManifestFacts,
): Promise<void> {
  await x.db.deleteFrom('manifest_blobs').where('manifest_id', '=', manifestId).execute();
  await x.db.deleteFrom('manifest_children').where('manifest_id', '=', manifestId).execute();
  if (facts.blobs.length > 0) {
    await x.db
      .insertInto('manifest_blobs')
      .values(facts.blobs.map((b) => ({ manifest_id: manifestId, digest: b.digest })))
      .execute();
  }
  if (facts.children.length > 0) {
    await x.db
      .insertInto('manifest_children')
      .values(facts.children.map((c) => ({ manifest_id: manifestId, child_digest: c })))
      .execute();
  }
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
  for (const part of chunks([...new Set(digests)].sort())) {
    changed += Number(
      (await update().where('digest', 'in', part).executeTakeFirst()).numUpdatedRows,
    );
  }
  return changed;
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
  repo: RepositorySnapshot,
  startedAt: Date,
  report: ReconcileReport,
): Promise<void> {
  const cutoff = toSqlTime(startedAt);
  const nowish = (d: Date | undefined): SqlTime => toSqlTime(earlier(d, startedAt));
  const empty = repo.manifests.size === 0 && repo.blobs.size === 0;
  let repoId = await repositoryId(x, repo.name);
  if (repoId === undefined) {
    if (empty) return;
    const times = [...repo.manifests.values(), ...repo.tags.values()].map((m) =>
      earlier(m.pushedAt, startedAt).getTime(),
    );
    const first = new Date(times.length > 0 ? Math.min(...times) : startedAt.getTime());
    const last = new Date(times.length > 0 ? Math.max(...times) : startedAt.getTime());
    // Ignore a concurrent insert of the same name: the row is what matters, not who made it.
    const insert = x.db
      .insertInto('repositories')
      .values({ name: repo.name, created_at: toSqlTime(first), updated_at: toSqlTime(last) });
    if (x.dialect === 'mysql') await insert.onDuplicateKeyUpdate({ name: sql`name` }).execute();
    else await insert.onConflict((oc) => oc.column('name').doNothing()).execute();
    repoId = await repositoryId(x, repo.name);
    if (repoId === undefined) throw new Error(`repository ${repo.name} disappeared during insert`);
    report.repositories.added++;
  }
  const rid = repoId;
  const touched = new Set<string>();

  // ---- manifests: images first, so an index's sizes can be taken from its children ----
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
  const images = new Map<string, ImageManifest>();
  for (const [digest, m] of repo.manifests) {
    if (m.parsed.kind === 'manifest') images.set(digest, m.parsed.manifest);
  }
  const ordered = [...repo.manifests.values()].sort(
    (a, b) => Number(a.parsed.kind === 'index') - Number(b.parsed.kind === 'index'),
  );
  const ids = new Map<string, number>();
  for (const m of ordered) {
    const facts = await factsOf(x, rid, {
      digest: m.digest as Digest,
      bytes: m.bytes,
      parsed: m.parsed,
      childManifests: images,
    });
    for (const b of facts.blobs) touched.add(b.digest);
    const columns = factColumns(m, facts);
    const row = rows.get(m.digest);
    if (row === undefined) {
      const insert = x.db.insertInto('manifests').values({
        repository_id: rid,
        digest: m.digest,
        ...columns,
        raw: m.bytes,
        pushed_at: nowish(m.pushedAt),
      });
      // A push of the same digest may have committed since the read above; it wrote the same
      // row, so keep it.
      if (x.dialect === 'mysql') {
        await insert.onDuplicateKeyUpdate({ repository_id: sql`repository_id` }).execute();
      } else {
        await insert.onConflict((oc) => oc.doNothing()).execute();
      }
      const id = await x.db
        .selectFrom('manifests')
        .select('id')
        .where('repository_id', '=', rid)
        .where('digest', '=', m.digest)
        .executeTakeFirstOrThrow();
      ids.set(m.digest, Number(id.id));
      await replaceReferences(x, Number(id.id), facts);
      report.manifests.added++;
    } else {
      ids.set(m.digest, row.id);
      if (!sameFacts(row, columns)) {
        await x.db.updateTable('manifests').set(columns).where('id', '=', row.id).execute();
        await replaceReferences(x, row.id, facts);
        report.manifests.updated++;
      } else {
        // The references may be damaged even when the row is right: compare them too.
        const have = await x.db
          .selectFrom('manifest_blobs')
          .select('digest')
          .where('manifest_id', '=', row.id)
          .execute();
        const kids = await x.db
          .selectFrom('manifest_children')
          .select('child_digest')
          .where('manifest_id', '=', row.id)
          .execute();
        const sameBlobs =
          have.length === facts.blobs.length &&
          have.every((h) => facts.blobs.some((b) => b.digest === h.digest));
        const sameKids =
          kids.length === facts.children.length &&
          kids.every((k) => facts.children.includes(k.child_digest));
        if (!sameBlobs || !sameKids) {
          for (const h of have) touched.add(h.digest);
          await replaceReferences(x, row.id, facts);
          report.manifests.updated++;
        }
      }
    }
  }

  // ---- tags ----
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
        pushed_at: nowish(tag.pushedAt),
      });
      // A push that created the tag meanwhile is newer than what was read: it wins.
      if (x.dialect === 'mysql') await insert.onDuplicateKeyUpdate({ name: sql`name` }).execute();
      else await insert.onConflict((oc) => oc.doNothing()).execute();
      report.tags.added++;
    } else if (row.digest !== tag.digest && row.pushed_at < cutoff) {
      await x.db
        .updateTable('tags')
        .set({ manifest_id: manifestId, digest: tag.digest, pushed_at: nowish(tag.pushedAt) })
        .where('id', '=', row.id)
        .where('pushed_at', '<', cutoff)
        .execute();
      report.tags.updated++;
    }
  }
  const staleTags = tagRows
    .filter((t) => !repo.tags.has(t.name) && t.pushed_at < cutoff)
    .map((t) => Number(t.id));
  for (const part of chunks(staleTags)) {
    const result = await x.db
      .deleteFrom('tags')
      .where('id', 'in', part)
      .where('pushed_at', '<', cutoff)
      .executeTakeFirst();
    report.tags.removed += Number(result.numDeletedRows);
  }

  // ---- manifests storage no longer has (unless a newer tag still points at one) ----
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
      touched.add(b.digest);
    }
    await x.db.deleteFrom('tags').where('manifest_id', '=', row.id).execute();
    await x.db.deleteFrom('manifest_blobs').where('manifest_id', '=', row.id).execute();
    await x.db.deleteFrom('manifest_children').where('manifest_id', '=', row.id).execute();
    await x.db.deleteFrom('manifests').where('id', '=', row.id).execute();
    report.manifests.removed++;
  }

  // ---- blob rows, then links ----
  const blobDigests = [...repo.blobs.keys()].sort();
  const known = new Map<string, number>();
  for (const part of chunks(blobDigests)) {
    for (const b of await x.db
      .selectFrom('blobs')
      .select(['digest', 'size'])
      .where('digest', 'in', part)
      .execute()) {
      known.set(b.digest, Number(b.size));
    }
  }
  for (const digest of blobDigests) {
    const blob = repo.blobs.get(digest);
    if (blob === undefined) continue;
    touched.add(digest);
    const size = known.get(digest);
    if (size === undefined) {
      const at = nowish(blob.linkedAt);
      const insert = x.db.insertInto('blobs').values({
        digest,
        size: blob.size,
        media_type: blob.mediaType ?? 'application/octet-stream',
        ref_count: 0,
        created_at: at,
        updated_at: at,
      });
      if (x.dialect === 'mysql')
        await insert.onDuplicateKeyUpdate({ digest: sql`digest` }).execute();
      else await insert.onConflict((oc) => oc.doNothing()).execute();
      report.blobs.added++;
    } else if (size !== blob.size) {
      await x.db
        .updateTable('blobs')
        .set({ size: blob.size })
        .where('digest', '=', digest)
        .execute();
      report.blobs.updated++;
    }
  }
  const linkRows = await x.db
    .selectFrom('repository_blobs')
    .select(['digest', 'linked_at'])
    .where('repository_id', '=', rid)
    .execute();
  const linked = new Set(linkRows.map((l) => l.digest));
  for (const digest of blobDigests) {
    const blob = repo.blobs.get(digest);
    if (!blob?.linked || linked.has(digest)) continue;
    const insert = x.db
      .insertInto('repository_blobs')
      .values({ repository_id: rid, digest, linked_at: nowish(blob.linkedAt) });
    if (x.dialect === 'mysql') await insert.onDuplicateKeyUpdate({ digest: sql`digest` }).execute();
    else await insert.onConflict((oc) => oc.doNothing()).execute();
    report.links.added++;
  }
  const staleLinks = linkRows
    .filter((l) => !repo.blobs.get(l.digest)?.linked && l.linked_at < cutoff)
    .map((l) => l.digest);
  for (const part of chunks(staleLinks)) {
    const result = await x.db
      .deleteFrom('repository_blobs')
      .where('repository_id', '=', rid)
      .where('digest', 'in', part)
      .where('linked_at', '<', cutoff)
      .executeTakeFirst();
    report.links.removed += Number(result.numDeletedRows);
  }

  report.blobs.updated += await recountBlobReferences(x, [...touched], toSqlTime(new Date()));

  // ---- a repository storage no longer has, and nothing newer holds ----
  if (empty) {
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
    if (holds === undefined) {
      await x.db.deleteFrom('repositories').where('id', '=', rid).execute();
      report.repositories.removed++;
    }
  }
}

/** Names of every repository row, for finding those storage no longer has. */
export async function repositoryNames(x: Executor): Promise<string[]> {
  return (await x.db.selectFrom('repositories').select('name').execute()).map((r) => r.name);
}
