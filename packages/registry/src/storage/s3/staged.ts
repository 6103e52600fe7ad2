import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { bodyChunks, emptyStream, exactLength, knownLength } from '../body.js';
import { ObjectNotFoundError, SizeLimitError } from '../errors.js';
import type {
  AppendOptions,
  Body,
  CopyOptions,
  OpOptions,
  PutResult,
  StagedObject,
} from '../object-store.js';
import { conditionalWrite, putResult, type WriteOutcome } from './conditional-write.js';
import type { S3Context } from './context.js';
import { copyObject } from './copy.js';
import { deleteQuietly } from './delete.js';
import { abortQuietly, completeParts, createUpload, partWriter } from './multipart.js';
import { MIN_PART_SIZE } from './parts.js';
import { getStream, head, readSmall } from './read.js';
import { parseStaged, type S3StagedState, sumSizes, toJson } from './staged-state.js';
import { completeStaged, locate, reopen } from './staged-upload.js';

/* Staged objects of the S3 driver (see `S3StagedState`): begin, append, read, commit, abort. */

export async function beginStaged(
  s3: S3Context,
  stagingKey: string,
  options?: OpOptions,
): Promise<StagedObject> {
  const uploadId = await createUpload(s3, stagingKey, undefined, options?.signal);
  const state: S3StagedState = { driver: 's3', uploadId, parts: [], tailKey: null, tailSize: 0 };
  return { stagingKey, size: 0, driverState: toJson(state) };
}

/**
 * Appends by uploading parts: the old tail's bytes, then the body, cut by `partSizeFor`. What is
 * left at the end goes up as one more part when it reaches 5 MiB, else as the new tail object.
 * On failure the parts uploaded so far are simply not recorded: the old state stays valid (a
 * retry reuses their part numbers, and S3 keeps the last upload of a part number).
 */
export async function appendStaged(
  s3: S3Context,
  staged: StagedObject,
  body: Body,
  options: AppendOptions,
): Promise<StagedObject> {
  const st = parseStaged(staged);
  const { maxBytes, signal } = options;
  const room = maxBytes === undefined ? undefined : maxBytes - staged.size;
  const known = knownLength(body);
  if (room !== undefined && (room < 0 || (known !== undefined && known > room))) {
    throw new SizeLimitError(maxBytes ?? 0);
  }
  const key = staged.stagingKey;
  const base = await reopen(s3, st, key, staged.size, signal);
  const writer = partWriter(s3, key, base.uploadId, base.parts.length + 1, signal);
  let newTail: string | null = null;
  let appended = 0;
  try {
    if (base.prelude) for await (const chunk of base.prelude) await writer.write(chunk);
    if (base.needsTail && st.tailKey !== null && st.tailSize > 0) {
      await writer.write(await readSmall(s3, st.tailKey, st.tailSize, signal));
    }
    for await (const chunk of bodyChunks(body, signal)) {
      appended += chunk.byteLength;
      if (room !== undefined && appended > room) throw new SizeLimitError(maxBytes ?? 0);
      await writer.write(chunk);
    }
    if (appended === 0 && base.createdUpload === undefined) {
      await writer.settle();
      return staged;
    }
    let rest = await writer.finish();
    if (rest.byteLength >= MIN_PART_SIZE) {
      await writer.dispatch(rest);
      await writer.finish();
      rest = Buffer.alloc(0);
    }
    if (rest.byteLength > 0) {
      newTail = `${key}.tail.${randomBytes(8).toString('hex')}`;
      await s3.send(
        new PutObjectCommand({
          Bucket: s3.bucket,
          Key: s3.full(newTail),
          Body: rest,
          ContentLength: rest.byteLength,
        }),
        newTail,
        signal,
      );
    }
  } catch (err) {
    await writer.settle();
    if (base.createdUpload !== undefined) await abortQuietly(s3, key, base.createdUpload);
    throw s3.fail(err, key);
  }
  // Superseded: the old tail (now inside a part or the new tail) and, after a reopen, the
  // completed object whose bytes were copied into the new upload. Best effort: a leftover tail
  // is swept, a leftover object is the registry's staging key, which it deletes.
  if (st.tailKey !== null) await deleteQuietly(s3, st.tailKey);
  if (base.createdUpload !== undefined) await deleteQuietly(s3, key);
  const state: S3StagedState = {
    driver: 's3',
    uploadId: base.uploadId,
    parts: [...base.parts, ...writer.parts],
    tailKey: newTail,
    tailSize: newTail === null ? 0 : staged.size + appended - sumSizes(base.parts, writer.parts),
  };
  return { stagingKey: key, size: staged.size + appended, driverState: toJson(state) };
}

/**
 * S3 cannot read the parts of an unfinished multipart upload, so this completes the upload into
 * the staging key and streams that object, followed by the tail. The caller's state does not
 * change (this method cannot return a new one): `appendStaged` and `commitStaged` notice the
 * completed upload (`ListParts` answers `NoSuchUpload`) and start a new one whose first parts are
 * server-side copies of the completed object, so continuing after a read stays correct from any
 * process.
 */
export async function readStaged(
  s3: S3Context,
  staged: StagedObject,
  options?: OpOptions,
): Promise<Readable> {
  const st = parseStaged(staged);
  const signal = options?.signal;
  const key = staged.stagingKey;
  let location = await locate(s3, st, key, staged.size, signal);
  if (st.parts.length === 0) {
    if (st.tailKey === null || st.tailSize === 0) return emptyStream();
    return getStream(s3, st.tailKey, undefined, st.tailSize, signal);
  }
  if (location.kind === 'open') {
    await completeParts(s3, key, st.uploadId, st.parts, signal);
    location = { kind: 'completed', size: sumSizes(st.parts), includesTail: false };
  }
  const withTail = !location.includesTail && st.tailKey !== null && st.tailSize > 0;
  const first = await getStream(s3, key, undefined, location.size, signal);
  const tailKey = st.tailKey;
  const tailSize = st.tailSize;
  async function* bytes(): AsyncGenerator<Buffer> {
    yield* first;
    if (withTail && tailKey !== null) yield* await getStream(s3, tailKey, undefined, tailSize);
  }
  return exactLength(Readable.from(bytes(), { objectMode: false }), staged.size, key);
}

/**
 * Completes the multipart upload at the staging key (the tail becomes the last part, copied
 * server-side), then copies the result server-side to `destination` and deletes the staging
 * data. The parts' keys are fixed when the upload starts, before the digest and so the
 * destination are known, hence the copy.
 */
export async function commitStaged(
  s3: S3Context,
  staged: StagedObject,
  destination: string,
  options: CopyOptions,
): Promise<PutResult> {
  const st = parseStaged(staged);
  const { signal } = options;
  const ifAbsent = options.ifAbsent === true;
  const key = staged.stagingKey;
  if (ifAbsent) {
    const existing = await head(s3, destination, signal);
    if (existing) {
      await s3.store.abortStaged(staged, options);
      return { created: false, size: existing.size };
    }
  }
  let outcome: WriteOutcome;
  if (st.parts.length === 0) {
    // Under 5 MiB in all: the tail is the whole object. The upload must still be open, so that
    // an aborted session cannot be committed.
    await locate(s3, st, key, staged.size, signal);
    const empty = st.tailKey === null || st.tailSize === 0;
    const op = empty ? 'conditionalPut' : 'conditionalCopy';
    outcome = await conditionalWrite(s3, destination, ifAbsent, op, signal, (ifNoneMatch) =>
      empty || st.tailKey === null
        ? s3.send(
            new PutObjectCommand({
              Bucket: s3.bucket,
              Key: s3.full(destination),
              Body: Buffer.alloc(0),
              ContentLength: 0,
              ContentType: 'application/octet-stream',
              IfNoneMatch: ifNoneMatch,
            }),
            destination,
            signal,
          )
        : s3.send(
            new CopyObjectCommand({
              Bucket: s3.bucket,
              Key: s3.full(destination),
              CopySource: s3.copySource(st.tailKey),
              ContentType: 'application/octet-stream',
              MetadataDirective: 'REPLACE',
              IfNoneMatch: ifNoneMatch,
            }),
            st.tailKey,
            signal,
          ),
    );
    await abortQuietly(s3, key, st.uploadId);
  } else {
    await completeStaged(s3, st, key, staged.size, signal);
    outcome = await copyObject(s3, key, staged.size, destination, ifAbsent, signal);
  }
  await deleteQuietly(s3, key);
  if (st.tailKey !== null) await deleteQuietly(s3, st.tailKey);
  return putResult(s3, outcome, destination, staged.size, signal);
}

export async function abortStaged(
  s3: S3Context,
  staged: StagedObject,
  options?: OpOptions,
): Promise<void> {
  const st = parseStaged(staged);
  const key = staged.stagingKey;
  try {
    await s3.send(
      new AbortMultipartUploadCommand({
        Bucket: s3.bucket,
        Key: s3.full(key),
        UploadId: st.uploadId,
      }),
      key,
      options?.signal,
    );
  } catch (err) {
    if (!(err instanceof ObjectNotFoundError)) throw err;
  }
  const leftovers = [key, ...(st.tailKey === null ? [] : [st.tailKey])];
  await s3.store.deleteMany(leftovers, options);
}
