import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import { ObjectNotFoundError } from '../errors.js';
import type { SweepOptions } from '../object-store.js';
import type { S3Context } from './context.js';

/* Cleanup of abandoned staged objects: their multipart uploads and tail objects. */

const TAIL_PATTERN = /\.tail\.[0-9a-f]{16}$/;

/**
 * Aborts the multipart uploads under `prefix` initiated before `olderThan` and deletes the tail
 * objects last written before it. `olderThan` must lie further back than the start of the oldest
 * upload session still in use: S3 dates an upload from its start, not its last part. On a server
 * without `ListMultipartUploads` only the tails are found; its abandoned uploads are left to the
 * bucket's lifecycle rule.
 */
export async function sweepStaged(
  s3: S3Context,
  prefix: string,
  olderThan: Date,
  options?: SweepOptions,
): Promise<number> {
  const signal = options?.signal;
  let removed = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  while (s3.caps.listMultipartUploads) {
    const out = await s3.send(
      new ListMultipartUploadsCommand({
        Bucket: s3.bucket,
        Prefix: s3.full(prefix),
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      }),
      prefix,
      signal,
    );
    for (const upload of out.Uploads ?? []) {
      if (!upload.Key || !upload.UploadId || !upload.Initiated) continue;
      if (upload.Initiated >= olderThan) continue;
      if (await options?.keep?.(s3.relative(upload.Key))) continue;
      try {
        await s3.send(
          new AbortMultipartUploadCommand({
            Bucket: s3.bucket,
            Key: upload.Key,
            UploadId: upload.UploadId,
          }),
          upload.Key,
          signal,
        );
        removed++;
      } catch (err) {
        if (!(err instanceof ObjectNotFoundError)) throw err;
      }
    }
    if (out.IsTruncated !== true) break;
    keyMarker = out.NextKeyMarker;
    uploadIdMarker = out.NextUploadIdMarker;
    if (keyMarker === undefined) break;
  }
  // Every object under the prefix once, in whatever order the server lists them: a sweep needs
  // no order, so it also works where `list` is limited to one page (no byte-order listing).
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({
        Bucket: s3.bucket,
        Prefix: s3.full(prefix),
        ContinuationToken: token,
      }),
      prefix,
      signal,
    );
    const stale: string[] = [];
    for (const o of out.Contents ?? []) {
      const key = s3.strip(o.Key);
      if (key === undefined || !TAIL_PATTERN.test(key)) continue;
      if ((o.LastModified ?? new Date(0)) >= olderThan) continue;
      if (await options?.keep?.(key.replace(TAIL_PATTERN, ''))) continue;
      stale.push(key);
    }
    if (stale.length > 0) await s3.store.deleteMany(stale, options);
    removed += stale.length;
    token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
  } while (token !== undefined);
  return removed;
}
