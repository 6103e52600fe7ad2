import type { Readable } from 'node:stream';
import { ListPartsCommand } from '@aws-sdk/client-s3';
import { ObjectNotFoundError } from '../errors.js';
import type { S3Context } from './context.js';
import {
  abortQuietly,
  completeParts,
  completeUpload,
  createUpload,
  partsAfter,
  partWriter,
  uploadPart,
} from './multipart.js';
import { copyIntoParts, copyPart } from './part-copy.js';
import { MAX_PARTS } from './parts.js';
import { getStream, head, readSmall } from './read.js';
import { type Part, type S3StagedState, sumSizes } from './staged-state.js';

/* The multipart upload behind a staged object: where its bytes are, reopening it, completing it. */

/** Where the bytes of a staged object with parts are right now (see `readStaged`). */
export type Location =
  | { kind: 'open' }
  | { kind: 'completed'; size: number; includesTail: boolean };

/**
 * Whether the staged bytes are still in the open multipart upload, or were completed into the
 * object at the staging key by `readStaged` (bytes of the parts only) or by a commit that failed
 * after completing (parts and tail).
 */
export async function locate(
  s3: S3Context,
  st: S3StagedState,
  key: string,
  size: number,
  signal: AbortSignal | undefined,
): Promise<Location> {
  if (await isOpen(s3, st, key, signal)) return { kind: 'open' };
  // Without parts there is nothing `readStaged` would have completed: the upload was aborted.
  if (st.parts.length === 0) throw new ObjectNotFoundError(key);
  const info = await head(s3, key, signal);
  const partsSize = sumSizes(st.parts);
  if (info?.size === partsSize) return { kind: 'completed', size: partsSize, includesTail: false };
  if (info?.size === size) return { kind: 'completed', size, includesTail: true };
  // Aborted (or never begun): the staged object is gone.
  throw new ObjectNotFoundError(key);
}

/**
 * Whether multipart upload `st.uploadId` is still open: `ListParts` where the server has it,
 * else a one-byte `UploadPart` at the next part number, which fails on an aborted or completed
 * upload. That part is overwritten by the next append's first part, and left out of the
 * completion otherwise (such a server must take a subset of the parts, see `checkCapabilities`).
 */
async function isOpen(
  s3: S3Context,
  st: S3StagedState,
  key: string,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const next = st.parts.length + 1;
  try {
    if (s3.caps.listParts) {
      await s3.send(
        new ListPartsCommand({
          Bucket: s3.bucket,
          Key: s3.full(key),
          UploadId: st.uploadId,
          MaxParts: 1,
        }),
        key,
        signal,
      );
    } else if (next <= MAX_PARTS) {
      await uploadPart(s3, key, st.uploadId, next, Buffer.alloc(1), signal);
    }
    return true;
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return false;
    throw err;
  }
}

/**
 * The upload to continue a staged object in: its own while still open, else a new one whose
 * first parts are server-side copies of the completed object (or, on a server without
 * `UploadPartCopy`, a `prelude` stream of its bytes to feed in before anything else).
 */
export async function reopen(
  s3: S3Context,
  st: S3StagedState,
  key: string,
  size: number,
  signal: AbortSignal | undefined,
  known?: Location,
): Promise<{
  uploadId: string;
  parts: Part[];
  needsTail: boolean;
  createdUpload?: string;
  prelude?: Readable;
}> {
  const location = known ?? (await locate(s3, st, key, size, signal));
  if (location.kind === 'open') return { uploadId: st.uploadId, parts: st.parts, needsTail: true };
  const uploadId = await createUpload(s3, key, undefined, signal);
  try {
    const needsTail = !location.includesTail;
    const parts = await copyIntoParts(s3, key, location.size, key, uploadId, 1, signal);
    if (parts !== undefined) return { uploadId, parts, needsTail, createdUpload: uploadId };
    const prelude = await getStream(s3, key, undefined, location.size, signal);
    return { uploadId, parts: [], needsTail, createdUpload: uploadId, prelude };
  } catch (err) {
    await abortQuietly(s3, key, uploadId);
    throw err;
  }
}

/** Completes a staged object with parts into the object at its staging key (tail included). */
export async function completeStaged(
  s3: S3Context,
  st: S3StagedState,
  key: string,
  size: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  let location = await locate(s3, st, key, size, signal);
  // A commit that failed after completing (while copying to the destination, say) left the
  // final object in place already.
  if (location.kind === 'completed' && location.size === size) return;
  if (
    location.kind === 'open' &&
    !s3.caps.completeSubset &&
    st.parts.length > 0 &&
    (await partsAfter(s3, key, st.uploadId, st.parts.length, signal)).length > 0
  ) {
    // Parts of a failed append follow the recorded ones, and this server wants them all in the
    // completion: the small tail must not become a part in the middle. Completing the recorded
    // parts first (see `completeParts`) turns this into the read-back case below.
    await completeParts(s3, key, st.uploadId, st.parts, signal);
    location = { kind: 'completed', size: sumSizes(st.parts), includesTail: false };
  }
  const base = await reopen(s3, st, key, size, signal, location);
  const writer = partWriter(s3, key, base.uploadId, base.parts.length + 1, signal);
  try {
    if (base.prelude) for await (const chunk of base.prelude) await writer.write(chunk);
    const parts = [...base.parts];
    if (base.needsTail && st.tailKey !== null && st.tailSize > 0) {
      // The tail is the last part, which may be small; copied server-side where possible.
      const copied = base.prelude
        ? undefined
        : await copyPart(
            s3,
            st.tailKey,
            { start: 0, end: st.tailSize - 1 },
            key,
            base.uploadId,
            writer.nextPart,
            signal,
          );
      if (copied) {
        parts.push(copied);
        writer.nextPart++;
      } else {
        await writer.write(await readSmall(s3, st.tailKey, st.tailSize, signal));
      }
    }
    const rest = await writer.finish();
    if (rest.byteLength > 0) {
      await writer.dispatch(rest);
      await writer.finish();
    }
    const all = [...parts, ...writer.parts];
    if (base.createdUpload === undefined) {
      // The staged object's own upload: an earlier append may have left parts after these.
      await completeParts(s3, key, base.uploadId, all, signal);
    } else {
      await completeUpload(s3, key, base.uploadId, all, signal);
    }
  } catch (err) {
    await writer.settle();
    if (base.createdUpload !== undefined) await abortQuietly(s3, key, base.createdUpload);
    throw s3.fail(err, key);
  }
}
