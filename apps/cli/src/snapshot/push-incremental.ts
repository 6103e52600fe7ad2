import { Annotations, DEFAULT_FILE_MODE, envelopeConfig } from '@epoch/oci';
import {
  type ChunkedPushResult,
  ChunkedSnapshotPush,
  type ChunkSource,
  type RegistryClient,
} from '@epoch/registry/client';
import type { ByteSource } from '../support/byte-source.js';
import { Progress } from '../support/progress.js';
import { readExport } from './export-tar.js';

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
 * the same envelope handling as {@link pushSnapshot}. The chunks the registry holds are loaded
 * first; then the export is read from `source` and each file chunked as its bytes arrive, in
 * the reader's own buffer.
 */
export async function pushIncremental(
  source: ByteSource,
  options: PushIncrementalOptions,
): Promise<ChunkedPushResult> {
  let progress: Progress | undefined;
  let current = '';
  const push = await ChunkedSnapshotPush.start({
    client: options.client,
    repository: options.repository,
    tag: options.tag,
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
  try {
    const envelope = await readExport(source, (entry) => {
      const sparseMap = entry.file.sparseMap;
      return push.file({
        title: entry.name,
        mode: entry.file.mode ?? DEFAULT_FILE_MODE,
        size: entry.logicalSize,
        ...(entry.sparse ? { segments: entry.sparse.map } : {}),
        ...(typeof sparseMap === 'string' ? { sparseMap } : {}),
      });
    });
    return await push.finish(envelopeConfig(envelope));
  } finally {
    push.dispose();
  }
}
