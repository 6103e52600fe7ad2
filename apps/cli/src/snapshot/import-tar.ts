import type { Writable } from 'node:stream';
import {
  Annotations,
  type ImageManifest,
  importEnvelope,
  type SnapshotConfig,
  sparseSegments,
} from '@epoch/oci';
import { type RegistryClient, type TarFile, writeTar } from '@epoch/registry/client';
import { CliError } from '../support/errors.js';
import { Progress } from '../support/progress.js';

/** Where the snapshot comes from, and how to name it locally. */
export interface ImportTarOptions {
  client: RegistryClient;
  repository: string;
  manifest: ImageManifest;
  config: SnapshotConfig;
  name?: string;
  description?: string;
}

/**
 * Writes the `cocoon snapshot import` tar of a snapshot artifact (reference §3.2) to `out`:
 * `snapshot.json` first, then one entry per layer in manifest order, named by its title, with
 * its mode and the sparse PAX records from the config. Layer bytes stream from the registry,
 * digest-verified; any failure rejects before the tar's end-of-archive marker is written, so a
 * consumer never sees a complete-looking truncated stream.
 */
export async function writeImportTar(out: Writable, options: ImportTarOptions): Promise<void> {
  const { client, repository, manifest, config } = options;
  const overrides = {
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.description !== undefined ? { description: options.description } : {}),
  };
  const envelope = importEnvelope(config, overrides);
  await writeTar(out, files());

  function* files(): Generator<TarFile> {
    yield { name: 'snapshot.json', size: envelope.length, mode: 0o644, body: [envelope] };
    for (const layer of manifest.layers) {
      const title = layer.annotations?.[Annotations.title];
      if (!title || title.includes('/') || title === 'snapshot.json') {
        throw new CliError(`a layer of ${repository} (${layer.digest}) has no usable file name`);
      }
      const file = config.files?.[title];
      const segments = file ? sparseSegments(file) : undefined;
      if (segments && file?.sparseSize === undefined) {
        throw new CliError(`${title}: sparse map without a logical size`);
      }
      const progress = new Progress(title, layer.size);
      yield {
        name: title,
        size: layer.size,
        mode: file?.mode ?? 0o640,
        ...(segments
          ? {
              pax: {
                'COCOON.sparse.map':
                  typeof file?.sparseMap === 'string' ? file.sparseMap : JSON.stringify(segments),
                'COCOON.sparse.size': String(file?.sparseSize),
              },
            }
          : {}),
        body: client.getBlob(repository, layer.digest, {
          size: layer.size,
          onProgress: (n) => progress.update(n),
        }),
      };
      // Resumed only once the entry above is written.
      progress.done();
    }
  }
}
