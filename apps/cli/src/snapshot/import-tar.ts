import { once } from 'node:events';
import type { Writable } from 'node:stream';
import {
  Annotations,
  type ImageManifest,
  importEnvelope,
  type SnapshotConfig,
  sparseSegments,
} from '@epoch/oci';
import type { RegistryClient } from '@epoch/registry/client';
import { pack } from 'tar-stream';
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
  const tar = pack();
  // Pumped by hand rather than piped: a pipeline would destroy `out` on an error, and the
  // importer reading it must be killed before it can see its input end.
  const piped = (async () => {
    for await (const chunk of tar as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await once(out, 'drain');
    }
  })();
  piped.catch(() => {});
  const mtime = new Date();
  try {
    await writeEntry(tar, { name: 'snapshot.json', size: envelope.length, mode: 0o644, mtime }, [
      envelope,
    ]);
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
      const pax = segments
        ? {
            'COCOON.sparse.map':
              typeof file?.sparseMap === 'string' ? file.sparseMap : JSON.stringify(segments),
            'COCOON.sparse.size': String(file?.sparseSize),
          }
        : undefined;
      const progress = new Progress(title, layer.size);
      const body = client.getBlob(repository, layer.digest, {
        size: layer.size,
        onProgress: (n) => progress.update(n),
      });
      await writeEntry(
        tar,
        {
          name: title,
          size: layer.size,
          mode: file?.mode ?? 0o640,
          mtime,
          ...(pax ? { pax } : {}),
        },
        body,
      );
      progress.done();
    }
    tar.finalize();
    await piped;
  } catch (err) {
    tar.destroy(err as Error);
    throw err;
  }
}

async function writeEntry(
  tar: ReturnType<typeof pack>,
  header: { name: string; size: number; mode: number; mtime: Date; pax?: Record<string, string> },
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<void> {
  let finish!: (err?: Error | null) => void;
  const written = new Promise<void>((resolve, reject) => {
    finish = (err) => (err ? reject(err) : resolve());
  });
  // Observed at once: if the body fails first, the tar's destruction rejects this too.
  written.catch(() => {});
  const entry = tar.entry(header, (err) => finish(err));
  // Its failure arrives through the callback above; an unheard 'error' event would crash.
  entry.on('error', () => {});
  let drained: (() => void) | undefined;
  entry.on('drain', () => drained?.());
  for await (const chunk of body) {
    if (!entry.write(chunk)) {
      await new Promise<void>((resolve) => {
        drained = resolve;
      });
    }
  }
  entry.end(undefined);
  await written;
}
