import { randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashStream, parseDigest } from '@epoch/oci';
import {
  TooLargeError,
  UploadDigestMismatchError,
  UploadOffsetError,
  UploadUnknownError,
} from '../errors.js';
import { ObjectNotFoundError, SizeLimitError } from '../storage/errors.js';
import type { Body, ObjectStore, StagedObject } from '../storage/object-store.js';
import { Layout } from './layout.js';
import { ParallelDigester } from './parallel-digester.js';
import { readAll, toReadable } from './streams.js';

/** What a client can learn about an upload session. */
export interface UploadStatus {
  id: string;
  repository: string;
  /** Bytes received so far: the next chunk must start here. */
  size: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A finished upload: the blob now exists under its digest. */
export interface UploadResult {
  digest: string;
  size: number;
  /** False when the blob already existed and the uploaded copy was discarded. */
  created: boolean;
}

export interface UploadsOptions {
  /** Largest blob an upload may produce. Default 1 TiB. */
  maxBlobSize?: number;
  /** A session untouched for this long is abandoned and swept. Default 1 hour. */
  idleTimeoutMs?: number;
  /** Clock, for tests. */
  now?: () => Date;
}

/** The persisted record of a session: everything any process needs to continue it. */
interface SessionRecord {
  id: string;
  repository: string;
  createdAt: string;
  updatedAt: string;
  staged: StagedObject;
}

interface AppendOptions {
  /** Where the client says this chunk starts (from `Content-Range`); checked against the size. */
  offset?: number;
  signal?: AbortSignal;
}

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SESSION_RECORD_LIMIT = 1 << 20;
const HASH_CACHE_LIMIT = 4096;

/**
 * Resumable blob uploads on top of an object store's staged objects.
 *
 * Sessions are independent: there is no global lock, only a per-session guard against two chunks
 * of the same session at once. Everything a session needs lives in the store (`session.json`
 * plus the staged bytes), so any process can continue, finish or sweep it; the only thing kept in
 * memory is an incremental SHA-256 state per session (computed on a worker thread, see
 * `ParallelDigester`), an optimisation that is dropped whenever it might be stale, in which case
 * the bytes are hashed again from storage when the upload ends.
 */
export class Uploads {
  readonly #store: ObjectStore;
  readonly #maxBlobSize: number;
  readonly #idleTimeoutMs: number;
  readonly #now: () => Date;
  readonly #busy = new Set<string>();
  /** Each session's incremental hash; usable while its `bytes` equal the staged size. */
  readonly #hashes = new Map<string, ParallelDigester>();

  constructor(store: ObjectStore, options: UploadsOptions = {}) {
    this.#store = store;
    this.#maxBlobSize = options.maxBlobSize ?? 2 ** 40;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60 * 60 * 1000;
    this.#now = options.now ?? (() => new Date());
  }

  /** Opens a new session bound to `repository`. */
  async start(repository: string, options: { signal?: AbortSignal } = {}): Promise<UploadStatus> {
    Layout.repository(repository);
    const id = randomUUID();
    const staged = await this.#store.beginStaged(Layout.uploadData(id), options);
    const now = this.#now().toISOString();
    const record: SessionRecord = { id, repository, createdAt: now, updatedAt: now, staged };
    await this.#save(record, options.signal);
    this.#remember(id, new ParallelDigester('sha256'));
    return toStatus(record);
  }

  /** The session's current state. */
  async status(repository: string, id: string): Promise<UploadStatus> {
    return toStatus(await this.#load(repository, id));
  }

  /**
   * Appends `body` to the session. Rejects a chunk that does not start at the current size, and
   * a second chunk while one is still streaming, with `UploadOffsetError` (HTTP 416).
   */
  async append(
    repository: string,
    id: string,
    body: Body,
    options: AppendOptions = {},
  ): Promise<UploadStatus> {
    return this.#exclusive(repository, id, async (record) =>
      toStatus(await this.#append(record, body, options)),
    );
  }

  /**
   * Ends the session: appends `finalChunk` if given, checks that the bytes hash to `digest`, and
   * makes them the blob `digest` without sending them through this process again. On a mismatch
   * the session and its bytes are discarded and nothing is stored.
   */
  async finish(
    repository: string,
    id: string,
    digest: string,
    options: AppendOptions & { finalChunk?: Body } = {},
  ): Promise<UploadResult> {
    const { algorithm } = parseDigest(digest);
    return this.#exclusive(repository, id, async (loaded) => {
      let record = loaded;
      if (options.finalChunk !== undefined) {
        record = await this.#append(record, options.finalChunk, options);
      }
      const cached = this.#hashes.get(id);
      this.#hashes.delete(id);
      let incremental: string | undefined;
      if (algorithm === 'sha256' && cached?.bytes === record.staged.size) {
        incremental = await cached.digest().catch(() => undefined);
      } else {
        cached?.release();
      }
      // Without a usable incremental hash (another process took part, or the hashing thread
      // failed) the staged bytes are hashed again from storage.
      const actual =
        incremental ??
        (await hashStream(await this.#store.readStaged(record.staged), algorithm)).digest;
      if (actual !== digest) {
        await this.#discard(record);
        throw new UploadDigestMismatchError(digest, actual);
      }
      const { created } = await this.#store.commitStaged(record.staged, Layout.blob(digest), {
        ifAbsent: true,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      await this.#store.delete(Layout.uploadSession(id));
      return { digest, size: record.staged.size, created };
    });
  }

  /** Uploads a whole blob in one go (monolithic POST/PUT): start, append, finish. */
  async putBlob(
    repository: string,
    digest: string,
    body: Body,
    options: { size?: number; signal?: AbortSignal } = {},
  ): Promise<UploadResult> {
    parseDigest(digest);
    const { id } = await this.start(repository, options);
    try {
      return await this.finish(repository, id, digest, {
        finalChunk: body,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      await this.cancel(repository, id).catch(() => undefined);
      throw err;
    }
  }

  /** Cancels the session and deletes its bytes. */
  async cancel(repository: string, id: string): Promise<void> {
    const record = await this.#load(repository, id);
    await this.#discard(record);
  }

  /**
   * Removes sessions idle for longer than the idle timeout (or `olderThan`), including records
   * and data left by a process that crashed, and the backend's own leftovers (S3 multipart
   * uploads). Safe to run from several processes at once and while uploads continue: a session
   * that is streaming keeps its `updatedAt` fresh.
   */
  async sweep(options: { olderThan?: Date } = {}): Promise<{ removed: number }> {
    const cutoff = options.olderThan ?? new Date(this.#now().getTime() - this.#idleTimeoutMs);
    let removed = 0;
    let cursor: string | undefined;
    do {
      const page = await this.#store.list(Layout.uploadsPrefix, {
        delimiter: '/',
        ...(cursor ? { cursor } : {}),
      });
      for (const prefix of page.prefixes) {
        const id = prefix.slice(Layout.uploadsPrefix.length, -1);
        if (await this.#sweepOne(id, cutoff)) removed++;
      }
      cursor = page.cursor;
    } while (cursor);
    // Backend leftovers (S3 multipart uploads are dated from their start) are removed only when no
    // live session owns them: a session record that survived the pass above is live.
    await this.#store.sweepStaged(Layout.uploadsPrefix, cutoff, {
      keep: async (stagingKey) => {
        const id = stagingKey.slice(Layout.uploadsPrefix.length).split('/')[0] ?? '';
        return (
          this.#busy.has(id) || (await this.#store.stat(Layout.uploadSession(id))) !== undefined
        );
      },
    });
    return { removed };
  }

  async #sweepOne(id: string, cutoff: Date): Promise<boolean> {
    if (this.#busy.has(id)) return false;
    const record = await this.#read(id).catch(() => undefined);
    const lastActivity = record
      ? new Date(record.updatedAt)
      : await this.#newestObject(Layout.uploadPrefix(id));
    if (lastActivity && lastActivity >= cutoff) return false;
    if (record) await this.#store.abortStaged(record.staged).catch(() => undefined);
    await this.#deletePrefix(Layout.uploadPrefix(id));
    this.#forget(id);
    return true;
  }

  async #append(record: SessionRecord, body: Body, options: AppendOptions): Promise<SessionRecord> {
    const start = record.staged.size;
    // The body is left unread on rejection: the HTTP layer decides whether to drain it or close.
    if (options.offset !== undefined && options.offset !== start) {
      throw new UploadOffsetError(record.id, start, options.offset);
    }
    // Before any hash state is taken over: nothing below may throw until the `try`.
    const source = toReadable(body);
    const cached = this.#hashes.get(record.id);
    this.#hashes.delete(record.id);
    const hash = cached?.bytes === start ? cached : undefined;
    if (cached && !hash) cached.release();
    // A failed append leaves the staged bytes where they were; keep a copy of the hash state so
    // the incremental digest can be rolled back with them.
    const before = hash?.copy();

    const hashed = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        // The hashing thread runs behind; when it falls too far behind, so does the upload.
        const behind = hash?.update(chunk);
        if (behind) behind.then(() => done(null, chunk));
        else done(null, chunk);
      },
    });
    const piped = pipeline(source, hashed).catch(() => undefined);
    const heartbeat = this.#heartbeat(record);
    let next: SessionRecord;
    try {
      let staged: StagedObject;
      try {
        staged = await this.#store.appendStaged(record.staged, hashed, {
          maxBytes: this.#maxBlobSize,
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (err) {
        source.destroy();
        hashed.destroy();
        if (err instanceof SizeLimitError) throw new TooLargeError(this.#maxBlobSize, 'blob');
        throw err;
      } finally {
        await heartbeat.stop();
        await piped;
      }
      next = { ...record, staged, updatedAt: this.#now().toISOString() };
      await this.#save(next, options.signal);
    } catch (err) {
      hash?.release();
      if (before) this.#remember(record.id, before);
      throw err;
    }
    before?.release();
    if (hash) this.#remember(record.id, hash);
    return next;
  }

  /** Keeps `updatedAt` fresh while one long chunk streams, so no sweep takes the session. */
  #heartbeat(record: SessionRecord): { stop(): Promise<void> } {
    let pending: Promise<unknown> = Promise.resolve();
    const timer = setInterval(
      () => {
        pending = pending
          .then(() => this.#save({ ...record, updatedAt: this.#now().toISOString() }))
          .catch(() => undefined);
      },
      Math.max(1000, this.#idleTimeoutMs / 4),
    );
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await pending;
      },
    };
  }

  /** Runs `work` on the session while no other chunk of it runs in this process. */
  async #exclusive<T>(
    repository: string,
    id: string,
    work: (record: SessionRecord) => Promise<T>,
  ): Promise<T> {
    const record = await this.#load(repository, id);
    if (this.#busy.has(id)) throw new UploadOffsetError(id, record.staged.size, undefined);
    this.#busy.add(id);
    try {
      return await work(record);
    } catch (err) {
      // The session's staged bytes are gone (an abort elsewhere, a bucket lifecycle rule): the
      // upload is unknown to the client, not a fault of the server.
      if (err instanceof ObjectNotFoundError && err.key === record.staged.stagingKey) {
        throw new UploadUnknownError(id);
      }
      throw err;
    } finally {
      this.#busy.delete(id);
    }
  }

  async #load(repository: string, id: string): Promise<SessionRecord> {
    if (!UPLOAD_ID.test(id)) throw new UploadUnknownError(id);
    let record: SessionRecord;
    try {
      record = await this.#read(id);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new UploadUnknownError(id);
      throw err;
    }
    // Sessions are bound to the repository they were opened in.
    if (record.repository !== repository || record.id !== id) throw new UploadUnknownError(id);
    return record;
  }

  async #read(id: string): Promise<SessionRecord> {
    const bytes = await readAll(
      await this.#store.read(Layout.uploadSession(id)),
      SESSION_RECORD_LIMIT,
    );
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as SessionRecord;
  }

  async #save(record: SessionRecord, signal?: AbortSignal): Promise<void> {
    await this.#store.put(Layout.uploadSession(record.id), JSON.stringify(record), {
      contentType: 'application/json',
      ...(signal ? { signal } : {}),
    });
  }

  async #discard(record: SessionRecord): Promise<void> {
    this.#forget(record.id);
    await this.#store.abortStaged(record.staged);
    await this.#deletePrefix(Layout.uploadPrefix(record.id));
  }

  async #deletePrefix(prefix: string): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await this.#store.list(prefix, cursor ? { cursor } : {});
      await this.#store.deleteMany(page.objects.map((o) => o.key));
      cursor = page.cursor;
    } while (cursor);
  }

  async #newestObject(prefix: string): Promise<Date | undefined> {
    const page = await this.#store.list(prefix);
    let newest: Date | undefined;
    for (const o of page.objects) if (!newest || o.lastModified > newest) newest = o.lastModified;
    return newest;
  }

  #remember(id: string, digester: ParallelDigester): void {
    this.#forget(id);
    if (this.#hashes.size >= HASH_CACHE_LIMIT) {
      const oldest = this.#hashes.keys().next();
      if (!oldest.done) this.#forget(oldest.value);
    }
    this.#hashes.set(id, digester);
  }

  /** Drops the session's incremental hash, and its state in the hashing thread. */
  #forget(id: string): void {
    this.#hashes.get(id)?.release();
    this.#hashes.delete(id);
  }
}

function toStatus(record: SessionRecord): UploadStatus {
  return {
    id: record.id,
    repository: record.repository,
    size: record.staged.size,
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
  };
}
