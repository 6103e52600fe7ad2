import { CopyObjectCommand } from '@aws-sdk/client-s3';
import { ObjectNotFoundError } from '../errors.js';
import type { CopyOptions, PutResult } from '../object-store.js';
import { conditionalWrite, putResult, type WriteOutcome } from './conditional-write.js';
import type { S3Context } from './context.js';
import { abortQuietly, completeUpload, createUpload } from './multipart.js';
import { copyIntoParts } from './part-copy.js';
import { getStream, head } from './read.js';

/* Server-side copies of the S3 driver: `CopyObject`, or a multipart copy above its limit. */

/** `ObjectStore.copy`. */
export async function copy(
  s3: S3Context,
  source: string,
  destination: string,
  options: CopyOptions,
): Promise<PutResult> {
  const signal = options.signal;
  const ifAbsent = options.ifAbsent === true;
  if (ifAbsent) {
    const existing = await head(s3, destination, signal);
    if (existing) return { created: false, size: existing.size };
  }
  const info = await head(s3, source, signal);
  if (!info) throw new ObjectNotFoundError(source);
  const outcome = await copyObject(s3, source, info.size, destination, ifAbsent, signal);
  return putResult(s3, outcome, destination, info.size, signal);
}

/** Copies server-side: one `CopyObject` when small enough, else a multipart copy. */
export async function copyObject(
  s3: S3Context,
  source: string,
  size: number,
  destination: string,
  ifAbsent: boolean,
  signal: AbortSignal | undefined,
): Promise<WriteOutcome> {
  if (size <= s3.tuning.maxCopyObjectSize) {
    return conditionalWrite(s3, destination, ifAbsent, 'conditionalCopy', signal, (ifNoneMatch) =>
      s3.send(
        new CopyObjectCommand({
          Bucket: s3.bucket,
          Key: s3.full(destination),
          CopySource: s3.copySource(source),
          // The copy keeps the source's content type and metadata.
          MetadataDirective: 'COPY',
          IfNoneMatch: ifNoneMatch,
        }),
        source,
        signal,
      ),
    );
  }
  const uploadId = await createUpload(s3, destination, undefined, signal);
  try {
    const parts = await copyIntoParts(s3, source, size, destination, uploadId, 1, signal);
    if (parts === undefined) {
      // No UploadPartCopy on this server: stream the bytes through instead.
      await abortQuietly(s3, destination, uploadId);
      const result = await s3.store.put(destination, await getStream(s3, source, undefined, size), {
        ifAbsent,
        size,
        signal,
      });
      return result.created ? 'written' : 'exists';
    }
    const outcome = await conditionalWrite(
      s3,
      destination,
      ifAbsent,
      'conditionalComplete',
      signal,
      (ifNoneMatch) => completeUpload(s3, destination, uploadId, parts, signal, ifNoneMatch),
    );
    if (outcome === 'exists') await abortQuietly(s3, destination, uploadId);
    return outcome;
  } catch (err) {
    await abortQuietly(s3, destination, uploadId);
    throw err;
  }
}
