import { z } from 'zod';
import { isDigest } from './digest.js';
import { OciValidationError } from './errors.js';
import { parseJsonObject, validate } from './json-document.js';

/** One data segment of a sparse file: `l` bytes at offset `o` of the logical file. */
export interface SparseSegment {
  o: number;
  l: number;
}

/** What the snapshot config records about one exported file (keyed by layer title). */
export interface SnapshotFile {
  /** Unix mode bits of the file. */
  mode?: number;
  /**
   * Data segments of a sparse file. cocoon writes the raw `COCOON.sparse.map` PAX value, a
   * JSON string such as `[{"o":0,"l":4096}]`; an already decoded array is accepted too. Read
   * it with {@link sparseSegments}.
   */
  sparseMap?: string | SparseSegment[];
  /** Logical size of a sparse file (the layer holds only the data segments). */
  sparseSize?: number;
  /** Snapshot v2: uncompressed size of the file. */
  size?: number;
  /** Snapshot v2: digests of the file's chunk layers, in order. */
  chunks?: string[];
  [k: string]: unknown;
}

/** The config blob of a cocoonstack snapshot. All fields are optional; unknown ones are kept. */
export interface SnapshotConfig {
  /** `v1` or `v2`. */
  schemaVersion?: string;
  snapshotId?: string;
  description?: string;
  image?: string;
  imageDigest?: string;
  /** `oci` or `cloudimg`. */
  imageType?: string;
  /** A set of base image blob ids (a map whose values are empty objects). */
  imageBlobIds?: Record<string, unknown>;
  /** `cloud-hypervisor` or `firecracker`. */
  hypervisor?: string;
  cpu?: number;
  /** Bytes. */
  memory?: number;
  /** Bytes. */
  storage?: number;
  nics?: number;
  network?: string;
  windows?: boolean;
  /** Per-file metadata, keyed by layer title (the file name). */
  files?: Record<string, SnapshotFile>;
  /** RFC 3339 time the snapshot was pushed. */
  createdAt?: string;
  [k: string]: unknown;
}

const NOT_COUNT = 'must be a non-negative integer no larger than 2^53-1';
const SPARSE_MAP_SHAPE = 'must be a list of {"o":offset,"l":length} (or a JSON string of one)';

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function decodeSparseMap(value: unknown): SparseSegment[] | undefined {
  let list = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (!Array.isArray(list)) return undefined;
  const segments: SparseSegment[] = [];
  for (const item of list) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { o, l } = item as Record<string, unknown>;
    if (!isCount(o) || !isCount(l)) return undefined;
    segments.push({ o, l });
  }
  return segments;
}

const countSchema = z.int({ error: NOT_COUNT }).min(0, { error: NOT_COUNT });

const fileSchema = z.looseObject({
  mode: countSchema.optional(),
  sparseMap: z
    .custom<string | SparseSegment[]>((value) => decodeSparseMap(value) !== undefined, {
      error: SPARSE_MAP_SHAPE,
    })
    .optional(),
  sparseSize: countSchema.optional(),
  size: countSchema.optional(),
  chunks: z
    .array(z.string().refine(isDigest, { error: 'must be a sha256 or sha512 digest' }))
    .optional(),
});

const snapshotConfigSchema = z.looseObject({
  schemaVersion: z.string().optional(),
  snapshotId: z.string().optional(),
  description: z.string().optional(),
  image: z.string().optional(),
  imageDigest: z.string().optional(),
  imageType: z.string().optional(),
  imageBlobIds: z.record(z.string(), z.unknown()).optional(),
  hypervisor: z.string().optional(),
  cpu: countSchema.optional(),
  memory: countSchema.optional(),
  storage: countSchema.optional(),
  nics: countSchema.optional(),
  network: z.string().optional(),
  windows: z.boolean().optional(),
  files: z.record(z.string(), fileSchema).optional(),
  createdAt: z.string().optional(),
});

/**
 * Parses a snapshot config blob (`application/vnd.cocoonstack.snapshot.config.v1+json`),
 * checking the types of the known fields and keeping every other field.
 *
 * @throws {OciValidationError} `MANIFEST_INVALID` (the config belongs to the manifest), with
 *   `field` naming the offending value, e.g. `files["mem"].sparseSize`
 */
export function parseSnapshotConfig(bytes: Uint8Array | string): SnapshotConfig {
  const doc = parseJsonObject(bytes, 'MANIFEST_INVALID', 'snapshot config');
  const config: SnapshotConfig = validate(
    snapshotConfigSchema,
    doc,
    'MANIFEST_INVALID',
    'snapshot config',
  );
  return config;
}

/**
 * The decoded sparse map of a file, or undefined if the file is not sparse.
 *
 * @throws {OciValidationError} `MANIFEST_INVALID` if the map is malformed
 */
export function sparseSegments(file: SnapshotFile): SparseSegment[] | undefined {
  if (file.sparseMap === undefined) return undefined;
  const segments = decodeSparseMap(file.sparseMap);
  if (segments === undefined) {
    throw new OciValidationError('MANIFEST_INVALID', `sparseMap: ${SPARSE_MAP_SHAPE}`, 'sparseMap');
  }
  return segments;
}
