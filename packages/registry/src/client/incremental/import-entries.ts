import {
  type ChunkedSnapshotLayout,
  DEFAULT_FILE_MODE,
  envelopeTarEntry,
  importEnvelope,
  type SnapshotConfig,
  snapshotTarEntry,
  type TarEntry,
} from '@epoch/oci';
import {
  type BlobReader,
  type ChunkedReadOptions,
  chunkedFileBytes,
  chunkedFileMap,
} from './read-chunked.js';

/** Options of {@link chunkedImportEntries}. */
export interface ChunkedImportOptions extends Omit<ChunkedReadOptions, 'onProgress'> {
  /** The local name and description written into `snapshot.json`. */
  overrides?: { name?: string; description?: string };
}

/**
 * The entries of the `cocoon snapshot import` tar of an incremental snapshot: `snapshot.json`,
 * then each file reassembled from its chunk index (docs/incremental-snapshots.md §6). A file with
 * holes becomes a sparse entry whose map is the complement of the index's hole records, so holes
 * survive exactly.
 *
 * Every index is read once here, before the first byte, for its sparse map (a tar entry's map
 * precedes its body, and `tarLength` needs every map to promise a `Content-Length`); this pass
 * also verifies each index against its digest and its packs against the manifest. Each index is
 * read again when its entry is opened, and every chunk is verified then, so a bad chunk fails
 * the tar before its end-of-archive marker.
 */
export async function chunkedImportEntries(
  blobs: BlobReader,
  layout: ChunkedSnapshotLayout,
  config: SnapshotConfig,
  options: ChunkedImportOptions = {},
): Promise<TarEntry[]> {
  const { overrides = {}, ...read } = options;
  const entries = [envelopeTarEntry(importEnvelope(config, overrides))];
  for (const file of layout.files) {
    const source = { blobs, layout, index: file.index, title: file.title };
    const { header, segments } = await chunkedFileMap(source);
    entries.push(
      snapshotTarEntry(
        {
          name: file.title,
          size: header.fileSize - header.holeBytes,
          mode: config.files?.[file.title]?.mode ?? DEFAULT_FILE_MODE,
          ...(header.holeBytes > 0 ? { sparse: { map: segments, size: header.fileSize } } : {}),
        },
        () => chunkedFileBytes(source, read),
      ),
    );
  }
  return entries;
}
