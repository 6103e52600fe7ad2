import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ObjectNotFoundError, StorageError } from '../errors.js';
import type { S3Context } from './context.js';
import { errorName } from './errors.js';
import { copyIntoParts } from './part-copy.js';
import { PartWriter } from './part-writer.js';
import { getStream } from './read.js';
import { completedParts, multipartEtag, type Part, sumSizes, unquote } from './staged-state.js';

/* Multipart uploads of the S3 driver: starting one, uploading its parts, completing, aborting. */

export async function createUpload(
  s3: S3Context,
  key: string,
  contentType: string | undefined,
  signal: AbortSignal | undefined,
): Promise<string> {
  const out = await s3.send(
    new CreateMultipartUploadCommand({
      Bucket: s3.bucket,
      Key: s3.full(key),
      ContentType: contentType ?? 'application/octet-stream',
    }),
    key,
    signal,
  );
  if (!out.UploadId) throw new StorageError(`CreateMultipartUpload for ${key} returned no id`);
  return out.UploadId;
}

export async function uploadPart(
  s3: S3Context,
  key: string,
  uploadId: string,
  partNumber: number,
  bytes: Buffer,
  signal: AbortSignal | undefined,
): Promise<string> {
  const out = await s3.send(
    new UploadPartCommand({
      Bucket: s3.bucket,
      Key: s3.full(key),
      UploadId: uploadId,
      PartNumber: partNumber,
      Body: bytes,
      ContentLength: bytes.byteLength,
    }),
    key,
    signal,
  );
  if (!out.ETag) throw new StorageError(`UploadPart ${partNumber} of ${key} returned no ETag`);
  return out.ETag;
}

export function partWriter(
  s3: S3Context,
  key: string,
  uploadId: string,
  firstPart: number,
  signal: AbortSignal | undefined,
): PartWriter {
  return new PartWriter(
    (partNumber, bytes) => uploadPart(s3, key, uploadId, partNumber, bytes, signal),
    firstPart,
    s3.tuning.partConcurrency,
  );
}

export async function abortQuietly(s3: S3Context, key: string, uploadId: string): Promise<void> {
  await s3.client
    .send(
      new AbortMultipartUploadCommand({
        Bucket: s3.bucket,
        Key: s3.full(key),
        UploadId: uploadId,
      }),
    )
    .catch(() => {});
}

/**
 * Completes multipart upload `uploadId` into `key` with `parts`. When the server completed it
 * but its answer was lost (a reset or cut response), the SDK's retry meets `NoSuchUpload`: the
 * upload is done, not gone. The object at `key` then carries the multipart ETag of exactly
 * these parts and their total size, and that counts as completed; anything else is an upload
 * that really is missing.
 */
export async function completeUpload(
  s3: S3Context,
  key: string,
  uploadId: string,
  parts: Part[],
  signal: AbortSignal | undefined,
  ifNoneMatch?: '*',
): Promise<void> {
  try {
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: s3.bucket,
        Key: s3.full(key),
        UploadId: uploadId,
        MultipartUpload: { Parts: completedParts(parts) },
        ...(ifNoneMatch ? { IfNoneMatch: ifNoneMatch } : {}),
      }),
      key,
      signal,
    );
  } catch (err) {
    if (!(err instanceof ObjectNotFoundError) || errorName(err.cause) !== 'NoSuchUpload') throw err;
    // A HEAD that fails otherwise (S3 unavailable) says so; only "no object" means not done.
    const out = await s3
      .send(new HeadObjectCommand({ Bucket: s3.bucket, Key: s3.full(key) }), key, signal)
      .catch((headErr: unknown) => {
        if (headErr instanceof ObjectNotFoundError) return undefined;
        throw headErr;
      });
    const completed =
      out?.ContentLength === sumSizes(parts) && unquote(out.ETag) === multipartEtag(parts);
    if (!completed) throw err;
  }
}

/**
 * Completes a staged object's multipart upload with exactly `parts` into the object at `key`.
 *
 * An append that failed or was killed after some of its parts reached the server leaves those
 * parts behind, numbered after the recorded ones (the next append overwrites as many as it
 * uploads). S3 leaves parts missing from the list out of the object; a server that refuses a
 * list without every uploaded part (Ceph RGW: `InvalidPart`) gets them all: the parts after the
 * last wanted one are found with `ListParts`, the upload is completed with them, and the object
 * is then cut back to the wanted bytes (a prefix) with a ranged server-side copy into a new
 * upload at the same key (or, without `UploadPartCopy`, by streaming that prefix through).
 */
export async function completeParts(
  s3: S3Context,
  key: string,
  uploadId: string,
  parts: Part[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const complete = (id: string, list: Part[]) => completeUpload(s3, key, id, list, signal);
  const last = parts.at(-1)?.partNumber ?? 0;
  const strays = s3.caps.completeSubset ? [] : await partsAfter(s3, key, uploadId, last, signal);
  if (strays.length === 0) {
    await complete(uploadId, parts);
    return;
  }
  await complete(uploadId, [...parts, ...strays]);
  const wanted = sumSizes(parts);
  const id = await createUpload(s3, key, undefined, signal);
  try {
    let copied = await copyIntoParts(s3, key, wanted, key, id, 1, signal);
    if (copied === undefined) {
      const writer = partWriter(s3, key, id, 1, signal);
      try {
        for await (const chunk of await getStream(s3, key, `bytes=0-${wanted - 1}`, wanted, signal))
          await writer.write(chunk as Buffer);
        const rest = await writer.finish();
        if (rest.byteLength > 0) {
          await writer.dispatch(rest);
          await writer.finish();
        }
      } catch (err) {
        await writer.settle();
        throw err;
      }
      copied = writer.parts;
    }
    await complete(id, copied);
  } catch (err) {
    await abortQuietly(s3, key, id);
    throw err;
  }
}

/** The parts of an open upload numbered after `after`, as the server lists them. */
export async function partsAfter(
  s3: S3Context,
  key: string,
  uploadId: string,
  after: number,
  signal: AbortSignal | undefined,
): Promise<Part[]> {
  const found: Part[] = [];
  let marker: string | undefined = after > 0 ? String(after) : undefined;
  for (;;) {
    const out = await s3.send(
      new ListPartsCommand({
        Bucket: s3.bucket,
        Key: s3.full(key),
        UploadId: uploadId,
        PartNumberMarker: marker,
      }),
      key,
      signal,
    );
    for (const p of out.Parts ?? []) {
      if (p.PartNumber === undefined || p.ETag === undefined || p.PartNumber <= after) continue;
      found.push({ partNumber: p.PartNumber, etag: p.ETag, size: p.Size ?? 0 });
    }
    if (out.IsTruncated !== true || out.NextPartNumberMarker === undefined) break;
    if (out.NextPartNumberMarker === marker) break;
    marker = out.NextPartNumberMarker;
  }
  return found.sort((a, b) => a.partNumber - b.partNumber);
}
