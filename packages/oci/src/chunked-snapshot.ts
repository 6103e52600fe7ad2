import type { IndexedPack } from './chunk-index.js';
import { ChunkIndexError } from './chunk-index.js';
import { Annotations } from './classify.js';
import type { Digest } from './digest.js';
import { OciValidationError } from './errors.js';
import type { Descriptor, ImageManifest } from './manifest.js';
import { ChunkedMediaTypes } from './media-types.js';
import { checkSnapshotFileName } from './snapshot-files.js';

/** One file of an incremental snapshot: its name and its chunk index layer. */
export interface ChunkedFile {
  title: string;
  index: Descriptor;
}

/** The layers of an incremental snapshot manifest, sorted by role. */
export interface ChunkedSnapshotLayout {
  /** Files in manifest (export) order. */
  files: ChunkedFile[];
  /** Pack layers by digest. */
  packs: Map<Digest, Descriptor>;
}

/**
 * Splits an incremental snapshot manifest into its files and packs, checking the rules of
 * docs/incremental-snapshots.md §2 that need only the manifest: the artifact type, a usable and
 * unique title on every index (the rule of every snapshot, `checkSnapshotFileName`), and no layer of another type.
 *
 * @throws {OciValidationError} `MANIFEST_INVALID` (or `UNSUPPORTED` for another artifact type)
 */
export function chunkedSnapshotLayout(manifest: ImageManifest): ChunkedSnapshotLayout {
  if (manifest.artifactType !== ChunkedMediaTypes.snapshotArtifact) {
    throw new OciValidationError(
      'UNSUPPORTED',
      `not an incremental snapshot (artifactType ${manifest.artifactType ?? 'none'})`,
      'artifactType',
    );
  }
  if (manifest.config.mediaType !== ChunkedMediaTypes.snapshotConfig) {
    throw new OciValidationError(
      'MANIFEST_INVALID',
      `config type ${manifest.config.mediaType} is not ${ChunkedMediaTypes.snapshotConfig}`,
      'config.mediaType',
    );
  }
  const files: ChunkedFile[] = [];
  const titles = new Set<string>();
  const packs = new Map<Digest, Descriptor>();
  manifest.layers.forEach((layer, i) => {
    if (layer.mediaType === ChunkedMediaTypes.chunkPack) {
      if (!layer.digest.startsWith('sha256:')) {
        throw new OciValidationError('MANIFEST_INVALID', 'packs are sha256', `layers[${i}].digest`);
      }
      packs.set(layer.digest as Digest, layer);
      return;
    }
    if (layer.mediaType !== ChunkedMediaTypes.chunkIndex) {
      throw new OciValidationError(
        'MANIFEST_INVALID',
        `unexpected layer type ${layer.mediaType} in an incremental snapshot`,
        `layers[${i}].mediaType`,
      );
    }
    const title = checkSnapshotFileName(
      layer.annotations?.[Annotations.title],
      titles,
      `layers[${i}].annotations`,
    );
    files.push({ title, index: layer });
  });
  return { files, packs };
}

/**
 * Checks an index's pack table against the manifest: every pack it names must be a layer of the
 * same manifest with the same size, so that copying or keeping the manifest keeps the packs.
 *
 * @throws {ChunkIndexError}
 */
export function checkIndexPacks(
  packs: readonly IndexedPack[],
  layout: ChunkedSnapshotLayout,
): void {
  for (const pack of packs) {
    const layer = layout.packs.get(pack.digest);
    if (!layer) throw new ChunkIndexError(`pack ${pack.digest} is not a layer of the manifest`, 64);
    if (layer.size !== pack.size) {
      throw new ChunkIndexError(
        `pack ${pack.digest} is ${pack.size} bytes in the index, ${layer.size} in the manifest`,
        64,
      );
    }
  }
}

/** What an incremental snapshot version costs, against the version pushed before it. */
export interface IncrementalStats {
  /** Sum of the files' logical sizes (holes included): what the VM sees. */
  logicalBytes: number;
  /** Bytes the version needs stored: its packs and chunk indexes (config excluded). */
  storedBytes: number;
  /** Of those, bytes in packs and indexes the previous version also lists. */
  sharedBytes: number;
  /** Bytes this version added: `storedBytes - sharedBytes`. */
  newBytes: number;
  /** The tag compared against: the repository's incremental version pushed before this one. */
  previous?: { tag: string; digest: string };
}
