import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { emptyStream, exactLength } from '../body.js';
import { ObjectNotFoundError, RangeNotSatisfiableError, StorageError } from '../errors.js';
import type { ByteRange, ObjectInfo } from '../object-store.js';
import type { S3Context } from './context.js';
import { isInvalidRange } from './errors.js';

/* Reading objects of the S3 driver: HEAD, and GETs whose length is checked. */

export async function head(
  s3: S3Context,
  key: string,
  signal: AbortSignal | undefined,
): Promise<ObjectInfo | undefined> {
  try {
    const out = await s3.send(
      new HeadObjectCommand({ Bucket: s3.bucket, Key: s3.full(key) }),
      key,
      signal,
    );
    return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0) };
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
}

/** `ObjectStore.read`: all of `key` or `range` of it. */
export async function readObject(
  s3: S3Context,
  key: string,
  range: ByteRange | undefined,
  signal: AbortSignal | undefined,
): Promise<Readable> {
  if (range?.length === 0) {
    const info = await head(s3, key, signal);
    if (!info) throw new ObjectNotFoundError(key);
    if (range.offset > info.size) throw new RangeNotSatisfiableError(key, info.size);
    return emptyStream();
  }
  const header =
    !range || (range.offset === 0 && range.length === undefined)
      ? undefined
      : `bytes=${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}`;
  try {
    return await getStream(s3, key, header, undefined, signal);
  } catch (err) {
    if (!range || !isInvalidRange(err)) throw err;
    // 416 for any offset at or past the end: an offset equal to the size is a valid, empty read.
    const info = await head(s3, key, signal);
    if (!info) throw new ObjectNotFoundError(key);
    if (range.offset === info.size) return emptyStream();
    throw new RangeNotSatisfiableError(key, info.size);
  }
}

/**
 * GETs `key` (or `range` of it) as a stream that errors unless exactly the announced bytes
 * arrive. `expected` (when known) guards against an object replaced in the meantime.
 */
export async function getStream(
  s3: S3Context,
  key: string,
  range: string | undefined,
  expected: number | undefined,
  signal?: AbortSignal,
): Promise<Readable> {
  const out = await s3.send(
    new GetObjectCommand({ Bucket: s3.bucket, Key: s3.full(key), Range: range }),
    key,
    signal,
  );
  const body = out.Body;
  if (!(body instanceof Readable)) {
    throw new StorageError(`GET ${key} returned no readable body`);
  }
  const length = out.ContentLength;
  if (length === undefined || (expected !== undefined && length !== expected)) {
    body.destroy();
    throw new StorageError(
      `GET ${key} returned ${length ?? 'an unknown number of'} bytes, expected ${expected}`,
    );
  }
  return exactLength(body, length, key);
}

/** Reads a small object (a tail) into memory, checking its size. */
export async function readSmall(
  s3: S3Context,
  key: string,
  size: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await getStream(s3, key, undefined, size, signal)) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
