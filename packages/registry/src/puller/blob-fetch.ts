import { setMaxListeners } from 'node:events';
import { createReadStream } from 'node:fs';
import { chmod, type FileHandle, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Digest, Digester, DigestMismatchError } from '@epoch/oci';
import type { RegistryClient } from '../client/client.js';
import { RegistryHttpError } from '../client/errors.js';
import type { Cache } from './cache.js';
import type { Limiter } from './limiter.js';

/** What {@link fetchBlob} needs from its puller. */
export interface BlobFetchContext {
  client: RegistryClient;
  cache: Cache;
  limiter: Limiter;
  chunkBytes: number;
  attempts: number;
  resumes: number;
  onBytes: (n: number) => void;
  onRejected: (attempt: number, error: Error) => void;
}

/** How often finished pieces are synced and recorded while a blob downloads. */
const CHECKPOINT_MS = 1000;

/** The pieces of a partial download already on disk (`partial/sha256-<hex>.json`). */
interface PartialState {
  size: number;
  chunkBytes: number;
  done: number[];
}

/**
 * Brings one blob into the cache: nothing to do if it is there; otherwise downloads it into its
 * partial file in `chunkBytes` pieces fetched in parallel (each a ranged GET holding one slot of
 * the puller's limiter, resumed from its last byte when the connection drops), records each
 * piece once it is synced so that a restart fetches only the missing ones, then hashes the whole
 * file and renames it into place only if size and digest match. A mismatch discards the partial
 * file and downloads again, up to `attempts` times.
 *
 * @returns the bytes downloaded
 */
export async function fetchBlob(
  ctx: BlobFetchContext,
  repository: string,
  digest: Digest,
  size: number,
  signal: AbortSignal,
): Promise<number> {
  if ((await ctx.cache.blobSize(digest)) === size) return 0;
  const partial = ctx.cache.partialPath(digest);
  let transferred = 0;
  for (let attempt = 1; ; attempt++) {
    const got = await fillPartial(ctx, repository, digest, size, partial, signal);
    transferred += got;
    signal.throwIfAborted();
    const actual = await hashFile(partial, digest, signal);
    if (actual === digest) {
      await chmod(partial, 0o444);
      await rename(partial, ctx.cache.blobPath(digest));
      await rm(`${partial}.json`, { force: true });
      return transferred;
    }
    await rm(`${partial}.json`, { force: true });
    await rm(partial, { force: true });
    const error = new DigestMismatchError(digest, actual);
    ctx.onRejected(attempt, error);
    if (attempt >= ctx.attempts) throw error;
  }
}

async function fillPartial(
  ctx: BlobFetchContext,
  repository: string,
  digest: Digest,
  size: number,
  partial: string,
  signal: AbortSignal,
): Promise<number> {
  const state = await loadState(`${partial}.json`, size, ctx.chunkBytes);
  const file = await open(partial, state.done.length > 0 ? 'r+' : 'w');
  // Sibling pieces stop as soon as one fails for good.
  const failed = new AbortController();
  const both = AbortSignal.any([signal, failed.signal]);
  setMaxListeners(0, both);
  let transferred = 0;
  let saving = Promise.resolve();
  const unsynced: number[] = [];
  let checkpointed = Date.now();
  // Pieces are recorded only once their bytes are durable, so a crash never marks missing data
  // done; one sync covers every piece finished before it (a sync per piece serializes the
  // parallel writers on the file).
  const checkpoint = () => {
    checkpointed = Date.now();
    saving = saving.then(async () => {
      const batch = unsynced.splice(0);
      if (batch.length === 0) return;
      await file.datasync();
      state.done.push(...batch);
      await writeFile(`${partial}.json`, JSON.stringify(state));
    });
    return saving;
  };
  try {
    if (state.done.length === 0) await file.truncate(size);
    const count = Math.max(1, Math.ceil(size / state.chunkBytes));
    const missing: number[] = [];
    for (let i = 0; i < count; i++) if (!state.done.includes(i)) missing.push(i);
    await Promise.all(
      missing.map(async (index) => {
        try {
          const start = index * state.chunkBytes;
          const end = Math.min(size, start + state.chunkBytes);
          const release = await ctx.limiter.acquire(both);
          try {
            // Not `transferred += await …`: that would read the total before the await.
            const got = await fetchPiece(ctx, repository, digest, file, start, end, both);
            transferred += got;
          } finally {
            release();
          }
          unsynced.push(index);
          if (Date.now() - checkpointed >= CHECKPOINT_MS) await checkpoint();
        } catch (err) {
          failed.abort(err);
          throw err;
        }
      }),
    );
    await saving;
    // The blob is renamed into place next: its bytes must be on disk first.
    await file.datasync();
    unsynced.length = 0;
  } finally {
    // Given up (or failed): what did arrive is kept for the next attempt, after a restart too.
    if (unsynced.length > 0) await checkpoint().catch(() => {});
    await saving.catch(() => {});
    await file.close();
  }
  return transferred;
}

/** Writes bytes `[start, end)` of the blob at their offsets, resuming after a dropped connection. */
async function fetchPiece(
  ctx: BlobFetchContext,
  repository: string,
  digest: Digest,
  file: FileHandle,
  start: number,
  end: number,
  signal: AbortSignal,
): Promise<number> {
  let at = start;
  for (let failures = 0; ; ) {
    if (at >= end) return at - start;
    try {
      const body = ctx.client.getBlob(repository, digest, {
        range: { start: at, end: end - 1 },
        signal,
      });
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const take = Math.min(chunk.length, end - at);
        await file.write(chunk, 0, take, at);
        at += take;
        ctx.onBytes(take);
      }
      if (at < end) throw new Error(`range ended at ${at}, expected ${end}`);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // A 4xx will not get better; a dropped or failed transfer resumes from the byte it reached.
      const permanent =
        err instanceof RegistryHttpError &&
        err.status >= 400 &&
        err.status < 500 &&
        err.status !== 429;
      if (permanent || failures >= ctx.resumes) throw err;
      failures++;
      await sleep(100 * 2 ** failures, undefined, { signal });
    }
  }
}

async function loadState(path: string, size: number, chunkBytes: number): Promise<PartialState> {
  try {
    const doc = JSON.parse(await readFile(path, 'utf8')) as PartialState;
    if (doc.size === size && Number.isSafeInteger(doc.chunkBytes) && Array.isArray(doc.done)) {
      return doc;
    }
  } catch {
    // No usable record: start over.
  }
  return { size, chunkBytes, done: [] };
}

async function hashFile(path: string, digest: Digest, signal: AbortSignal): Promise<string> {
  const digester = new Digester(digest.startsWith('sha512:') ? 'sha512' : 'sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024, signal })) {
    digester.update(chunk as Buffer);
  }
  return digester.digest();
}
