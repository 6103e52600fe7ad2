/**
 * `@epoch/registry`: content-addressed registry storage for Epoch.
 *
 * - Object stores: one interface (`ObjectStore`), a filesystem and an S3 driver.
 * - The registry core over a store: blobs, manifests and tags in the upstream bucket layout,
 *   repository links, referrers, resumable uploads, and the `catalog.json` snapshot.
 * - A registry HTTP client (`RegistryClient`) for any OCI registry: token flow, retries,
 *   streamed and verified blob transfers, chunked uploads, mounts.
 * - A node-side puller (`newPuller`) delivering snapshots and cloud images into a verified,
 *   content-addressed cache.
 *
 * @packageDocumentation
 */
export * from './client/index.js';
export { type AdoptReport, adoptReferencedBlobs } from './core/adopt.js';
export { type BlobInfo, Blobs } from './core/blobs.js';
export { type CatalogEntry, writeCatalog } from './core/catalog.js';
export { Layout, type ManifestKey, parseManifestKey } from './core/layout.js';
export { Links } from './core/links.js';
export {
  Manifests,
  type ManifestsOptions,
  type Page,
  type PageOptions,
  type StoredManifest,
} from './core/manifests.js';
export {
  blobProblems,
  type ReferenceCheckOptions,
  type ReferenceProblem,
  referenceCount,
  referenceProblems,
} from './core/references.js';
export { Referrers } from './core/referrers.js';
export { Registry, type RegistryOptions } from './core/registry.js';
export {
  type RegistryScan,
  readStorageScan,
  type ScannedBlobEntry,
  type ScanOptions,
} from './core/storage-scan.js';
export {
  type UploadResult,
  type UploadStatus,
  Uploads,
  type UploadsOptions,
} from './core/uploads.js';
export * from './errors.js';
export * from './puller/index.js';
export * from './storage/index.js';
