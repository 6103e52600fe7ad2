import { PutObjectCommand } from '@aws-sdk/client-s3';
import { bodyChunks, knownLength } from '../body.js';
import { SizeMismatchError } from '../errors.js';
import type { Body, PutOptions, PutResult } from '../object-store.js';
import { conditionalWrite, putResult } from './conditional-write.js';
import type { S3Context } from './context.js';
import { abortQuietly, completeUpload, createUpload, uploadPart } from './multipart.js';
import { PartWriter } from './part-writer.js';
import { SINGLE_PUT_MAX } from './parts.js';
import { head } from './read.js';

/* Writing objects of the S3 driver: one `PutObject` when small, else a streamed multipart upload. */

/** `ObjectStore.put`. */
export async function put(
  s3: S3Context,
  key: string,
  body: Body,
  options: PutOptions,
): Promise<PutResult> {
  const known = knownLength(body);
  if (options.size !== undefined && known !== undefined && known !== options.size) {
    throw new SizeMismatchError(options.size, known);
  }
  const ifAbsent = options.ifAbsent === true;
  if (ifAbsent) {
    // Checked first so that re-pushing an existing multi-GiB blob uploads nothing.
    const existing = await head(s3, key, options.signal);
    if (existing) return { created: false, size: existing.size };
  }
  if (known !== undefined && known <= SINGLE_PUT_MAX) {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : (body as Uint8Array);
    return putSmall(s3, key, bytes, ifAbsent, options.contentType, options.signal);
  }
  return putStream(s3, key, body, options);
}

async function putSmall(
  s3: S3Context,
  key: string,
  bytes: Uint8Array,
  ifAbsent: boolean,
  contentType: string | undefined,
  signal: AbortSignal | undefined,
): Promise<PutResult> {
  const outcome = await conditionalWrite(
    s3,
    key,
    ifAbsent,
    'conditionalPut',
    signal,
    (ifNoneMatch) =>
      s3.send(
        new PutObjectCommand({
          Bucket: s3.bucket,
          Key: s3.full(key),
          Body: bytes,
          ContentLength: bytes.byteLength,
          ContentType: contentType ?? 'application/octet-stream',
          IfNoneMatch: ifNoneMatch,
        }),
        key,
        signal,
      ),
  );
  return putResult(s3, outcome, key, bytes.byteLength, signal);
}

async function putStream(
  s3: S3Context,
  key: string,
  body: Body,
  options: PutOptions,
): Promise<PutResult> {
  const { signal, size: expected } = options;
  const ifAbsent = options.ifAbsent === true;
  // The upload starts with the first full part: a body that ends sooner is one PutObject.
  let upload: Promise<string> | undefined;
  const uploadId = (): Promise<string> => {
    upload ??= createUpload(s3, key, options.contentType, signal);
    return upload;
  };
  const writer = new PartWriter(
    async (partNumber, bytes) => uploadPart(s3, key, await uploadId(), partNumber, bytes, signal),
    1,
    s3.tuning.partConcurrency,
  );
  let total = 0;
  try {
    for await (const chunk of bodyChunks(body, signal)) {
      total += chunk.byteLength;
      if (expected !== undefined && total > expected) {
        throw new SizeMismatchError(expected, total);
      }
      await writer.write(chunk);
    }
    if (expected !== undefined && total !== expected) throw new SizeMismatchError(expected, total);
    const rest = await writer.finish();
    if (upload === undefined) {
      return await putSmall(s3, key, rest, ifAbsent, options.contentType, signal);
    }
    if (rest.byteLength > 0) {
      await writer.dispatch(rest);
      await writer.finish();
    }
    const id = await upload;
    const outcome = await conditionalWrite(
      s3,
      key,
      ifAbsent,
      'conditionalComplete',
      signal,
      (ifNoneMatch) => completeUpload(s3, key, id, writer.parts, signal, ifNoneMatch),
    );
    if (outcome === 'exists') await abortQuietly(s3, key, id);
    return await putResult(s3, outcome, key, total, signal);
  } catch (err) {
    await writer.settle();
    const id = upload === undefined ? undefined : await upload.catch(() => undefined);
    if (id !== undefined) await abortQuietly(s3, key, id);
    throw s3.fail(err, key);
  }
}
