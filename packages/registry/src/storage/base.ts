import type { Readable } from 'node:stream';
import { validateKey, validatePrefix } from './keys.js';
import type {
  AppendOptions,
  Body,
  ByteRange,
  CopyOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  OpOptions,
  PutOptions,
  PutResult,
  StagedObject,
  SweepOptions,
} from './object-store.js';

/** Most entries one `list` page holds, whatever `limit` asks for. */
export const MAX_LIST_LIMIT = 1000;

/**
 * The checks every driver would otherwise repeat (as distribution's `driver/base`): each public
 * `ObjectStore` method validates its keys (`InvalidKeyError`), prefixes, byte range and list limit
 * (`RangeError`), then calls the driver's `do…` method with arguments it can trust. A driver
 * extends this class and implements those methods; its own checks are only what is particular to
 * it (such as the driver state of a staged object).
 */
export abstract class BaseObjectStore implements ObjectStore {
  abstract readonly kind: ObjectStore['kind'];

  async stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined> {
    validateKey(key);
    return this.doStat(key, options);
  }

  async read(key: string, range?: ByteRange, options?: OpOptions): Promise<Readable> {
    validateKey(key);
    if (range) checkRange(range);
    return this.doRead(key, range, options);
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<PutResult> {
    validateKey(key);
    return this.doPut(key, body, options);
  }

  async copy(source: string, destination: string, options: CopyOptions = {}): Promise<PutResult> {
    validateKey(source);
    validateKey(destination);
    return this.doCopy(source, destination, options);
  }

  async delete(key: string, options?: OpOptions): Promise<void> {
    validateKey(key);
    return this.doDelete(key, options);
  }

  async deleteMany(keys: readonly string[], options?: OpOptions): Promise<void> {
    for (const key of keys) validateKey(key);
    return this.doDeleteMany(keys, options);
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    validatePrefix(prefix);
    return this.doList(prefix, listLimit(options.limit), options);
  }

  async presignGet(key: string, expiresInSeconds: number): Promise<string | undefined> {
    validateKey(key);
    return this.doPresignGet(key, expiresInSeconds);
  }

  async beginStaged(stagingKey: string, options?: OpOptions): Promise<StagedObject> {
    validateKey(stagingKey);
    return this.doBeginStaged(stagingKey, options);
  }

  async appendStaged(
    staged: StagedObject,
    body: Body,
    options: AppendOptions = {},
  ): Promise<StagedObject> {
    validateKey(staged.stagingKey);
    return this.doAppendStaged(staged, body, options);
  }

  async readStaged(staged: StagedObject, options?: OpOptions): Promise<Readable> {
    validateKey(staged.stagingKey);
    return this.doReadStaged(staged, options);
  }

  async commitStaged(
    staged: StagedObject,
    destination: string,
    options: CopyOptions = {},
  ): Promise<PutResult> {
    validateKey(staged.stagingKey);
    validateKey(destination);
    return this.doCommitStaged(staged, destination, options);
  }

  async abortStaged(staged: StagedObject, options?: OpOptions): Promise<void> {
    validateKey(staged.stagingKey);
    return this.doAbortStaged(staged, options);
  }

  async sweepStaged(prefix: string, olderThan: Date, options?: SweepOptions): Promise<number> {
    validatePrefix(prefix);
    return this.doSweepStaged(prefix, olderThan, options);
  }

  abstract close(): Promise<void>;

  protected abstract doStat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined>;
  /** `range`, when given, has a safe non-negative offset and length. */
  protected abstract doRead(key: string, range?: ByteRange, options?: OpOptions): Promise<Readable>;
  protected abstract doPut(key: string, body: Body, options: PutOptions): Promise<PutResult>;
  protected abstract doCopy(
    source: string,
    destination: string,
    options: CopyOptions,
  ): Promise<PutResult>;
  protected abstract doDelete(key: string, options?: OpOptions): Promise<void>;
  protected abstract doDeleteMany(keys: readonly string[], options?: OpOptions): Promise<void>;
  /** `limit` is between 1 and {@link MAX_LIST_LIMIT}; `options.limit` is what the caller asked. */
  protected abstract doList(prefix: string, limit: number, options: ListOptions): Promise<ListPage>;
  protected abstract doPresignGet(
    key: string,
    expiresInSeconds: number,
  ): Promise<string | undefined>;
  protected abstract doBeginStaged(stagingKey: string, options?: OpOptions): Promise<StagedObject>;
  /** The staging key is valid; the driver checks its own state. */
  protected abstract doAppendStaged(
    staged: StagedObject,
    body: Body,
    options: AppendOptions,
  ): Promise<StagedObject>;
  protected abstract doReadStaged(staged: StagedObject, options?: OpOptions): Promise<Readable>;
  protected abstract doCommitStaged(
    staged: StagedObject,
    destination: string,
    options: CopyOptions,
  ): Promise<PutResult>;
  protected abstract doAbortStaged(staged: StagedObject, options?: OpOptions): Promise<void>;
  protected abstract doSweepStaged(
    prefix: string,
    olderThan: Date,
    options?: SweepOptions,
  ): Promise<number>;
}

/** A byte range's offset and length must be safe non-negative integers. */
function checkRange(range: ByteRange): void {
  if (!Number.isSafeInteger(range.offset) || range.offset < 0) {
    throw new RangeError(`invalid range offset ${range.offset}`);
  }
  if (range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 0)) {
    throw new RangeError(`invalid range length ${range.length}`);
  }
}

/** The page size a list call asks for, capped at {@link MAX_LIST_LIMIT}. */
function listLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_LIST_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`invalid list limit ${limit}`);
  return Math.min(limit, MAX_LIST_LIMIT);
}
