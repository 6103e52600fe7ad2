import type { Writable } from 'node:stream';
import {
  type ChunkedSnapshotLayout,
  DEFAULT_FILE_MODE,
  envelopeTarEntry,
  importEnvelope,
  type SnapshotConfig,
  snapshotTarEntry,
  type TarEntry,
  writeTar,
} from '@epoch/oci';
import { chunkedFileBytes, chunkedFileMap, type RegistryClient } from '@epoch/registry/client';
import { Progress } from '../support/progress.js';

/** Where an incremental snapshot comes from, and how to name it locally. */
export interface ImportChunkedOptions {
  client: RegistryClient;
  repository: string;
  layout: ChunkedSnapshotLayout;
  config: SnapshotConfig;
  name?: string;
  description?: string;
}

/**
 * Writes the `cocoon snapshot import` tar of an incremental snapshot: `snapshot.json`, then each
 * file reassembled from its chunk index (docs/incremental-snapshots.md §6). A file with holes
 * becomes a sparse entry whose map is the complement of the index's hole records, so holes
 * survive exactly. Each index is read twice (the map must precede the body), each chunk is
 * verified; any failure rejects before the tar's end-of-archive marker.
 */
export async function writeChunkedImportTar(
  out: Writable,
  options: ImportChunkedOptions,
): Promise<void> {
  const { client, repository, layout, config } = options;
  const envelope = importEnvelope(config, {
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.description !== undefined ? { description: options.description } : {}),
  });
  await writeTar(out, files());

  async function* files(): AsyncGenerator<TarEntry> {
    yield envelopeTarEntry(envelope);
    for (const file of layout.files) {
      const source = { client, repository, layout, index: file.index, title: file.title };
      const { header, segments } = await chunkedFileMap(source);
      const stored = header.fileSize - header.holeBytes;
      const progress = new Progress(file.title, stored);
      yield snapshotTarEntry(
        {
          name: file.title,
          size: stored,
          mode: config.files?.[file.title]?.mode ?? DEFAULT_FILE_MODE,
          ...(header.holeBytes > 0 ? { sparse: { map: segments, size: header.fileSize } } : {}),
        },
        () => chunkedFileBytes(source, { onProgress: (n) => progress.update(n) }),
      );
      progress.done();
    }
  }
}
