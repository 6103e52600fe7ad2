export { type ChunkLocation, ChunkTable } from './chunk-table.js';
export { type ChunkSink, chunkFile, fileChunker } from './file-chunker.js';
export { type ChunkedImportOptions, chunkedImportEntries } from './import-entries.js';
export { type ChunkSource, type KnownChunksReport, loadKnownChunks } from './known-chunks.js';
export { type KnownPack, PackList } from './pack-list.js';
export type { PackStats } from './pack-writer.js';
export {
  type ChunkedFileInfo,
  type ChunkedFileInput,
  type ChunkedPushOptions,
  type ChunkedPushResult,
  ChunkedSnapshotPush,
  type PushChunkedOptions,
  pushChunkedSnapshot,
} from './push-chunked.js';
export {
  type BlobReader,
  type ChunkedFileSource,
  type ChunkedReadOptions,
  ChunkVerificationError,
  chunkedFileBytes,
  chunkedFileMap,
  clientBlobs,
} from './read-chunked.js';
