import {
  type ImageManifest,
  OciValidationError,
  type SnapshotConfig,
  snapshotImportEntries,
  type TarEntry,
  verifyingStream,
} from '@epoch/oci';
import type { Registry } from '@epoch/registry';
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
      const source = await registry.blobs.read(repository, layer.digest);
      const checked = source.pipe(verifyingStream({ digest: layer.digest, size: layer.size }));
      source.on('error', (err) => checked.destroy(err));
      return checked;
    });
  } catch (err) {
    if (!(err instanceof OciValidationError)) throw err;
    throw new ApiProblem(415, 'UNSUPPORTED_KIND', `not a usable snapshot: ${err.message}`);
  }
}
