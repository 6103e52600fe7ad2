import { compareBytes } from './compare.js';
import type { Descriptor, ImageManifest, ParsedManifest } from './manifest.js';
import { ChunkedMediaTypes, CocoonMediaTypes, isDiskMediaType, MediaTypes } from './media-types.js';

/** What an artifact is, as the catalog and dashboard show it. */
export type ArtifactKind =
  | 'snapshot'
  | 'chunked-snapshot'
  | 'cloud-image'
  | 'container-image'
  | 'image-index'
  | 'unknown';

/** Annotation keys Epoch reads or writes. */
export const Annotations = {
  title: 'org.opencontainers.image.title',
  created: 'org.opencontainers.image.created',
  source: 'org.opencontainers.image.source',
  revision: 'org.opencontainers.image.revision',
  description: 'org.opencontainers.image.description',
  /** Base image of a snapshot. */
  baseImage: 'cocoonstack.snapshot.baseimage',
  /** Documented upstream but never written by it; kept for readers of old docs. */
  snapshotId: 'cocoonstack.snapshot.id',
  /** Snapshot v2 chunk position (informational: the config's `files[].chunks` is authoritative). */
  chunkIndex: 'cocoonstack.chunk.index',
  /** Snapshot v2 chunk count of the file. */
  chunkCount: 'cocoonstack.chunk.count',
  /** Cloud images: OS name (e.g. `windows`). */
  osName: 'cocoonstack.os.name',
  /** Cloud images: OS version. */
  osVersion: 'cocoonstack.os.version',
  /** Cloud images: disk format (`qcow2`, `raw`). */
  diskFormat: 'cocoonstack.disk.format',
  /** Cloud images: the shell command that reassembles the parts. */
  diskReassemble: 'cocoonstack.disk.reassemble',
} as const;

const cloudImageArtifactTypes: ReadonlySet<string> = new Set([
  CocoonMediaTypes.osImageArtifact,
  CocoonMediaTypes.windowsImageArtifact,
]);

const snapshotArtifactTypes: ReadonlySet<string> = new Set([
  CocoonMediaTypes.snapshotArtifact,
  CocoonMediaTypes.snapshotArtifactV2,
]);

const containerConfigTypes: ReadonlySet<string> = new Set([
  MediaTypes.ociConfig,
  MediaTypes.dockerConfig,
]);

/**
 * Classifies an artifact, first match wins (upstream epoch's order, plus snapshot v2):
 * 1. `artifactType` os-image or legacy windows-image → `cloud-image`; snapshot v1 or v2 →
 *    `snapshot`; Epoch's incremental snapshot → `chunked-snapshot`;
 * 2. `config.mediaType` OCI image config or Docker container config → `container-image`;
 * 3. an index or manifest list → `image-index`;
 * 4. anything else (e.g. an artifact with a custom config type) → `unknown`.
 */
export function classify(parsed: ParsedManifest): ArtifactKind {
  const { artifactType } = parsed.manifest;
  if (artifactType !== undefined) {
    if (cloudImageArtifactTypes.has(artifactType)) return 'cloud-image';
    if (snapshotArtifactTypes.has(artifactType)) return 'snapshot';
    // A kind of its own: code that reads only one-blob-per-file snapshots must refuse it.
    if (artifactType === ChunkedMediaTypes.snapshotArtifact) return 'chunked-snapshot';
  }
  if (parsed.kind === 'manifest') {
    return containerConfigTypes.has(parsed.manifest.config.mediaType)
      ? 'container-image'
      : 'unknown';
  }
  return 'image-index';
}

/** The `org.opencontainers.image.title` annotation of a descriptor, or `''`. */
export function descriptorTitle(descriptor: Descriptor): string {
  return descriptor.annotations?.[Annotations.title] ?? '';
}

/**
 * The disk layers of a cloud image in reassembly order: layers with a disk media type (others,
 * such as a `text/plain` SHA256SUMS, are skipped), stably sorted by title byte by byte.
 */
export function cloudImageParts(m: ImageManifest): Descriptor[] {
  return m.layers
    .filter((layer) => isDiskMediaType(layer.mediaType))
    .sort((a, b) => compareBytes(descriptorTitle(a), descriptorTitle(b)));
}
