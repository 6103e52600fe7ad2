import { StorageError } from '../errors.js';
import type { S3Tuning } from '../s3-config.js';

/* Sizes of the S3 driver: S3's part and copy limits, the part size schedule, copy ranges. */

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
/** S3's minimum size of every part but the last. */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's maximum number of parts in one multipart upload. */
export const MAX_PARTS = 10_000;
/** S3's maximum size of one `CopyObject` and of one `UploadPartCopy` range. */
export const MAX_COPY_SIZE = 5 * GiB;

export const DEFAULT_TUNING: S3Tuning = {
  partConcurrency: 4,
  deleteConcurrency: 4,
  maxCopyObjectSize: MAX_COPY_SIZE,
  copyPartSize: 1 * GiB,
  maxAttempts: 5,
};

/**
 * Size of part `partNumber` of a streaming upload whose total size is unknown: 10 MiB for parts
 * 1–1000, 20 MiB for 1001–2000, 40 MiB for 2001–3000 and 80 MiB from then on. Small objects keep
 * small buffers (memory is `partConcurrency + 1` parts), yet 10,000 parts reach about 615 GiB.
 */
export function partSizeFor(partNumber: number): number {
  if (partNumber <= 1000) return 10 * MiB;
  if (partNumber <= 2000) return 20 * MiB;
  if (partNumber <= 3000) return 40 * MiB;
  return 80 * MiB;
}

/** Bodies up to one first part go up in a single `PutObject`. */
export const SINGLE_PUT_MAX = partSizeFor(1);

/** Ranges of at most `partSize` bytes (the last merged into its neighbour when under 5 MiB). */
export function copyRanges(
  size: number,
  partSize: number,
  maxParts: number,
): { start: number; end: number }[] {
  const step = Math.max(partSize, Math.ceil(size / maxParts));
  if (step > MAX_COPY_SIZE) throw new StorageError(`object of ${size} bytes is too large to copy`);
  const ranges: { start: number; end: number }[] = [];
  for (let start = 0; start < size; start += step) {
    ranges.push({ start, end: Math.min(size, start + step) - 1 });
  }
  const last = ranges.at(-1);
  const previous = ranges.at(-2);
  if (last && previous && last.end - last.start + 1 < MIN_PART_SIZE) {
    ranges.pop();
    previous.end = last.end;
  }
  return ranges;
}
