import type { Readable } from 'node:stream';
import {
  ChunkIndexError,
  chunkedSnapshotLayout,
  type ImageManifest,
  OciValidationError,
  type SnapshotConfig,
  snapshotImportEntries,
  type TarEntry,
  verifyingStream,
} from '@epoch/oci';
import type { Registry } from '@epoch/registry';
import { type BlobReader, chunkedImportEntries } from '@epoch/registry/client';
import { ApiProblem } from '../api/errors.js';

/**
 * The entries of a `cocoon snapshot import` tar (`@epoch/oci` `snapshotImportEntries`), its
 * `snapshot.json` the one pushed (or version 1 rebuilt from the config) named `localName`.
 * Each layer's bytes are read for `repository` (so only blobs linked there) and verified
 * against its digest as they stream.
 */
export function snapshotTarEntries(
  registry: Registry,
  repository: string,
  manifest: ImageManifest,
  config: SnapshotConfig,
  localName: string,
): TarEntry[] {
  try {
    return snapshotImportEntries(manifest, config, { name: localName }, async (layer) => {
      return verified(
        await registry.blobs.read(repository, layer.digest),
        layer.digest,
        layer.size,
      );
    });
  } catch (err) {
    throw unusable(err);
  }
}

/**
 * The same tar for an incremental snapshot (`chunkedImportEntries`): every file reassembled from
 * its chunk index, packs read in ranges for `repository`, every chunk verified as it streams.
 * Every index is read (and verified) before this returns, so a bad index is refused before the
 * first byte.
 */
export async function chunkedSnapshotTarEntries(
  registry: Registry,
  repository: string,
  manifest: ImageManifest,
  config: SnapshotConfig,
  localName: string,
): Promise<TarEntry[]> {
  const blobs: BlobReader = async (digest, read) => {
    if (read.range) {
      const { start, end } = read.range;
      return registry.blobs.read(repository, digest, { offset: start, length: end - start + 1 });
    }
    return verified(await registry.blobs.read(repository, digest), digest, read.size);
  };
  try {
    const layout = chunkedSnapshotLayout(manifest);
    return await chunkedImportEntries(blobs, layout, config, { overrides: { name: localName } });
  } catch (err) {
    throw unusable(err);
  }
}

/** `source`, failing at its end unless its bytes are `size` long and hash to `digest`. */
export function verified(source: Readable, digest: string, size: number): Readable {
  const checked = source.pipe(verifyingStream({ digest, size }));
  source.on('error', (err) => checked.destroy(err));
  return checked;
}

function unusable(err: unknown): unknown {
  if (!(err instanceof OciValidationError || err instanceof ChunkIndexError)) return err;
  return new ApiProblem(415, 'UNSUPPORTED_KIND', `not a usable snapshot: ${err.message}`);
}
