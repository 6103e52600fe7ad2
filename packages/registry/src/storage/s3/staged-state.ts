import { createHash } from 'node:crypto';
import { StorageError } from '../errors.js';
import type { JsonValue, StagedObject } from '../object-store.js';

/* The staged-state codec of the S3 driver: its `driverState` JSON, its parts and their ETags. */

export interface Part {
  partNumber: number;
  etag: string;
  size: number;
}

/**
 * `driverState` of an S3 staged object. `parts` are the uploaded parts of multipart upload
 * `uploadId` at the staging key, each at least 5 MiB; the last `tailSize` (< 5 MiB) bytes, too few
 * for a part, wait in the small object `tailKey` until more bytes or the commit come. Everything
 * needed to continue lives in the bucket or in this JSON, never only in one process's memory.
 */
export interface S3StagedState {
  driver: 's3';
  uploadId: string;
  parts: Part[];
  tailKey: string | null;
  tailSize: number;
}

export function completedParts(parts: Part[]): { PartNumber: number; ETag: string }[] {
  return parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag }));
}

/** An ETag without the quotes S3 puts around it. */
export function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^"|"$/g, '');
}

/**
 * The ETag S3 gives the object a multipart upload completes into: the MD5 of the parts' binary
 * MD5s, then a dash and the number of parts.
 */
export function multipartEtag(parts: Part[]): string {
  const md5 = createHash('md5');
  for (const p of parts) md5.update(Buffer.from(unquote(p.etag) ?? '', 'hex'));
  return `${md5.digest('hex')}-${parts.length}`;
}

export function sumSizes(...lists: Part[][]): number {
  let total = 0;
  for (const list of lists) for (const p of list) total += p.size;
  return total;
}

export function toJson(state: S3StagedState): JsonValue {
  return {
    driver: state.driver,
    uploadId: state.uploadId,
    parts: state.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag, size: p.size })),
    tailKey: state.tailKey,
    tailSize: state.tailSize,
  };
}

/** Validates a staged object's state, which may come back from a database or another process. */
export function parseStaged(staged: StagedObject): S3StagedState {
  // The base checked the staging key.
  const s = staged.driverState;
  const bad = (): never => {
    throw new StorageError(`not a staged object of the S3 store: ${staged.stagingKey}`);
  };
  if (!Number.isSafeInteger(staged.size) || staged.size < 0) return bad();
  if (typeof s !== 'object' || s === null || Array.isArray(s) || s.driver !== 's3') return bad();
  const { uploadId, parts, tailKey, tailSize } = s;
  if (typeof uploadId !== 'string' || uploadId === '' || !Array.isArray(parts)) return bad();
  if (typeof tailSize !== 'number' || !Number.isSafeInteger(tailSize) || tailSize < 0) return bad();
  if (
    tailKey !== null &&
    (typeof tailKey !== 'string' || !tailKey.startsWith(`${staged.stagingKey}.tail.`))
  ) {
    return bad();
  }
  const list: Part[] = parts.map((p, i) => {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) return bad();
    const { partNumber, etag, size } = p;
    if (partNumber !== i + 1 || typeof etag !== 'string' || typeof size !== 'number') return bad();
    return { partNumber, etag, size };
  });
  if (sumSizes(list) + tailSize !== staged.size) return bad();
  return { driver: 's3', uploadId, parts: list, tailKey, tailSize };
}
