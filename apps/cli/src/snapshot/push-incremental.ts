import type { Readable } from 'node:stream';
import { Annotations, DEFAULT_FILE_MODE, envelopeConfig } from '@epoch/oci';
import {
  type ChunkedFileInput,
  type ChunkedPushResult,
  type ChunkSource,
  pushChunkedSnapshot,
  type RegistryClient,
} from '@epoch/registry/client';
import { Progress } from '../support/progress.js';
import { readExportTar } from './export-tar.js';

/** What to push incrementally, and where. */
export interface PushIncrementalOptions {
  client: RegistryClient;
  repository: string;
  tag: string;
  baseImage?: string;
  /** Snapshots of the same registry whose chunks may be reused (mounted when elsewhere). */
  bases?: ChunkSource[];
  beforeManifest?: () => Promise<void>;
}

/**
 * Pushes a `cocoon snapshot export` tar in the incremental format (docs/incremental-snapshots.md):
 * the same envelope handling as {@link pushSnapshot}, each entry chunked as it streams.
 */
export async function pushIncremental(
  tar: Readable,
  options: PushIncrementalOptions,
): Promise<ChunkedPushResult> {
  const { envelope, files: entries } = await readExportTar(tar);
  const config = envelopeConfig(envelope);

  async function* files(): AsyncGenerator<ChunkedFileInput> {
    for await (const entry of entries) {
      const sparseMap = entry.file.sparseMap;
      yield {
        title: entry.name,
        mode: entry.file.mode ?? DEFAULT_FILE_MODE,
        size: entry.logicalSize,
        ...(entry.sparse ? { segments: entry.sparse.map } : {}),
        ...(typeof sparseMap === 'string' ? { sparseMap } : {}),
        body: entry.body,
      };
    }
  }

  let progress: Progress | undefined;
  let current = '';
  return pushChunkedSnapshot(files(), {
    client: options.client,
    repository: options.repository,
    tag: options.tag,
    config,
    ...(options.baseImage ? { annotations: { [Annotations.baseImage]: options.baseImage } } : {}),
    ...(options.bases ? { bases: options.bases } : {}),
    ...(options.beforeManifest ? { beforeManifest: options.beforeManifest } : {}),
    onProgress: (title, bytes, size) => {
      if (title !== current) {
        progress?.done();
        progress = new Progress(title, size);
        current = title;
      }
      progress?.update(bytes);
      if (bytes === size) progress?.done();
    },
  });
}
