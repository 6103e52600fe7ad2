import { z } from 'zod';
import { type Digest, isDigest, parseDigest } from './digest.js';
import { OciValidationError } from './errors.js';
import { parseJsonObject, validate } from './json-document.js';
import {
  isIndexMediaType,
  isSupportedManifestMediaType,
  isValidMediaType,
  MediaTypes,
} from './media-types.js';
import { quote } from './quote.js';

/** The platform an index entry runs on. */
export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** An OCI content descriptor: what a manifest says about a blob or child manifest. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  /** Embedded content, base64. */
  data?: string;
  artifactType?: string;
  platform?: Platform;
}

/** An OCI image manifest or Docker v2 schema 2 manifest. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An OCI image index or Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/**
 * A validated manifest. `mediaType` is the effective type: the declared Content-Type, else the
 * document's `mediaType` field, else what its shape implies (OCI manifest or OCI index).
 */
export type ParsedManifest =
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; manifest: ImageIndex };

const NOT_BYTE_COUNT = 'must be a non-negative integer no larger than 2^53-1';

const mediaTypeSchema = z
  .string()
  .refine(isValidMediaType, { error: 'must be a media type of the form type/subtype' });

const digestSchema = z.string().transform((value, ctx): Digest => {
  if (isDigest(value)) return value;
  try {
    parseDigest(value);
  } catch (error) {
    ctx.issues.push({
      code: 'custom',
      input: value,
      message: error instanceof Error ? error.message : 'invalid digest',
    });
  }
  return z.NEVER;
});

const byteCountSchema = z.int({ error: NOT_BYTE_COUNT }).min(0, { error: NOT_BYTE_COUNT });

const annotationsSchema = z.record(z.string(), z.string());

// RFC 4648 §4 base64 with padding, as the image spec requires for `data`.
const base64Schema = z
  .string()
  .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, {
    error: 'must be base64 (RFC 4648, padded)',
  });

const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});

const descriptorSchema = z.looseObject({
  mediaType: mediaTypeSchema,
  digest: digestSchema,
  size: byteCountSchema,
  urls: z.array(z.string()).optional(),
  annotations: annotationsSchema.optional(),
  data: base64Schema.optional(),
  artifactType: mediaTypeSchema.optional(),
  platform: platformSchema.optional(),
});

// go-containerregistry writes an empty list as `null` (no omitempty), and registries built on
// Go accept it; read it as the empty list.
const descriptorListSchema = z
  .array(descriptorSchema)
  .nullable()
  .transform((list) => list ?? []);

const commonFields = {
  schemaVersion: z.literal(2, { error: 'must be 2' }),
  mediaType: mediaTypeSchema.optional(),
  artifactType: mediaTypeSchema.optional(),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
};

const imageManifestSchema = z.looseObject({
  ...commonFields,
  config: descriptorSchema,
  layers: descriptorListSchema,
});

const imageIndexSchema = z.looseObject({
  ...commonFields,
  manifests: descriptorListSchema,
});

function manifestError(message: string, field?: string): OciValidationError {
  return new OciValidationError('MANIFEST_INVALID', message, field);
}

// Content-Type may carry parameters and any letter case; descriptor media types may not.
function normalizeContentType(value: string | undefined): string {
  return (value ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
}

function effectiveMediaType(doc: Record<string, unknown>, declaredMediaType?: string): string {
  const declared = normalizeContentType(declaredMediaType);
  const field = doc.mediaType;
  if (field !== undefined && typeof field !== 'string') {
    throw manifestError('mediaType: must be a string', 'mediaType');
  }
  if (declared && !isSupportedManifestMediaType(declared)) {
    throw manifestError(`unsupported manifest media type ${quote(declared)}`);
  }
  if (field !== undefined && !isSupportedManifestMediaType(field)) {
    throw manifestError(`mediaType: unsupported manifest media type ${quote(field)}`, 'mediaType');
  }
  // A document that says it is one type but is pushed as another could be read differently by
  // different clients (GHSA-qq97-vm5h-rrhg): refuse it.
  if (declared && field !== undefined && declared !== field) {
    throw manifestError(
      `mediaType: the document says ${quote(field)} but was sent as ${quote(declared)}`,
      'mediaType',
    );
  }
  const mediaType = field ?? declared;
  if (mediaType) {
    if (field === undefined && mediaType.startsWith('application/vnd.docker.')) {
      throw manifestError('mediaType: is required in Docker manifests', 'mediaType');
    }
    return mediaType;
  }
  const looksLikeIndex = 'manifests' in doc;
  const looksLikeManifest = 'config' in doc || 'layers' in doc;
  if (looksLikeIndex && !looksLikeManifest) return MediaTypes.ociIndex;
  if (looksLikeManifest && !looksLikeIndex) return MediaTypes.ociManifest;
  throw manifestError(
    'cannot tell whether the document is a manifest or an index: give it a mediaType',
  );
}

function rejectField(doc: Record<string, unknown>, field: string, kind: string): void {
  if (field in doc) throw manifestError(`${field}: not allowed in ${kind}`, field);
}

/**
 * Parses and validates manifest or index bytes.
 *
 * `declaredMediaType` is the Content-Type the client sent; when missing or empty the type comes
 * from the document's `mediaType` field or, failing that, its shape. The document must be a
 * JSON object with `schemaVersion` 2 whose `mediaType` (if any) equals the declared type; an
 * index must have `manifests` and neither `config` nor `layers`, a manifest the reverse.
 * Descriptors must have a valid media type, digest and size. Unknown fields are kept.
 *
 * @throws {OciValidationError} `MANIFEST_INVALID`, with `field` naming the offending value
 */
export function parseManifest(
  bytes: Uint8Array | string,
  declaredMediaType?: string,
): ParsedManifest {
  const doc = parseJsonObject(bytes, 'MANIFEST_INVALID', 'manifest');
  if (doc.schemaVersion !== 2) {
    const reason = doc.schemaVersion === 1 ? 'schema 1 manifests are not supported' : 'must be 2';
    throw manifestError(`schemaVersion: ${reason}`, 'schemaVersion');
  }
  const mediaType = effectiveMediaType(doc, declaredMediaType);
  if (isIndexMediaType(mediaType)) {
    rejectField(doc, 'config', 'an index');
    rejectField(doc, 'layers', 'an index');
    if (!('manifests' in doc)) throw manifestError('manifests: is required', 'manifests');
    const manifest: ImageIndex = validate(imageIndexSchema, doc, 'MANIFEST_INVALID', 'index');
    return { kind: 'index', mediaType, manifest };
  }
  rejectField(doc, 'manifests', 'an image manifest');
  const manifest: ImageManifest = validate(
    imageManifestSchema,
    doc,
    'MANIFEST_INVALID',
    'manifest',
  );
  return { kind: 'manifest', mediaType, manifest };
}

/** The blobs a manifest needs: its config, then its layers (not its subject). */
export function referencedBlobs(m: ImageManifest): Descriptor[] {
  return [m.config, ...m.layers];
}

/** The child manifests an index needs (not its subject). */
export function referencedManifests(m: ImageIndex): Descriptor[] {
  return [...m.manifests];
}
