import {
  Annotations,
  ChunkedMediaTypes,
  type ChunkRecordPage,
  checkIndexPacks,
  chunkedSnapshotLayout,
  type Digest,
  type ImageManifest,
  openChunkIndex,
  parseManifest,
} from '@epoch/oci';
import type { RegistryClient } from '../client.js';
import { RegistryNotFoundError } from '../errors.js';
import type { ChunkTable } from './chunk-table.js';
import type { PackList } from './pack-list.js';

/** A snapshot whose chunks a push may reuse: a repository and a tag or digest in it. */
export interface ChunkSource {
  repository: string;
  reference: string;
}

/** What loading known chunks found. */
export interface KnownChunksReport {
  /** Manifests whose indexes were read, as `repository@digest`. */
  versions: string[];
  /** Chunks in the table afterwards. */
  chunks: number;
  /** Index bytes downloaded. */
  indexBytes: number;
}

/**
 * Fills `table` (and `packs`) with the chunks of earlier incremental versions: the `latest` newest ones of
 * `repository` (by their `created` annotation) and each of `bases`. Every index is read as a
 * stream and verified against its digest; a bad one fails the push rather than poison it.
 */
export async function loadKnownChunks(
  client: RegistryClient,
  { table, packs }: { table: ChunkTable; packs: PackList },
  repository: string,
  options: { bases?: readonly ChunkSource[]; latest?: number } = {},
): Promise<KnownChunksReport> {
  const report: KnownChunksReport = { versions: [], chunks: 0, indexBytes: 0 };
  const seenManifests = new Set<string>();
  const seenIndexes = new Set<string>();
  // Room is made for a file's chunks once: its other versions mostly hold the same chunks.
  const reserved = new Set<string>();
  const load = async (repo: string, manifest: ImageManifest, digest: Digest) => {
    const key = `${repo}@${digest}`;
    if (seenManifests.has(key)) return;
    seenManifests.add(key);
    report.versions.push(key);
    const layout = chunkedSnapshotLayout(manifest);
    for (const file of layout.files) {
      if (seenIndexes.has(file.index.digest)) continue;
      seenIndexes.add(file.index.digest);
      const opened = await openChunkIndex(
        client.getBlob(repo, file.index.digest, { size: file.index.size }),
        file.index.size,
      );
      checkIndexPacks(opened.header.packs, layout);
      const ids = opened.header.packs.map((p) => packs.pack(p.digest, p.size, repo));
      if (!reserved.has(file.title)) table.reserve(opened.header.recordCount);
      reserved.add(file.title);
      for await (const page of opened.pages) addPage(table, page, ids);
      report.indexBytes += file.index.size;
    }
  };

  const own = await newestVersions(client, repository, options.latest ?? 3);
  for (const v of own) await load(repository, v.manifest, v.digest);
  for (const base of options.bases ?? []) {
    const fetched = await client.getManifest(base.repository, base.reference);
    const parsed = parseManifest(fetched.bytes, fetched.mediaType);
    if (
      parsed.kind !== 'manifest' ||
      parsed.manifest.artifactType !== ChunkedMediaTypes.snapshotArtifact
    ) {
      throw new RangeError(`${base.repository}:${base.reference} is not an incremental snapshot`);
    }
    await load(base.repository, parsed.manifest, fetched.digest);
  }
  report.chunks = table.size;
  return report;
}

/**
 * Adds a page of an index's data records to the table, their sha256s read in place (an index
 * has hundreds of thousands), `ids` turning the index's pack ordinals into the push's pack
 * numbers.
 */
function addPage(table: ChunkTable, page: ChunkRecordPage, ids: readonly number[]): void {
  const location = { source: 0, offset: 0, length: 0 };
  for (let i = 0; i < page.count; i++) {
    if (page.kindOf(i) !== 'data') continue;
    location.source = ids[page.packOf(i)] as number;
    location.offset = page.offsetOf(i);
    location.length = page.lengthOf(i);
    table.add(page.bytes, location, page.sha256At(i));
  }
}

async function newestVersions(
  client: RegistryClient,
  repository: string,
  count: number,
): Promise<{ manifest: ImageManifest; digest: Digest; created: string }[]> {
  let tags: string[];
  try {
    tags = await client.listTags(repository);
  } catch (err) {
    if (err instanceof RegistryNotFoundError) return [];
    throw err;
  }
  const found = new Map<string, { manifest: ImageManifest; digest: Digest; created: string }>();
  for (const tag of tags) {
    let fetched: Awaited<ReturnType<RegistryClient['getManifest']>>;
    try {
      fetched = await client.getManifest(repository, tag);
    } catch (err) {
      // A tag deleted between the listing and now.
      if (err instanceof RegistryNotFoundError) continue;
      throw err;
    }
    if (found.has(fetched.digest)) continue;
    const parsed = parseManifest(fetched.bytes, fetched.mediaType);
    if (parsed.kind !== 'manifest') continue;
    if (parsed.manifest.artifactType !== ChunkedMediaTypes.snapshotArtifact) continue;
    const created = parsed.manifest.annotations?.[Annotations.created] ?? '';
    found.set(fetched.digest, { manifest: parsed.manifest, digest: fetched.digest, created });
  }
  return [...found.values()]
    .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0))
    .slice(0, count);
}
