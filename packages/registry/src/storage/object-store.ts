import type { Readable } from 'node:stream';

/**
 * The one storage interface Epoch's registry is written against. Every driver (filesystem, S3)
 * implements all of it and passes the shared driver suite in `test/storage/driver-suite.ts`.
 *
 * Keys are `/`-separated relative paths such as `blobs/sha256/<hex>`. A driver rejects any key with
 * an empty, `.` or `..` segment, a leading `/`, a backslash or a NUL byte (`InvalidKeyError`) so no
 * key can ever address storage outside the driver's root or prefix.
 */
export interface ObjectStore {
  /** `filesystem` or `s3`: shown on the dashboard and in logs. */
  readonly kind: 'filesystem' | 's3';

  /** Size and modification time of the object at `key`, or `undefined` when there is none. */
  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined>;

  /**
   * A stream of the object's bytes, or of `range` of them. Throws `ObjectNotFoundError` when the
   * object does not exist and `RangeNotSatisfiableError` when `range.offset` is past its end (an
   * offset equal to the size yields an empty stream). A read that fails midway errors the stream;
   * it never ends cleanly on fewer bytes than requested.
   */
  read(key: string, range?: ByteRange, options?: OpOptions): Promise<Readable>;

  /**
   * Stores `body` at `key` atomically: readers see the old object or the whole new one, never a
   * part. With `ifAbsent`, an existing object is left untouched and `{ created: false }` is
   * returned (used for content-addressed writes that must never rewrite a blob). Of several
   * `ifAbsent` writers racing for one absent key exactly one creates it where the backend can make
   * the write exclusive (the filesystem; S3 servers honouring `If-None-Match`); elsewhere (e.g.
   * Ceph RGW's multipart completions and copies) each may write a whole copy and report
   * `created: true`, so racing writers must write the same bytes, as content-addressed ones do.
   * With `size`, a body of any other length is rejected with `SizeMismatchError` and nothing is
   * stored.
   */
  put(key: string, body: Body, options?: PutOptions): Promise<PutResult>;

  /**
   * Copies `source` to `destination` inside the store without sending the bytes through this
   * process (server-side copy on S3, hard link or reflink-free copy on disk). Same atomicity and
   * `ifAbsent` semantics as `put`. Throws `ObjectNotFoundError` when `source` is missing.
   */
  copy(source: string, destination: string, options?: CopyOptions): Promise<PutResult>;

  /** Deletes the object at `key`. Deleting a missing object is not an error. */
  delete(key: string, options?: OpOptions): Promise<void>;

  /** Deletes many objects, batched and in parallel where the backend allows. Missing keys are fine. */
  deleteMany(keys: readonly string[], options?: OpOptions): Promise<void>;

  /**
   * One page of the objects whose keys start with `prefix`, in ascending byte order of key.
   * `cursor` is the last key of the previous page (exclusive start). With `delimiter: '/'`, keys
   * that have a further `/` after the prefix are rolled up into `prefixes` (each ending in `/`),
   * like S3's common prefixes; a rolled-up prefix counts as one entry toward `limit`.
   * A page has at most `limit` entries (default 1000, capped at 1000); `cursor` in the
   * result is set only when more entries may follow.
   */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;

  /**
   * A URL from which a plain HTTP client can GET the object for `expiresInSeconds`, or `undefined`
   * when the backend has no such thing (the filesystem). Does not check that the object exists.
   */
  presignGet(key: string, expiresInSeconds: number): Promise<string | undefined>;

  /**
   * Staged objects back resumable uploads: an append-only object under a staging key that is
   * invisible at its destination until `commitStaged`. Each append is durable when it resolves
   * (fsync on disk, uploaded parts on S3), and the returned `StagedObject` (plain JSON) is enough
   * for any process to continue, read back or commit it later.
   */
  beginStaged(stagingKey: string, options?: OpOptions): Promise<StagedObject>;

  /**
   * Appends all of `body` to the staged object. Resolves with the new state once the bytes are
   * durable. If `body` errors or `maxBytes` would be exceeded (`SizeLimitError`), the staged object is
   * left at its previous size, so the caller may retry from `staged.size`.
   */
  appendStaged(staged: StagedObject, body: Body, options?: AppendOptions): Promise<StagedObject>;

  /** The staged bytes so far, e.g. to hash them again after a restart. */
  readStaged(staged: StagedObject, options?: OpOptions): Promise<Readable>;

  /**
   * Makes the staged bytes the object at `destination` atomically, without sending them through
   * this process (rename on disk; complete the multipart upload, then server-side copy on S3), and
   * removes the staging data. With `ifAbsent`, an existing destination is kept and the staging
   * data is discarded (`{ created: false }`).
   */
  commitStaged(
    staged: StagedObject,
    destination: string,
    options?: CopyOptions,
  ): Promise<PutResult>;

  /** Discards a staged object and all its data. Idempotent. */
  abortStaged(staged: StagedObject, options?: OpOptions): Promise<void>;

  /**
   * Backend-level leftovers of staged objects under `prefix` that are older than `olderThan`
   * (S3 multipart uploads and tail objects; on disk, temporary files) are removed, except those
   * of staging keys for which `options.keep` answers true. S3 dates a multipart upload from its
   * start, not its last part, so the caller must use `keep` to protect live long uploads.
   * Called by the start-up sweep after the registry has deleted the sessions it abandons.
   * Returns how many leftovers were removed.
   */
  sweepStaged(prefix: string, olderThan: Date, options?: SweepOptions): Promise<number>;

  /** Releases sockets and handles. The store must not be used afterwards. */
  close(): Promise<void>;
}

/** Bytes for `put` and `appendStaged`: a Node stream, a Web stream, or bytes in memory. */
export type Body = Readable | ReadableStream<Uint8Array> | Uint8Array | string;

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
}

/** `length` omitted means "to the end of the object". */
export interface ByteRange {
  offset: number;
  length?: number;
}

export interface OpOptions {
  signal?: AbortSignal;
}

export interface PutOptions extends OpOptions {
  ifAbsent?: boolean;
  /** Expected length of the body in bytes. */
  size?: number;
  contentType?: string;
}

export interface SweepOptions extends OpOptions {
  /** Whether the staged object at this staging key is still in use and must be kept. */
  keep?: (stagingKey: string) => boolean | Promise<boolean>;
}

export interface CopyOptions extends OpOptions {
  ifAbsent?: boolean;
}

export interface AppendOptions extends OpOptions {
  /** The staged object may not grow past this many bytes in total. */
  maxBytes?: number;
}

export interface PutResult {
  /** False when `ifAbsent` found an existing object and nothing was written. */
  created: boolean;
  size: number;
}

export interface ListOptions extends OpOptions {
  cursor?: string;
  limit?: number;
  delimiter?: '/';
}

export interface ListPage {
  objects: ObjectInfo[];
  prefixes: string[];
  cursor?: string;
}

/**
 * The resumable state of a staged object. `driverState` is the driver's own JSON (the multipart
 * upload id and part list on S3); callers persist the whole object as it is and never look inside.
 */
export interface StagedObject {
  readonly stagingKey: string;
  readonly size: number;
  readonly driverState: JsonValue;
}

export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };
