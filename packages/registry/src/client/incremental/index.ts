export { type ChunkLocation, ChunkTable, type KnownPack } from './chunk-table.js';
export { chunkFile, type FilePiece } from './file-chunker.js';
export { type ChunkSource, type KnownChunksReport, loadKnownChunks } from './known-chunks.js';
export type { PackStats } from './pack-writer.js';
export {
  type ChunkedFileInput,
  type ChunkedPushResult,
  type PushChunkedOptions,
  pushChunkedSnapshot,
} from './push-chunked.js';
export {
  type ChunkedFileSource,
  type ChunkedReadOptions,
  ChunkVerificationError,
  chunkedFileBytes,
  chunkedFileMap,
} from './read-chunked.js';
