import {
  Annotations,
  type ImageManifest,
  importEnvelope,
  type SnapshotConfig,
  sparseSegments,
  verifyingStream,
} from '@epoch/oci';
import type { Registry } from '@epoch/registry';
import { ApiProblem } from '../api/errors.js';
import type { TarEntry } from './tar.js';

/**
 * The entries of a `cocoon snapshot import` tar (reference §3.2): `snapshot.json` first (the one
 * pushed, or version 1 rebuilt from the config, named `localName`), then one file per layer in manifest order, named by its title, with the
 * mode and the `COCOON.sparse.map`/`COCOON.sparse.size` PAX records from the config's `files`.
 * Each layer's bytes are verified against its digest as they stream.
 */
export function snapshotImportEntries(
  registry: Registry,
  manifest: ImageManifest,
  config: SnapshotConfig,
  localName: string,
): TarEntry[] {
  // The pushed snapshot.json when the config kept it (a lossless round trip), else rebuilt.
  const json = importEnvelope(config, { name: localName });
  const entries: TarEntry[] = [
    { name: 'snapshot.json', size: json.length, mode: 0o644, open: async () => [json] },
  ];
  for (const layer of manifest.layers) {
    const title = layer.annotations?.[Annotations.title];
    if (!title || title.includes('/') || title === 'snapshot.json') {
      throw new ApiProblem(415, 'UNSUPPORTED_KIND', 'a snapshot layer has no usable file name');
    }
    const file = config.files?.[title];
    const segments = file ? sparseSegments(file) : undefined;
    if (segments && file?.sparseSize === undefined) {
      throw new ApiProblem(415, 'UNSUPPORTED_KIND', `${title}: sparse map without a logical size`);
    }
    entries.push({
      name: title,
      size: layer.size,
      mode: file?.mode ?? 0o640,
      ...(segments
        ? {
            pax: {
              'COCOON.sparse.map': JSON.stringify(segments),
              'COCOON.sparse.size': String(file?.sparseSize),
            },
          }
        : {}),
      open: async () => {
        const source = await registry.blobs.read(layer.digest);
        const checked = source.pipe(verifyingStream({ digest: layer.digest, size: layer.size }));
        source.on('error', (err) => checked.destroy(err));
        return checked;
      },
    });
  }
  return entries;
}
