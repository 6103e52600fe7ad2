/** Standard OCI and Docker media types. */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  /** What a blob without a more specific type is served and labelled as. */
  octetStream: 'application/octet-stream',
} as const;

/** Media types and artifact types of cocoonstack snapshots and cloud images. */
export const CocoonMediaTypes = {
  /** `artifactType` of a VM snapshot (one raw layer per exported file). */
  snapshotArtifact: 'application/vnd.cocoonstack.snapshot.v1+json',
  /** `artifactType` of a VM snapshot whose layers may be zstd-compressed and/or chunked. */
  snapshotArtifactV2: 'application/vnd.cocoonstack.snapshot.v2+json',
  /** Media type of a snapshot's config blob (both v1 and v2 snapshots). */
  snapshotConfig: 'application/vnd.cocoonstack.snapshot.config.v1+json',
  /** `artifactType` of a cloud image (disk layers to concatenate). */
  osImageArtifact: 'application/vnd.cocoonstack.os-image.v1+json',
  /** Legacy `artifactType` of a cloud image, still produced by cocoonstack/windows. */
  windowsImageArtifact: 'application/vnd.cocoonstack.windows-image.v1+json',
  vmConfig: 'application/vnd.cocoonstack.vm.config+json',
  vmState: 'application/vnd.cocoonstack.vm.state+json',
  vmMemory: 'application/vnd.cocoonstack.vm.memory',
  vmCidata: 'application/vnd.cocoonstack.vm.cidata',
  diskQcow2: 'application/vnd.cocoonstack.disk.qcow2',
  diskQcow2Part: 'application/vnd.cocoonstack.disk.qcow2.part',
  diskRaw: 'application/vnd.cocoonstack.disk.raw',
  diskRawPart: 'application/vnd.cocoonstack.disk.raw.part',
  windowsDiskQcow2: 'application/vnd.cocoonstack.windows.disk.qcow2',
  windowsDiskQcow2Part: 'application/vnd.cocoonstack.windows.disk.qcow2.part',
  windowsDiskRaw: 'application/vnd.cocoonstack.windows.disk.raw',
  windowsDiskRawPart: 'application/vnd.cocoonstack.windows.disk.raw.part',
} as const;

/**
 * Media types of Epoch's incremental snapshot format (docs/incremental-snapshots.md): a
 * manifest whose layers are chunk indexes (one per file) and the packs holding their chunks.
 */
export const ChunkedMediaTypes = {
  /** `artifactType` of an incremental (chunked) snapshot; unknown to older readers on purpose. */
  snapshotArtifact: 'application/vnd.epoch.snapshot.chunked.v1+json',
  /** Config of an incremental snapshot: the snapshot config plus each file's logical `size`. */
  snapshotConfig: 'application/vnd.epoch.snapshot.chunked.config.v1+json',
  /** A chunk index layer (binary, one per file, titled by file name). */
  chunkIndex: 'application/vnd.epoch.chunk.index.v1',
  /** A pack layer: chunk bytes concatenated, addressed by the indexes' ranges. */
  chunkPack: 'application/vnd.epoch.chunk.pack.v1',
} as const;

/** Suffix marking a zstd-compressed variant of a cocoonstack layer media type (snapshot v2). */
export const ZSTD_SUFFIX = '+zstd';

/** The manifest and index media types a registry accepts on manifest PUT. */
export const ManifestMediaTypes: readonly string[] = Object.freeze([
  MediaTypes.ociManifest,
  MediaTypes.ociIndex,
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList,
]);

const indexMediaTypes: ReadonlySet<string> = new Set([
  MediaTypes.ociIndex,
  MediaTypes.dockerManifestList,
]);

const imageManifestMediaTypes: ReadonlySet<string> = new Set([
  MediaTypes.ociManifest,
  MediaTypes.dockerManifest,
]);

const diskMediaTypes: ReadonlySet<string> = new Set([
  CocoonMediaTypes.diskQcow2,
  CocoonMediaTypes.diskQcow2Part,
  CocoonMediaTypes.diskRaw,
  CocoonMediaTypes.diskRawPart,
  CocoonMediaTypes.windowsDiskQcow2,
  CocoonMediaTypes.windowsDiskQcow2Part,
  CocoonMediaTypes.windowsDiskRaw,
  CocoonMediaTypes.windowsDiskRawPart,
]);

const cocoonFileMediaTypes: ReadonlyMap<string, string> = new Map([
  ['config.json', CocoonMediaTypes.vmConfig],
  ['state.json', CocoonMediaTypes.vmState],
  ['memory-ranges', CocoonMediaTypes.vmMemory],
  ['cidata.img', CocoonMediaTypes.vmCidata],
  ['overlay.qcow2', CocoonMediaTypes.diskQcow2],
]);

// RFC 6838 §4.2: type and subtype each start with an alphanumeric and hold at most 127 of
// the restricted-name characters. Parameters are not part of a descriptor's media type.
const restrictedName = '[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}';
const mediaTypePattern = new RegExp(`^${restrictedName}/${restrictedName}$`);

/** Whether `mt` is an OCI image index or Docker manifest list media type. */
export function isIndexMediaType(mt: string): boolean {
  return indexMediaTypes.has(mt);
}

/** Whether `mt` is an OCI image manifest or Docker v2 manifest media type (not an index). */
export function isManifestMediaType(mt: string): boolean {
  return imageManifestMediaTypes.has(mt);
}

/** Whether `mt` is one of the {@link ManifestMediaTypes} (manifest or index). */
export function isSupportedManifestMediaType(mt: string): boolean {
  return indexMediaTypes.has(mt) || imageManifestMediaTypes.has(mt);
}

/** Whether `mt` ends in the zstd suffix of snapshot v2 layers. */
export function isZstdMediaType(mt: string): boolean {
  return mt.endsWith(ZSTD_SUFFIX);
}

/** `mt` without a trailing `+zstd`, i.e. the media type of the uncompressed content. */
export function stripZstdSuffix(mt: string): string {
  return isZstdMediaType(mt) ? mt.slice(0, -ZSTD_SUFFIX.length) : mt;
}

/**
 * Whether `mt` is a cocoonstack disk layer: qcow2 or raw, whole or split into parts, generic or
 * legacy windows-specific, optionally with the `+zstd` suffix of snapshot v2.
 */
export function isDiskMediaType(mt: string): boolean {
  return diskMediaTypes.has(stripZstdSuffix(mt));
}

/**
 * The layer media type for a file of a `cocoon snapshot export` stream: the well-known VM
 * files by exact name, then any `*.qcow2` / `*.raw` disk, else `application/octet-stream`
 * (e.g. `cocoon.json`, Firecracker's `vmstate` and `mem`).
 */
export function mediaTypeForCocoonFile(filename: string): string {
  const known = cocoonFileMediaTypes.get(filename);
  if (known !== undefined) return known;
  if (filename.endsWith('.qcow2')) return CocoonMediaTypes.diskQcow2;
  if (filename.endsWith('.raw')) return CocoonMediaTypes.diskRaw;
  return MediaTypes.octetStream;
}

/** Whether `mt` is a syntactically valid `type/subtype` media type (RFC 6838, no parameters). */
export function isValidMediaType(mt: string): boolean {
  return mt.length <= 255 && mediaTypePattern.test(mt);
}
