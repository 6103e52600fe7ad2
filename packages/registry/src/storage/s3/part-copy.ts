import { UploadPartCopyCommand } from '@aws-sdk/client-s3';
import { StorageError } from '../errors.js';
import { mapLimited } from '../retry.js';
import type { S3Context } from './context.js';
import { statusOf } from './errors.js';
import { copyRanges, MAX_PARTS } from './parts.js';
import type { Part } from './staged-state.js';

/* Server-side copies into the parts of a multipart upload (`UploadPartCopy`). */

/**
 * Copies all of `source` into upload `uploadId` as parts `firstPart…` with `UploadPartCopy`,
 * in ranges of `copyPartSize` (every one at least 5 MiB, as more parts may follow). Returns
 * `undefined` when the server turns out not to support `UploadPartCopy`.
 */
export async function copyIntoParts(
  s3: S3Context,
  source: string,
  size: number,
  destination: string,
  uploadId: string,
  firstPart: number,
  signal: AbortSignal | undefined,
): Promise<Part[] | undefined> {
  if (!s3.caps.uploadPartCopy) return undefined;
  const ranges = copyRanges(size, s3.tuning.copyPartSize, MAX_PARTS - firstPart + 1);
  const [head, ...rest] = ranges;
  if (!head) return [];
  // The first range alone tells whether the server can do this at all.
  const first = await copyPart(s3, source, head, destination, uploadId, firstPart, signal);
  if (first === undefined) return undefined;
  const others = await mapLimited(rest, s3.tuning.partConcurrency, async (range, i) => {
    const part = await copyPart(
      s3,
      source,
      range,
      destination,
      uploadId,
      firstPart + 1 + i,
      signal,
    );
    if (part === undefined) throw new StorageError('UploadPartCopy stopped working mid-copy');
    return part;
  });
  return [first, ...others];
}

/** Copies bytes `range` of `source` into part `partNumber`; `undefined` where unsupported. */
export async function copyPart(
  s3: S3Context,
  source: string,
  range: { start: number; end: number },
  destination: string,
  uploadId: string,
  partNumber: number,
  signal: AbortSignal | undefined,
): Promise<Part | undefined> {
  if (!s3.caps.uploadPartCopy) return undefined;
  let etag: string | undefined;
  try {
    const out = await s3.send(
      new UploadPartCopyCommand({
        Bucket: s3.bucket,
        Key: s3.full(destination),
        UploadId: uploadId,
        PartNumber: partNumber,
        CopySource: s3.copySource(source),
        CopySourceRange: `bytes=${range.start}-${range.end}`,
      }),
      source,
      signal,
    );
    etag = out.CopyPartResult?.ETag;
  } catch (err) {
    if (statusOf(err) !== 501) throw err;
  }
  if (etag === undefined) {
    // A server without UploadPartCopy treats the request as an empty UploadPart (no XML
    // result) or answers 501. The part number is overwritten by whatever comes next.
    s3.caps.uploadPartCopy = false;
    return undefined;
  }
  return { partNumber, etag, size: range.end - range.start + 1 };
}
