import type { Digest } from './digest.js';
import type { ImageIndex, ImageManifest, Platform } from './manifest.js';

/** Size of one child of an index. */
export interface PlatformSize {
  /** Digest of the child manifest. */
  digest: Digest;
  /** The child's platform, from the index entry. */
  platform?: Platform;
  /** Config plus layers of the child, in bytes. */
  size: number;
  /** Number of layers of the child. */
  layerCount: number;
}

/** Bytes a manifest references: config size plus the sizes of all layers. */
export function manifestTotalSize(m: ImageManifest): number {
  return m.layers.reduce((total, layer) => total + layer.size, m.config.size);
}

/** Number of layers of a manifest. */
export function layerCount(m: ImageManifest): number {
  return m.layers.length;
}

/**
 * Per-child sizes of an index, in index order: config plus layers of each child, not
 * deduplicated across children. Children missing from `children` (keyed by digest) are left
 * out rather than reported with a made-up size.
 */
export function platformSizes(
  index: ImageIndex,
  children: ReadonlyMap<string, ImageManifest>,
): PlatformSize[] {
  const sizes: PlatformSize[] = [];
  for (const entry of index.manifests) {
    const child = children.get(entry.digest);
    if (child === undefined) continue;
    const size: PlatformSize = {
      digest: entry.digest,
      size: manifestTotalSize(child),
      layerCount: layerCount(child),
    };
    if (entry.platform !== undefined) size.platform = entry.platform;
    sizes.push(size);
  }
  return sizes;
}

/** Storage an index's children take: every distinct blob digest (config or layer) counted once. */
export function indexTotalSize(children: Iterable<ImageManifest>): number {
  const seen = new Map<string, number>();
  for (const child of children) {
    for (const blob of [child.config, ...child.layers]) seen.set(blob.digest, blob.size);
  }
  let total = 0;
  for (const size of seen.values()) total += size;
  return total;
}
