import {
  ChunkedMediaTypes,
  type ImageManifest,
  type IncrementalStats,
  parseManifest,
  type SnapshotConfig,
} from '@epoch/oci';
import { ManifestUnknownError, type Registry } from '@epoch/registry';
import type { Store } from '@epoch/store';

/** How many earlier tags are looked through for the previous incremental version. */
const LOOK_BACK = 50;

/**
 * The saving of an incremental version ({@link IncrementalStats}). "Shared" is counted against
 * the previous incremental version of the same repository (by push time, within the last
 * {@link LOOK_BACK} tags): packs it lists that this one lists again are not new.
 */
export async function incrementalStats(
  index: Store,
  registry: Registry,
  repository: string,
  tag: { name: string; pushedAt: Date },
  manifest: ImageManifest,
  config: SnapshotConfig | undefined,
): Promise<IncrementalStats> {
  const stored = manifest.layers.filter(
    (l) =>
      l.mediaType === ChunkedMediaTypes.chunkPack || l.mediaType === ChunkedMediaTypes.chunkIndex,
  );
  const storedBytes = stored.reduce((sum, l) => sum + l.size, 0);
  const logicalBytes = Object.values(config?.files ?? {}).reduce(
    (sum, f) => sum + (typeof f.size === 'number' ? f.size : 0),
    0,
  );
  const previous = await previousVersion(index, registry, repository, tag);
  const earlier = new Set(previous?.layers ?? []);
  const sharedBytes = stored.reduce((sum, l) => sum + (earlier.has(l.digest) ? l.size : 0), 0);
  return {
    logicalBytes,
    storedBytes,
    sharedBytes,
    newBytes: storedBytes - sharedBytes,
    ...(previous ? { previous: { tag: previous.tag, digest: previous.digest } } : {}),
  };
}

async function previousVersion(
  index: Store,
  registry: Registry,
  repository: string,
  current: { name: string; pushedAt: Date },
): Promise<{ tag: string; digest: string; layers: string[] } | undefined> {
  const page = await index.reads.listTags(repository, { limit: LOOK_BACK });
  const before = page.items.filter(
    (t) =>
      t.kind === 'chunked-snapshot' &&
      t.name !== current.name &&
      t.pushedAt.getTime() <= current.pushedAt.getTime(),
  );
  const candidate = before[0];
  if (!candidate) return undefined;
  try {
    const stored = await registry.manifests.get(repository, candidate.digest);
    const parsed = parseManifest(stored.bytes, stored.mediaType);
    if (parsed.kind !== 'manifest') return undefined;
    return {
      tag: candidate.name,
      digest: candidate.digest,
      layers: parsed.manifest.layers.map((l) => l.digest),
    };
  } catch (err) {
    // Deleted meanwhile: nothing to compare against.
    if (err instanceof ManifestUnknownError) return undefined;
    throw err;
  }
}
