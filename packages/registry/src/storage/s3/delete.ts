import { DeleteObjectCommand, DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { ObjectNotFoundError, StorageError } from '../errors.js';
import { forEachLimited } from '../retry.js';
import type { S3Context } from './context.js';

/* Deleting objects of the S3 driver: one at a time, in batches, and as best-effort cleanup. */

const DELETE_BATCH = 1000;

/** Deletes the object at S3 key `fullKey`; one that is not there is not an error. */
export async function deleteFull(
  s3: S3Context,
  fullKey: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: fullKey }), fullKey, signal);
  } catch (err) {
    if (!(err instanceof ObjectNotFoundError)) throw err;
  }
}

/** Cleanup after the operation succeeded: a failure here must not fail it (sweeps catch up). */
export async function deleteQuietly(s3: S3Context, key: string): Promise<void> {
  await deleteFull(s3, s3.full(key), undefined).catch(() => {});
}

/** `ObjectStore.deleteMany`: `DeleteObjects` batches, `deleteConcurrency` of them at once. */
export async function deleteObjects(
  s3: S3Context,
  keys: readonly string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const batches: string[][] = [];
  for (let i = 0; i < keys.length; i += DELETE_BATCH) {
    batches.push(keys.slice(i, i + DELETE_BATCH).map((k) => s3.full(k)));
  }
  await forEachLimited(batches, s3.tuning.deleteConcurrency, async (batch) => {
    const out = await s3.send(
      new DeleteObjectsCommand({
        Bucket: s3.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      }),
      batch[0] ?? '',
      signal,
    );
    const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    const first = failed[0];
    if (first) {
      throw new StorageError(
        `could not delete ${failed.length} objects, e.g. ${first.Key}: ${first.Code} ${first.Message ?? ''}`,
      );
    }
  });
}
