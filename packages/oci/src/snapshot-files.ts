import { Annotations } from './classify.js';
import type { Digest } from './digest.js';
import { OciValidationError } from './errors.js';
import type { Descriptor, ImageManifest } from './manifest.js';
import { CocoonMediaTypes, MediaTypes, mediaTypeForCocoonFile } from './media-types.js';
import {
  type SnapshotConfig,
  type SnapshotFile,
  type SparseSegment,
  sparseSegments,
} from './snapshot-config.js';
import { ENVELOPE_CONFIG_FIELD, ENVELOPE_FIELDS, importEnvelope } from './snapshot-envelope.js';
import type { TarBody, TarEntry } from './tar.js';

/**
 * The snapshot artifact format in both directions: a `cocoon snapshot export` tar becomes a
 * config and a manifest of one titled layer per file; a manifest and its config become the list
 * of files (name, mode, sparse map) that `cocoon snapshot import` reads. Every reader and writer
 * of snapshots (CLI push and import, the server's `/dl/`, the puller) goes through here.
 */

/** Name of the envelope entry, always the first of the tar. */
export const ENVELOPE_NAME = 'snapshot.json';
/** Mode of the envelope entry. */
export const ENVELOPE_MODE = 0o644;
/** Mode of a file the config records none for (cocoon's own default). */
export const DEFAULT_FILE_MODE = 0o640;
/** PAX record carrying a sparse file's data segments, `[{"o":offset,"l":length},…]`. */
export const SPARSE_MAP_RECORD = 'COCOON.sparse.map';
/** PAX record carrying a sparse file's logical size. */
export const SPARSE_SIZE_RECORD = 'COCOON.sparse.size';

/** Where a sparse file's data lies: its segments and its logical size. */
export interface SparseLayout {
  map: SparseSegment[];
  size: number;
}

/** One file of a snapshot as the import tar carries it. */
export interface SnapshotFileEntry {
  /** The layer title: the file name. */
  name: string;
  /** Stored bytes: for a sparse file, only its data segments. */
  size: number;
  mode: number;
  sparse?: SparseLayout;
}

/** A snapshot file together with the layer holding its bytes. */
export interface SnapshotLayerFile extends SnapshotFileEntry {
  layer: Descriptor;
}

/**
 * Checks a file name of a snapshot: a plain name in one directory, not the envelope's, not
 * hidden (`.`, `..` and dot files would clash with the cache's own files or leave the
 * directory), and not seen before (`seen` collects the names).
 *
 * @throws {OciValidationError} `MANIFEST_INVALID`
 */
export function checkSnapshotFileName(
  name: string | undefined,
  seen: Set<string>,
  field?: string,
): string {
  if (!name || name.includes('/') || name.includes('\0') || name.startsWith('.')) {
    throw new OciValidationError(
      'MANIFEST_INVALID',
      `${JSON.stringify(name ?? '')} is not a usable file name`,
      field,
    );
  }
  if (name === ENVELOPE_NAME) {
    throw new OciValidationError('MANIFEST_INVALID', `${ENVELOPE_NAME} is reserved`, field);
  }
  if (seen.has(name)) {
    throw new OciValidationError('MANIFEST_INVALID', `two files named ${name}`, field);
  }
  seen.add(name);
  return name;
}

/**
 * The files of a snapshot manifest, in manifest order, with the mode and sparse layout its config
 * records for each (mode {@link DEFAULT_FILE_MODE} when none).
 *
 * @throws {OciValidationError} `MANIFEST_INVALID` for a missing, hidden, reserved or repeated
 *   title, a malformed sparse map, or a sparse map without a logical size
 */
export function snapshotFiles(
  manifest: ImageManifest,
  config: SnapshotConfig,
): SnapshotLayerFile[] {
  const seen = new Set<string>();
  return manifest.layers.map((layer, i) => {
    const name = checkSnapshotFileName(
      layer.annotations?.[Annotations.title],
      seen,
      `layers[${i}].annotations`,
    );
    const file = Object.hasOwn(config.files ?? {}, name) ? config.files?.[name] : undefined;
    const sparse = file ? sparseLayout(name, file) : undefined;
    return {
      name,
      size: layer.size,
      mode: file?.mode ?? DEFAULT_FILE_MODE,
      ...(sparse ? { sparse } : {}),
      layer,
    };
  });
}

function sparseLayout(name: string, file: SnapshotFile): SparseLayout | undefined {
  const field = `files[${JSON.stringify(name)}]`;
  let map: SparseSegment[] | undefined;
  try {
    map = sparseSegments(file);
  } catch (err) {
    throw new OciValidationError('MANIFEST_INVALID', `${name}: ${(err as Error).message}`, field);
  }
  if (map === undefined) return undefined;
  if (file.sparseSize === undefined) {
    throw new OciValidationError(
      'MANIFEST_INVALID',
      `${name}: sparse map without a logical size`,
      `${field}.sparseSize`,
    );
  }
  return { map, size: file.sparseSize };
}

/**
 * The tar entry of a snapshot file, its sparse layout in cocoon's PAX records. The map is always
 * written from the decoded segments, so every producer writes the same bytes for the same map.
 */
export function snapshotTarEntry(file: SnapshotFileEntry, open: TarEntry['open']): TarEntry {
  return {
    name: file.name,
    size: file.size,
    mode: file.mode,
    ...(file.sparse
      ? {
          pax: {
            [SPARSE_MAP_RECORD]: JSON.stringify(file.sparse.map.map(({ o, l }) => ({ o, l }))),
            [SPARSE_SIZE_RECORD]: String(file.sparse.size),
          },
        }
      : {}),
    open,
  };
}

/** The envelope's tar entry. */
export function envelopeTarEntry(envelope: Uint8Array): TarEntry {
  return {
    name: ENVELOPE_NAME,
    size: envelope.length,
    mode: ENVELOPE_MODE,
    open: () => [envelope],
  };
}

/**
 * The entries of a `cocoon snapshot import` tar: `snapshot.json` (see `importEnvelope`, with the
 * name and description `overrides`), then each file of {@link snapshotFiles}, its bytes from
 * `open` when the tar reaches it. All checks run here, before the first byte, so a refused
 * snapshot never starts a tar.
 *
 * @throws {OciValidationError} as {@link snapshotFiles}
 */
export function snapshotImportEntries(
  manifest: ImageManifest,
  config: SnapshotConfig,
  overrides: { name?: string; description?: string },
  open: (layer: Descriptor) => TarBody | Promise<TarBody>,
): TarEntry[] {
  return [
    envelopeTarEntry(importEnvelope(config, overrides)),
    ...snapshotFiles(manifest, config).map(({ layer, ...file }) =>
      snapshotTarEntry(file, () => open(layer)),
    ),
  ];
}

/** What an export tar entry header says of one file. */
export interface ExportedHeader {
  /** Entry name; a leading `./` is ignored. */
  name: string;
  /** Bytes in the entry. */
  size: number;
  mode?: number;
  pax?: Record<string, string>;
}

/** One file of an export tar, read: its name and config entry, and its logical layout. */
export interface ExportedFile {
  name: string;
  /** The config's record of the file: mode, and the sparse map as exported with its size. */
  file: SnapshotFile;
  /** Logical size: the sparse size, else the entry size. */
  logicalSize: number;
  sparse?: SparseLayout;
}

/**
 * Reads the header of one regular file of a `cocoon snapshot export` tar (after the envelope),
 * by the same rules {@link snapshotFiles} applies on the way back: a usable, unique name
 * (`seen`), the mode ({@link DEFAULT_FILE_MODE} when absent), and sparse records that come as a
 * pair with a readable map.
 *
 * @throws {OciValidationError} `MANIFEST_INVALID`
 */
export function exportedFile(header: ExportedHeader, seen: Set<string>): ExportedFile {
  const name = checkSnapshotFileName(header.name.replace(/^\.\//, ''), seen);
  const file: SnapshotFile = { mode: header.mode ?? DEFAULT_FILE_MODE };
  const rawMap = header.pax?.[SPARSE_MAP_RECORD];
  const rawSize = header.pax?.[SPARSE_SIZE_RECORD];
  if (rawMap === undefined) return { name, file, logicalSize: header.size };
  const sparseSize = Number(rawSize);
  if (rawSize === undefined || !/^\d+$/.test(rawSize) || !Number.isSafeInteger(sparseSize)) {
    throw new OciValidationError(
      'MANIFEST_INVALID',
      `${name}: ${SPARSE_SIZE_RECORD} ${rawSize === undefined ? 'missing' : `"${rawSize}" is not a size`}`,
    );
  }
  // The map is kept as exported (the raw PAX value); reading it back decodes it.
  file.sparseMap = rawMap;
  file.sparseSize = sparseSize;
  const sparse = sparseLayout(name, file) as SparseLayout;
  return { name, file, logicalSize: sparseSize, sparse };
}

/**
 * Checks a `snapshot.json` envelope (`{"version": 1, "config": {...}}`) and returns the config
 * fields it maps to, with the envelope kept verbatim so that a pull gives back the same bytes.
 *
 * @throws {OciValidationError} `MANIFEST_INVALID`
 */
export function envelopeConfig(envelope: string): SnapshotConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(envelope);
  } catch (err) {
    throw new OciValidationError('MANIFEST_INVALID', `not JSON: ${(err as Error).message}`);
  }
  const { version, config: fields } = (doc ?? {}) as { version?: unknown; config?: unknown };
  if (typeof doc !== 'object' || doc === null || version !== 1) {
    throw new OciValidationError(
      'MANIFEST_INVALID',
      `expected {"version": 1, "config": {...}}, not version ${JSON.stringify(version) ?? 'none'}`,
    );
  }
  if (fields !== undefined && (typeof fields !== 'object' || fields === null)) {
    throw new OciValidationError('MANIFEST_INVALID', '"config" must be an object');
  }
  const known = (fields ?? {}) as Record<string, unknown>;
  const config: SnapshotConfig = {};
  for (const [key, field] of ENVELOPE_FIELDS) {
    if (known[key] !== undefined) config[field] = known[key];
  }
  config[ENVELOPE_CONFIG_FIELD] = envelope;
  return config;
}

/** The layer descriptor of a pushed snapshot file. */
export function snapshotLayer(name: string, digest: Digest, size: number): Descriptor {
  return {
    mediaType: mediaTypeForCocoonFile(name),
    digest,
    size,
    annotations: { [Annotations.title]: name },
  };
}

/**
 * The config of a snapshot artifact: `schemaVersion` v1, the envelope's fields (see
 * {@link envelopeConfig}), each file's record, and the push time.
 */
export function snapshotConfig(
  envelope: string,
  files: Record<string, SnapshotFile>,
  createdAt = new Date(),
): SnapshotConfig {
  const { [ENVELOPE_CONFIG_FIELD]: verbatim, ...fields } = envelopeConfig(envelope);
  return {
    schemaVersion: 'v1',
    ...fields,
    files,
    createdAt: createdAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    [ENVELOPE_CONFIG_FIELD]: verbatim,
  };
}

/** The manifest of a snapshot artifact whose config blob is `config`. */
export function snapshotManifest(
  config: { digest: Digest; size: number },
  layers: Descriptor[],
  annotations?: Record<string, string>,
): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: CocoonMediaTypes.snapshotArtifact,
    config: {
      mediaType: CocoonMediaTypes.snapshotConfig,
      digest: config.digest,
      size: config.size,
    },
    layers,
    ...(annotations ? { annotations } : {}),
  };
}
