/**
 * `@epoch/oci`: the OCI vocabulary of Epoch. Media types, manifest and index validation,
 * digests with streaming verification, image references, the repository name and tag grammar,
 * artifact classification and size accounting. Depends on no other Epoch package.
 *
 * @packageDocumentation
 */

export { type ByteSink, writeAll } from './byte-sink.js';
export {
  CHUNK_INDEX_HEADER_BYTES,
  CHUNK_INDEX_PACK_BYTES,
  CHUNK_INDEX_RECORD_BYTES,
  type ChunkIndex,
  ChunkIndexError,
  type ChunkIndexHeader,
  type ChunkRecord,
  type ChunkRecordKind,
  ChunkRecordPage,
  ChunkRecordValidator,
  chunkSha256,
  type DataRecord,
  decodeChunkIndex,
  decodeChunkIndexPrefix,
  encodeChunkIndex,
  encodeChunkIndexHeader,
  encodeChunkRecord,
  type IndexedPack,
  MAX_CHUNK_SIZE,
  MAX_INDEX_PACKS,
  MAX_INDEX_RECORDS,
  MAX_PACK_BYTES,
  MAX_RUN_BYTES,
  MIN_CHUNK_SIZE,
  type OpenedChunkIndex,
  openChunkIndex,
  type RunRecord,
} from './chunk-index.js';
export {
  type ChunkedFile,
  type ChunkedSnapshotLayout,
  checkIndexPacks,
  chunkedSnapshotLayout,
  type IncrementalStats,
} from './chunked-snapshot.js';
export {
  Annotations,
  type ArtifactKind,
  classify,
  cloudImageParts,
  descriptorTitle,
} from './classify.js';
export { compareBytes } from './compare.js';
export {
  type Digest,
  type DigestAlgorithm,
  Digester,
  digestOf,
  formatDigest,
  isDigest,
  type ParsedDigest,
  parseDigest,
} from './digest.js';
export {
  type ByteSource,
  type ContentSummary,
  copyVerified,
  type ExpectedContent,
  hashStream,
  toNodeReadable,
  VerifyingTransform,
  verifyingStream,
} from './digest-stream.js';
export {
  ContentSizeMismatchError,
  DigestMismatchError,
  type OciErrorCode,
  OciValidationError,
  SizeMismatchError,
} from './errors.js';
export {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type ParsedManifest,
  type Platform,
  parseManifest,
  referencedBlobs,
  referencedManifests,
} from './manifest.js';
export {
  ChunkedMediaTypes,
  CocoonMediaTypes,
  isDiskMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSupportedManifestMediaType,
  isValidMediaType,
  isZstdMediaType,
  ManifestMediaTypes,
  MediaTypes,
  mediaTypeForCocoonFile,
  stripZstdSuffix,
  ZSTD_SUFFIX,
} from './media-types.js';
export {
  assertRepositoryName,
  assertTag,
  isValidRepositoryName,
  isValidTag,
  MAX_NAME_LENGTH,
  MAX_TAG_LENGTH,
  REPOSITORY_NAME_PATTERN,
  TAG_PATTERN,
} from './names.js';
export {
  formatReference,
  isDigestReference,
  type ManifestTarget,
  type ParseReferenceOptions,
  parseManifestTarget,
  parseReference,
  type Reference,
  referenceTarget,
} from './reference.js';
export {
  indexTotalSize,
  layerCount,
  manifestTotalSize,
  type PlatformSize,
  platformSizes,
} from './sizes.js';
export {
  parseSnapshotConfig,
  type SnapshotConfig,
  type SnapshotFile,
  type SparseSegment,
  sparseSegments,
} from './snapshot-config.js';
export {
  ENVELOPE_CONFIG_FIELD,
  ENVELOPE_FIELDS,
  importEnvelope,
} from './snapshot-envelope.js';
export {
  checkSnapshotFileName,
  DEFAULT_FILE_MODE,
  ENVELOPE_MODE,
  ENVELOPE_NAME,
  type ExportedFile,
  type ExportedHeader,
  envelopeConfig,
  envelopeTarEntry,
  exportedFile,
  type SnapshotFileEntry,
  type SnapshotLayerFile,
  SPARSE_MAP_RECORD,
  SPARSE_SIZE_RECORD,
  type SparseLayout,
  snapshotConfig,
  snapshotFiles,
  snapshotImportEntries,
  snapshotLayer,
  snapshotManifest,
  snapshotTarEntry,
} from './snapshot-files.js';
export {
  DEFAULT_SNAPSHOT_FORMAT,
  isSnapshotFormat,
  SNAPSHOT_FORMATS,
  type SnapshotFormat,
} from './snapshot-format.js';
export type {
  RepositoryPresence,
  RepositoryScan,
  ScanError,
  ScannedBlob,
  ScannedManifest,
  ScannedTag,
  StorageScan,
} from './storage-scan.js';
export { type TarBody, type TarEntry, tarLength, tarStream, writeTar } from './tar.js';
export { TarFormatError, type TarHeader, TarReader } from './tar-reader.js';
