import type { Writable } from 'node:stream';
import {
  Annotations,
  type ImageManifest,
  OciValidationError,
  type SnapshotConfig,
  snapshotImportEntries,
  writeTar,
} from '@epoch/oci';
import type { RegistryClient } from '@epoch/registry/client';
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
 * Writes the `cocoon snapshot import` tar of a snapshot artifact to `out`: `snapshot.json`
 * first, then the snapshot's files as `@epoch/oci` `snapshotFiles` reads them. Layer bytes
 * stream from the registry, digest-verified; any failure rejects before the tar's
 * end-of-archive marker is written, so a consumer never sees a complete-looking truncated stream.
 */
export async function writeImportTar(out: Writable, options: ImportTarOptions): Promise<void> {
  const { client, repository, manifest, config } = options;
  const overrides = {
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.description !== undefined ? { description: options.description } : {}),
  };
  await writeTar(
    out,
    usable(repository, () =>
      snapshotImportEntries(manifest, config, overrides, async function* (layer) {
        // Opened when the tar reaches the layer, so the progress line times this layer alone.
        const progress = new Progress(layer.annotations?.[Annotations.title] ?? '', layer.size);
        yield* client.getBlob(repository, layer.digest, {
          size: layer.size,
          onProgress: (n) => progress.update(n),
        });
        progress.done();
      }),
    ),
  );
}

/** `read()`, its format errors told as the CLI tells errors. */
function usable<T>(repository: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof OciValidationError)) throw err;
    throw new CliError(`${repository} is not a usable snapshot: ${err.message}`);
  }
}
