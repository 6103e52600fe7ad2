import {
  classify,
  type Digest,
  type ImageManifest,
  indexTotalSize,
  layerCount,
  manifestTotalSize,
  type ParsedManifest,
  parseManifest,
  platformSizes,
  referencedBlobs,
} from '@epoch/oci';
import { sql } from 'kysely';
import { forEachChunk } from '../batch.js';
import { type Executor, ignoreDuplicate } from '../dialect.js';
import type { SqlTime } from '../schema.js';
import type { ReferrerDescriptor } from '../types.js';
import {
  type AggregateDelta,
  adjustRepository,
  lockRepository,
  members,
  sizeOf,
} from './aggregates.js';
import { addBlobReferences, type BlobReference, removeBlobReferences } from './blobs.js';
import { touchRepository, upsertRepository } from './repositories.js';
import { upsertTag } from './tags.js';

/** A pushed manifest, as `recordManifest` indexes it. */
export interface ManifestRecord {
  /** Digest of `bytes`. */
  digest: Digest;
  /** Media type it is served as; defaults to `parsed.mediaType`. */
  mediaType?: string;
  /** The exact manifest bytes. */
  bytes: Uint8Array;
  /** The document, as `@epoch/oci`'s `parseManifest` validated it. */
  parsed: ParsedManifest;
  /** Tags to point at it (none for a push by digest). */
  tags?: readonly string[];
  /** Push time; defaults to now. */
  pushedAt?: Date;
  /**
   * Children of an index, by digest, for its sizes. Children not given are read from the
   * repository's manifests in the index (they are pushed before their index).
   */
  childManifests?: ReadonlyMap<string, ImageManifest>;
}

/** What `recordManifest` did. */
export interface RecordManifestResult {
  /** False when the repository already held this manifest (only its tags changed). */
  created: boolean;
  /** Row id of the manifest. */
  manifestId: number;
}

/** The derived columns and references of one manifest row. */
export interface ManifestFacts {
  kind: string;
  artifactType: string | null;
  totalSize: number;
  layerCount: number;
  subject: string | null;
  configDigest: string | null;
  configMediaType: string | null;
  platformSizes: string | null;
  annotations: string | null;
  blobs: BlobReference[];
  children: string[];
}

/** A manifest row's columns that its facts and bytes decide, in the form stored. */
export function factColumns(mediaType: string, bytes: Uint8Array, facts: ManifestFacts) {
  return {
    media_type: mediaType,
    artifact_type: facts.artifactType,
    kind: facts.kind,
    size: bytes.byteLength,
    total_size: facts.totalSize,
    layer_count: facts.layerCount,
    subject_digest: facts.subject,
    config_digest: facts.configDigest,
    config_media_type: facts.configMediaType,
    platform_sizes: facts.platformSizes,
    annotations: facts.annotations,
  };
}

async function childrenOf(
  x: Executor,
  repoId: number,
  digests: readonly string[],
  given: ReadonlyMap<string, ImageManifest> | undefined,
): Promise<Map<string, ImageManifest>> {
  const children = new Map<string, ImageManifest>();
  const missing: string[] = [];
  for (const digest of digests) {
    const child = given?.get(digest);
    if (child) children.set(digest, child);
    else missing.push(digest);
  }
  await forEachChunk(missing, async (part) => {
    const rows = await x.db
      .selectFrom('manifests')
      .select(['digest', 'raw', 'media_type'])
      .where('repository_id', '=', repoId)
      .where('digest', 'in', part)
      .execute();
    for (const row of rows) {
      const parsed = parseManifest(row.raw, row.media_type);
      if (parsed.kind === 'manifest') children.set(row.digest, parsed.manifest);
    }
  });
  return children;
}

/** What the index stores about a manifest beyond its bytes (sizes, kind, references). */
export async function factsOf(
  x: Executor,
  repoId: number,
  input: ManifestRecord,
): Promise<ManifestFacts> {
  const { parsed } = input;
  const m = parsed.manifest;
  const common = {
    kind: classify(parsed),
    artifactType: m.artifactType ?? null,
    subject: m.subject?.digest ?? null,
    annotations:
      m.annotations && Object.keys(m.annotations).length > 0 ? JSON.stringify(m.annotations) : null,
  };
  if (parsed.kind === 'manifest') {
    const blobs = new Map<string, BlobReference>();
    for (const d of referencedBlobs(parsed.manifest)) {
      // The same digest twice in one manifest is still one reference from this manifest.
      if (!blobs.has(d.digest))
        blobs.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType });
    }
    return {
      ...common,
      totalSize: manifestTotalSize(parsed.manifest),
      layerCount: layerCount(parsed.manifest),
      configDigest: parsed.manifest.config.digest,
      configMediaType: parsed.manifest.config.mediaType,
      platformSizes: null,
      blobs: [...blobs.values()],
      children: [],
    };
  }
  const childDigests = [...new Set(parsed.manifest.manifests.map((d) => d.digest))];
  const children = await childrenOf(x, repoId, childDigests, input.childManifests);
  const sizes = platformSizes(parsed.manifest, children);
  return {
    ...common,
    totalSize: indexTotalSize(children.values()),
    // Upstream's meaning for an index: the number of children.
    layerCount: parsed.manifest.manifests.length,
    configDigest: null,
    configMediaType: null,
    platformSizes: sizes.length > 0 ? JSON.stringify(sizes) : null,
    blobs: [],
    children: childDigests,
  };
}

/** Writes a manifest row's blob and child references, a bounded number of rows per statement. */
export async function insertReferences(
  x: Executor,
  manifestId: number,
  repositoryId: number,
  facts: Pick<ManifestFacts, 'blobs' | 'children'>,
): Promise<void> {
  await forEachChunk(facts.blobs, async (part) => {
    await x.db
      .insertInto('manifest_blobs')
      .values(
        part.map((b) => ({
          manifest_id: manifestId,
          digest: b.digest,
          repository_id: repositoryId,
        })),
      )
      .execute();
  });
  await forEachChunk(facts.children, async (part) => {
    await x.db
      .insertInto('manifest_children')
      .values(part.map((child) => ({ manifest_id: manifestId, child_digest: child })))
      .execute();
  });
}

async function manifestRow(
  x: Executor,
  repoId: number,
  digest: string,
): Promise<{ id: number; total: number } | undefined> {
  const row = await x.db
    .selectFrom('manifests')
    .select(['id', 'total_size'])
    .where('repository_id', '=', repoId)
    .where('digest', '=', digest)
    .executeTakeFirst();
  return row === undefined ? undefined : { id: Number(row.id), total: Number(row.total_size) };
}

/**
 * Indexes a pushed manifest and its tags; run inside one transaction so the push is in the
 * index all at once. The manifest row, its blob and child references and the blobs'
 * `ref_count` are written only when the row is new: a re-push of the same digest adds no
 * reference, so `ref_count` stays the exact number of manifest rows using each blob.
 */
export async function recordManifest(
  x: Executor,
  repo: string,
  input: ManifestRecord,
  at: SqlTime,
): Promise<RecordManifestResult> {
  // Locks the repository row: the aggregates below are exact differences (see aggregates.ts).
  const repoId = await upsertRepository(x, repo, at, true);
  let row = await manifestRow(x, repoId, input.digest);
  let created = false;
  const delta: Required<AggregateDelta> = { manifests: 0, tags: 0, size: 0, logical: 0 };
  if (row === undefined) {
    const facts = await factsOf(x, repoId, input);
    const insert = x.db.insertInto('manifests').values({
      repository_id: repoId,
      digest: input.digest,
      ...factColumns(input.mediaType ?? input.parsed.mediaType, input.bytes, facts),
      raw: input.bytes,
      pushed_at: at,
    });
    // A concurrent push of the same digest may win the unique key: then it is not ours to
    // count, and the affected-row count says so (0 on a duplicate, 1 on an insert).
    const result = await ignoreDuplicate(x, insert, 'repository_id').executeTakeFirst();
    created = Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    row = await manifestRow(x, repoId, input.digest);
    if (row === undefined) throw new Error(`manifest ${input.digest} disappeared during insert`);
    if (created) {
      const digests = facts.blobs.map((b) => b.digest);
      // Blobs the repository did not hold yet (neither linked nor referenced) add their size.
      const held = await members(x, repoId, digests);
      await insertReferences(x, row.id, repoId, facts);
      await addBlobReferences(x, facts.blobs, at);
      delta.manifests = 1;
      delta.size = await sizeOf(
        x,
        digests.filter((d) => !held.has(d)),
      );
    }
  }
  for (const tag of [...new Set(input.tags ?? [])].sort()) {
    const d = await upsertTag(x, repoId, tag, row.id, input.digest, at, row.total);
    delta.tags += d.tags ?? 0;
    delta.logical += d.logical ?? 0;
  }
  await adjustRepository(x, repoId, delta);
  return { created, manifestId: row.id };
}

/** What `deleteManifest` did. */
export interface DeleteManifestResult {
  /** Whether the repository held the manifest. */
  found: boolean;
  /** The tags that pointed at it and are gone with it, in byte order. */
  untagged: string[];
}

/**
 * Deletes a manifest of a repository with the tags pointing at it, and takes its references
 * off its blobs. Only the transaction whose DELETE removed the row decrements, so two
 * concurrent deletes of one manifest cannot decrement twice.
 */
export async function deleteManifest(
  x: Executor,
  repo: string,
  digest: string,
  at: SqlTime,
): Promise<DeleteManifestResult> {
  const repoId = await lockRepository(x, repo);
  if (repoId === undefined) return { found: false, untagged: [] };
  const row = await manifestRow(x, repoId, digest);
  if (row === undefined) return { found: false, untagged: [] };
  const id = row.id;
  const untagged = (
    await x.db
      .selectFrom('tags')
      .select('name')
      .where('manifest_id', '=', id)
      .orderBy('name')
      .execute()
  ).map((r) => r.name);
  const blobs = (
    await x.db.selectFrom('manifest_blobs').select('digest').where('manifest_id', '=', id).execute()
  ).map((r) => r.digest);
  const tags = await x.db.deleteFrom('tags').where('manifest_id', '=', id).executeTakeFirst();
  await x.db.deleteFrom('manifest_blobs').where('manifest_id', '=', id).execute();
  await x.db.deleteFrom('manifest_children').where('manifest_id', '=', id).execute();
  const deleted = await x.db.deleteFrom('manifests').where('id', '=', id).executeTakeFirst();
  if (Number(deleted.numDeletedRows) === 0) return { found: false, untagged: [] };
  await removeBlobReferences(x, blobs, at);
  // Blobs no other manifest of the repository references, and not linked, leave its size.
  const held = await members(x, repoId, blobs);
  const untaggedCount = Number(tags.numDeletedRows);
  await adjustRepository(x, repoId, {
    manifests: -1,
    tags: -untaggedCount,
    logical: -untaggedCount * row.total,
    size: -(await sizeOf(
      x,
      blobs.filter((d) => !held.has(d)),
    )),
  });
  await touchRepository(x, repoId, at);
  return { found: true, untagged };
}

/** Whether the repository holds the manifest. */
export async function hasManifest(x: Executor, repo: string, digest: string): Promise<boolean> {
  const row = await x.db
    .selectFrom('manifests')
    .innerJoin('repositories', 'repositories.id', 'manifests.repository_id')
    .select('manifests.id')
    .where('repositories.name', '=', repo)
    .where('manifests.digest', '=', digest)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Descriptors of the repository's manifests whose subject is `subject` (the OCI referrers
 * API), in digest order. `artifactType` is the manifest's own, else its config media type (as
 * the distribution spec defines it), and the optional filter matches that value.
 */
export async function listReferrers(
  x: Executor,
  repo: string,
  subject: string,
  artifactType?: string,
): Promise<ReferrerDescriptor[]> {
  const effective = sql<
    string | null
  >`coalesce(manifests.artifact_type, manifests.config_media_type)`;
  let query = x.db
    .selectFrom('manifests')
    .innerJoin('repositories', 'repositories.id', 'manifests.repository_id')
    .select([
      'manifests.digest',
      'manifests.media_type',
      'manifests.size',
      'manifests.annotations',
      effective.as('artifact_type'),
    ])
    .where('repositories.name', '=', repo)
    .where('manifests.subject_digest', '=', subject)
    .orderBy('manifests.digest');
  if (artifactType !== undefined) query = query.where(effective, '=', artifactType);
  const rows = await query.execute();
  return rows.map((row) => {
    const descriptor: ReferrerDescriptor = {
      mediaType: row.media_type,
      digest: row.digest,
      size: Number(row.size),
    };
    if (row.artifact_type) descriptor.artifactType = row.artifact_type;
    if (row.annotations)
      descriptor.annotations = JSON.parse(row.annotations) as Record<string, string>;
    return descriptor;
  });
}
