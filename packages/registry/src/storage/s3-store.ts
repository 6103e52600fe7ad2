import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  type $Command,
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientResolvedConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { BaseObjectStore, MAX_LIST_LIMIT } from './base.js';
import { bodyChunks, emptyStream, exactLength, knownLength } from './body.js';
import {
  BucketAccessError,
  InvalidKeyError,
  ObjectNotFoundError,
  RangeNotSatisfiableError,
  SizeLimitError,
  SizeMismatchError,
  StorageError,
  StorageUnavailableError,
} from './errors.js';
import { compareKeys, validatePrefix } from './keys.js';
import type {
  AppendOptions,
  Body,
  ByteRange,
  CopyOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  OpOptions,
  PutOptions,
  PutResult,
  StagedObject,
  SweepOptions,
} from './object-store.js';
import { forEachLimited, mapLimited, retry } from './retry.js';
import {
  describe,
  errorName,
  httpStatus,
  isInvalidRange,
  statusOf,
  translate,
} from './s3/errors.js';
import { PartWriter } from './s3/part-writer.js';
import {
  copyRanges,
  DEFAULT_TUNING,
  MAX_COPY_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  SINGLE_PUT_MAX,
} from './s3/parts.js';
import {
  completedParts,
  multipartEtag,
  type Part,
  parseStaged,
  type S3StagedState,
  sumSizes,
  toJson,
  unquote,
} from './s3/staged-state.js';
import {
  AWS_CAPABILITIES,
  checkCapabilities,
  S3_FEATURES,
  type S3Capabilities,
  UnsupportedStorageFeatureError,
} from './s3-capabilities.js';
import type { S3Config, S3Tuning } from './s3-config.js';
import { probeS3Capabilities } from './s3-probe.js';

export { MAX_PARTS, MIN_PART_SIZE, partSizeFor } from './s3/parts.js';

const DELETE_BATCH = 1000;
const TAIL_PATTERN = /\.tail\.[0-9a-f]{16}$/;

type WriteOutcome = 'written' | 'exists';

/** The conditional writes whose `If-None-Match: *` support is probed separately. */
type ConditionalOp = 'conditionalPut' | 'conditionalComplete' | 'conditionalCopy';

/** Where the bytes of a staged object with parts are right now (see `readStaged`). */
type Location = { kind: 'open' } | { kind: 'completed'; size: number; includesTail: boolean };

/**
 * The S3 object store (AWS S3, MinIO, Ceph, R2 and other S3-compatible servers), on the AWS SDK v3.
 * Every key is stored under `config.prefix` in `config.bucket`, so several deployments can share a
 * bucket and an upstream epoch bucket is served as it is.
 *
 * - Writes: a body of up to 10 MiB goes up in one `PutObject`; a longer or unknown-length one as a
 *   multipart upload whose part sizes follow `partSizeFor`, with `partConcurrency` parts (each a
 *   buffer) in flight, so memory stays bounded whatever the size. A failed or rejected upload is
 *   aborted, so nothing partial is ever visible.
 * - Optional S3 features (`S3Capabilities`: conditional writes, `UploadPartCopy`, `ListParts`, …)
 *   are probed by `createS3ObjectStore` or stated in `config.capabilities`; where one is missing the
 *   driver takes a slower path that does not need it (see `s3-capabilities.ts`).
 * - `ifAbsent` first HEADs the key (so an existing object is never rewritten, nor its bytes sent
 *   again), then sends `If-None-Match: *` with `PutObject`, `CopyObject` and
 *   `CompleteMultipartUpload` where the server honours it there, so of several concurrent writers
 *   of one key exactly one wins (AWS S3 since 2024, MinIO, R2). Where it does not (Ceph RGW
 *   ignores it on `CopyObject` and `CompleteMultipartUpload`; some servers on everything), the
 *   driver HEADs again right before the write: an object that existed when the call began is still
 *   never replaced, but writers racing each other may each write, and each report
 *   `created: true`; the last whole object stays. That is harmless for the content-addressed keys
 *   `ifAbsent` is used for, since every writer stores the same bytes. A 501 answer to the header
 *   switches that operation to the HEAD path for the rest of the process's life.
 * - Retries: the SDK's standard retry mode (exponential backoff with jitter) retries every request
 *   on 5xx, `SlowDown`, throttling, timeouts and connection resets; parts are buffers, so their
 *   retries resend the same bytes. Conditional writes that meet a concurrent one (409) are retried
 *   here.
 * - Copies are server-side: `CopyObject` up to 5 GiB, `UploadPartCopy` ranges above that. A server
 *   without `UploadPartCopy` (it answers 501, or 200 without a `CopyPartResult`) makes the driver
 *   stream those bytes through this process instead: slower, still correct.
 * - Staged objects are multipart uploads at the staging key; see `S3StagedState`, `readStaged` and
 *   `commitStaged`.
 */
export class S3ObjectStore extends BaseObjectStore {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly prefix: string;
  /** The SDK client, for callers that need an operation this interface lacks. */
  readonly client: S3Client;
  private readonly tuning: S3Tuning;
  private readonly endpoint: string;
  private readonly caps: S3Capabilities;
  /** Features `config.capabilities` stated, which `probe` leaves alone. */
  private readonly stated: ReadonlySet<keyof S3Capabilities>;
  private readonly region: string;
  private readonly credentials: { accessKeyId: string; secretAccessKey: string };

  constructor(config: S3Config) {
    super();
    if (config.prefix !== '') validatePrefix(config.prefix);
    if (config.prefix !== '' && !config.prefix.endsWith('/')) {
      throw new InvalidKeyError(config.prefix);
    }
    this.bucket = config.bucket;
    this.prefix = config.prefix;
    this.endpoint = config.endpoint;
    this.tuning = { ...DEFAULT_TUNING, ...config.tuning };
    this.caps = { ...AWS_CAPABILITIES, ...config.capabilities };
    this.stated = new Set(S3_FEATURES.filter((f) => typeof config.capabilities?.[f] === 'boolean'));
    checkCapabilities(this.caps, config.endpoint);
    this.region = config.region;
    this.credentials = { accessKeyId: config.accessKey, secretAccessKey: config.secretKey };
    if (this.tuning.copyPartSize < MIN_PART_SIZE || this.tuning.copyPartSize > MAX_COPY_SIZE / 2) {
      throw new RangeError('copyPartSize must be between 5 MiB and 2.5 GiB');
    }
    const agent = { keepAlive: true, maxSockets: 64 };
    this.client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      credentials: { accessKeyId: config.accessKey, secretAccessKey: config.secretKey },
      // Path-style URLs work with every S3-compatible server and with any bucket name.
      forcePathStyle: true,
      // Only where an operation requires one: many S3-compatible servers reject the newer
      // flexible checksums, and a checksum of a streamed body would need a second pass.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      retryMode: 'standard',
      maxAttempts: this.tuning.maxAttempts,
      requestHandler: {
        connectionTimeout: 10_000,
        // Inactivity, not duration: a multi-GiB transfer can take as long as it needs.
        socketTimeout: 120_000,
        httpAgent: agent,
        httpsAgent: agent,
      },
    });
  }

  /** The optional S3 features this store uses (probed, stated, or AWS S3's by default). */
  get capabilities(): Readonly<S3Capabilities> {
    return { ...this.caps };
  }

  /**
   * Probes the server for the optional features `config.capabilities` did not state (about twenty
   * small requests under `_uploads/`), adopts the answers and returns them all. Throws
   * `UnsupportedStorageFeatureError` naming what is missing when the server cannot serve Epoch.
   */
  async probe(): Promise<Readonly<S3Capabilities>> {
    const features = S3_FEATURES.filter((f) => !this.stated.has(f));
    if (features.length === 0) return this.capabilities;
    // One attempt per request: the probe retries what is transient itself, and a server that
    // answers an unknown request with 500 must not cost the SDK's backoff five times over.
    const client = new S3Client({
      endpoint: this.endpoint,
      region: this.region,
      credentials: this.credentials,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 30_000 },
    });
    try {
      const found = await probeS3Capabilities(
        { client, bucket: this.bucket, prefix: this.prefix, endpoint: this.endpoint },
        features,
      );
      const next = { ...this.caps, ...found };
      checkCapabilities(next, this.endpoint);
      Object.assign(this.caps, next);
      return this.capabilities;
    } finally {
      client.destroy();
    }
  }

  /** Checks that the bucket exists and these credentials may use it. */
  async checkBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const status = httpStatus(err);
      const where = `bucket ${this.bucket} at ${this.endpoint}`;
      if (status === 404) {
        throw new BucketAccessError(this.bucket, this.endpoint, 'not-found', { cause: err });
      }
      if (status === 403 || status === 401) {
        throw new BucketAccessError(this.bucket, this.endpoint, 'denied', { cause: err });
      }
      throw new StorageUnavailableError(`cannot reach ${where}: ${describe(err)}`, { cause: err });
    }
  }

  protected async doStat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined> {
    return this.head(key, options?.signal);
  }

  protected async doRead(key: string, range?: ByteRange, options?: OpOptions): Promise<Readable> {
    const signal = options?.signal;
    if (range?.length === 0) {
      const info = await this.head(key, signal);
      if (!info) throw new ObjectNotFoundError(key);
      if (range.offset > info.size) throw new RangeNotSatisfiableError(key, info.size);
      return emptyStream();
    }
    const header =
      !range || (range.offset === 0 && range.length === undefined)
        ? undefined
        : `bytes=${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}`;
    try {
      return await this.getStream(key, header, undefined, signal);
    } catch (err) {
      if (!range || !isInvalidRange(err)) throw err;
      // 416 for any offset at or past the end: an offset equal to the size is a valid, empty read.
      const info = await this.head(key, signal);
      if (!info) throw new ObjectNotFoundError(key);
      if (range.offset === info.size) return emptyStream();
      throw new RangeNotSatisfiableError(key, info.size);
    }
  }

  protected async doPut(key: string, body: Body, options: PutOptions): Promise<PutResult> {
    const known = knownLength(body);
    if (options.size !== undefined && known !== undefined && known !== options.size) {
      throw new SizeMismatchError(options.size, known);
    }
    const ifAbsent = options.ifAbsent === true;
    if (ifAbsent) {
      // Checked first so that re-pushing an existing multi-GiB blob uploads nothing.
      const existing = await this.head(key, options.signal);
      if (existing) return { created: false, size: existing.size };
    }
    if (known !== undefined && known <= SINGLE_PUT_MAX) {
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : (body as Uint8Array);
      return this.putSmall(key, bytes, ifAbsent, options.contentType, options.signal);
    }
    return this.putStream(key, body, options);
  }

  protected async doCopy(
    source: string,
    destination: string,
    options: CopyOptions,
  ): Promise<PutResult> {
    const signal = options.signal;
    const ifAbsent = options.ifAbsent === true;
    if (ifAbsent) {
      const existing = await this.head(destination, signal);
      if (existing) return { created: false, size: existing.size };
    }
    const info = await this.head(source, signal);
    if (!info) throw new ObjectNotFoundError(source);
    const outcome = await this.copyObject(source, info.size, destination, ifAbsent, signal);
    return this.result(outcome, destination, info.size, signal);
  }

  protected async doDelete(key: string, options?: OpOptions): Promise<void> {
    await this.deleteFull(this.full(key), options?.signal);
  }

  protected async doDeleteMany(keys: readonly string[], options?: OpOptions): Promise<void> {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      batches.push(keys.slice(i, i + DELETE_BATCH).map((k) => this.full(k)));
    }
    await forEachLimited(batches, this.tuning.deleteConcurrency, async (batch) => {
      const out = await this.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
        batch[0] ?? '',
        options?.signal,
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

  protected async doList(prefix: string, limit: number, options: ListOptions): Promise<ListPage> {
    if (!this.caps.byteOrderListing) return this.listUnordered(prefix, limit, options);
    const { cursor, delimiter, signal } = options;
    type Entry = { key: string; info?: ObjectInfo };
    const entries: Entry[] = [];
    let token: string | undefined;
    let truncated = false;
    do {
      // One more when resuming after a rolled-up prefix: S3 may return that prefix again.
      const want = limit - entries.length + (cursor !== undefined && token === undefined ? 1 : 0);
      const out = await this.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          Delimiter: delimiter,
          MaxKeys: Math.min(want, MAX_LIST_LIMIT),
          ContinuationToken: token,
          StartAfter: token === undefined && cursor !== undefined ? this.full(cursor) : undefined,
        }),
        prefix,
        signal,
      );
      const batch: Entry[] = [];
      for (const o of out.Contents ?? []) {
        const key = this.strip(o.Key);
        if (key === undefined) continue;
        batch.push({
          key,
          info: { key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) },
        });
      }
      for (const p of out.CommonPrefixes ?? []) {
        const key = this.strip(p.Prefix);
        if (key !== undefined) batch.push({ key });
      }
      batch.sort((a, b) => compareKeys(a.key, b.key));
      for (const entry of batch) {
        // Past the cursor, and past what this page already has: a server may hand a rolled-up
        // prefix out again when resuming right after it.
        const after = entries.at(-1)?.key ?? cursor;
        if (after === undefined || compareKeys(entry.key, after) > 0) entries.push(entry);
      }
      truncated = out.IsTruncated === true;
      token = out.NextContinuationToken;
    } while (truncated && token !== undefined && entries.length < limit);

    const page = entries.slice(0, limit);
    const result: ListPage = {
      objects: page.flatMap((e) => (e.info ? [e.info] : [])),
      prefixes: page.flatMap((e) => (e.info ? [] : [e.key])),
    };
    const last = page.at(-1);
    if (last && (entries.length > limit || truncated)) result.cursor = last.key;
    return result;
  }

  /**
   * `list` on a server whose listings are not in byte order (and whose `StartAfter` and
   * continuation tokens therefore skip or repeat keys across pages): everything under the prefix
   * in one S3 page, sorted and paged here. A prefix with more entries than one S3 page holds
   * cannot be listed correctly on such a server, and says so.
   */
  private async listUnordered(
    prefix: string,
    limit: number,
    options: ListOptions,
  ): Promise<ListPage> {
    const { cursor, delimiter, signal } = options;
    const out = await this.send(
      new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: this.full(prefix),
        Delimiter: delimiter,
        MaxKeys: MAX_LIST_LIMIT,
      }),
      prefix,
      signal,
    );
    if (out.IsTruncated === true) {
      throw new UnsupportedStorageFeatureError(
        'byteOrderListing',
        `cannot list more than ${MAX_LIST_LIMIT} entries under ${JSON.stringify(prefix)}: the S3 server at ${this.endpoint} does not list keys in byte order, so its pages cannot be continued correctly`,
      );
    }
    type Entry = { key: string; info?: ObjectInfo };
    const entries: Entry[] = [];
    for (const o of out.Contents ?? []) {
      const key = this.strip(o.Key);
      if (key === undefined) continue;
      entries.push({
        key,
        info: { key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) },
      });
    }
    for (const p of out.CommonPrefixes ?? []) {
      const key = this.strip(p.Prefix);
      if (key !== undefined) entries.push({ key });
    }
    entries.sort((a, b) => compareKeys(a.key, b.key));
    const after =
      cursor === undefined ? entries : entries.filter((e) => compareKeys(e.key, cursor) > 0);
    const page = after.slice(0, limit);
    const result: ListPage = {
      objects: page.flatMap((e) => (e.info ? [e.info] : [])),
      prefixes: page.flatMap((e) => (e.info ? [] : [e.key])),
    };
    const last = page.at(-1);
    if (last && after.length > limit) result.cursor = last.key;
    return result;
  }

  protected async doPresignGet(key: string, expiresInSeconds: number): Promise<string | undefined> {
    return getSignedUrl(
      this.client,
      new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
      { expiresIn: expiresInSeconds },
    );
  }

  protected async doBeginStaged(stagingKey: string, options?: OpOptions): Promise<StagedObject> {
    const uploadId = await this.createUpload(stagingKey, undefined, options?.signal);
    const state: S3StagedState = { driver: 's3', uploadId, parts: [], tailKey: null, tailSize: 0 };
    return { stagingKey, size: 0, driverState: toJson(state) };
  }

  /**
   * Appends by uploading parts: the old tail's bytes, then the body, cut by `partSizeFor`. What is
   * left at the end goes up as one more part when it reaches 5 MiB, else as the new tail object.
   * On failure the parts uploaded so far are simply not recorded: the old state stays valid (a
   * retry reuses their part numbers, and S3 keeps the last upload of a part number).
   */
  protected async doAppendStaged(
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
    const base = await this.reopen(st, key, staged.size, signal);
    const writer = this.partWriter(key, base.uploadId, base.parts.length + 1, signal);
    let newTail: string | null = null;
    let appended = 0;
    try {
      if (base.prelude) for await (const chunk of base.prelude) await writer.write(chunk);
      if (base.needsTail && st.tailKey !== null && st.tailSize > 0) {
        await writer.write(await this.readSmall(st.tailKey, st.tailSize, signal));
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
        await this.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.full(newTail),
            Body: rest,
            ContentLength: rest.byteLength,
          }),
          newTail,
          signal,
        );
      }
    } catch (err) {
      await writer.settle();
      if (base.createdUpload !== undefined) await this.abortQuietly(key, base.createdUpload);
      throw this.fail(err, key);
    }
    // Superseded: the old tail (now inside a part or the new tail) and, after a reopen, the
    // completed object whose bytes were copied into the new upload. Best effort: a leftover tail
    // is swept, a leftover object is the registry's staging key, which it deletes.
    if (st.tailKey !== null) await this.deleteQuietly(st.tailKey);
    if (base.createdUpload !== undefined) await this.deleteQuietly(key);
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
  protected async doReadStaged(staged: StagedObject, options?: OpOptions): Promise<Readable> {
    const st = parseStaged(staged);
    const signal = options?.signal;
    const key = staged.stagingKey;
    let location = await this.locate(st, key, staged.size, signal);
    if (st.parts.length === 0) {
      if (st.tailKey === null || st.tailSize === 0) return emptyStream();
      return this.getStream(st.tailKey, undefined, st.tailSize, signal);
    }
    if (location.kind === 'open') {
      await this.completeParts(key, st.uploadId, st.parts, signal);
      location = { kind: 'completed', size: sumSizes(st.parts), includesTail: false };
    }
    const withTail = !location.includesTail && st.tailKey !== null && st.tailSize > 0;
    const first = await this.getStream(key, undefined, location.size, signal);
    const tailKey = st.tailKey;
    const tailSize = st.tailSize;
    const store = this;
    async function* bytes(): AsyncGenerator<Buffer> {
      yield* first;
      if (withTail && tailKey !== null) yield* await store.getStream(tailKey, undefined, tailSize);
    }
    return exactLength(Readable.from(bytes(), { objectMode: false }), staged.size, key);
  }

  /**
   * Completes the multipart upload at the staging key (the tail becomes the last part, copied
   * server-side), then copies the result server-side to `destination` and deletes the staging
   * data. The parts' keys are fixed when the upload starts, before the digest and so the
   * destination are known, hence the copy.
   */
  protected async doCommitStaged(
    staged: StagedObject,
    destination: string,
    options: CopyOptions,
  ): Promise<PutResult> {
    const st = parseStaged(staged);
    const { signal } = options;
    const ifAbsent = options.ifAbsent === true;
    const key = staged.stagingKey;
    if (ifAbsent) {
      const existing = await this.head(destination, signal);
      if (existing) {
        await this.abortStaged(staged, options);
        return { created: false, size: existing.size };
      }
    }
    let outcome: WriteOutcome;
    if (st.parts.length === 0) {
      // Under 5 MiB in all: the tail is the whole object. The upload must still be open, so that
      // an aborted session cannot be committed.
      await this.locate(st, key, staged.size, signal);
      const empty = st.tailKey === null || st.tailSize === 0;
      const op = empty ? 'conditionalPut' : 'conditionalCopy';
      outcome = await this.conditionalWrite(destination, ifAbsent, op, signal, (ifNoneMatch) =>
        empty || st.tailKey === null
          ? this.send(
              new PutObjectCommand({
                Bucket: this.bucket,
                Key: this.full(destination),
                Body: Buffer.alloc(0),
                ContentLength: 0,
                ContentType: 'application/octet-stream',
                IfNoneMatch: ifNoneMatch,
              }),
              destination,
              signal,
            )
          : this.send(
              new CopyObjectCommand({
                Bucket: this.bucket,
                Key: this.full(destination),
                CopySource: this.copySource(st.tailKey),
                ContentType: 'application/octet-stream',
                MetadataDirective: 'REPLACE',
                IfNoneMatch: ifNoneMatch,
              }),
              st.tailKey,
              signal,
            ),
      );
      await this.abortQuietly(key, st.uploadId);
    } else {
      await this.completeStaged(st, key, staged.size, signal);
      outcome = await this.copyObject(key, staged.size, destination, ifAbsent, signal);
    }
    await this.deleteQuietly(key);
    if (st.tailKey !== null) await this.deleteQuietly(st.tailKey);
    return this.result(outcome, destination, staged.size, signal);
  }

  protected async doAbortStaged(staged: StagedObject, options?: OpOptions): Promise<void> {
    const st = parseStaged(staged);
    const key = staged.stagingKey;
    try {
      await this.send(
        new AbortMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          UploadId: st.uploadId,
        }),
        key,
        options?.signal,
      );
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
    }
    const leftovers = [key, ...(st.tailKey === null ? [] : [st.tailKey])];
    await this.deleteMany(leftovers, options);
  }

  /**
   * Aborts the multipart uploads under `prefix` initiated before `olderThan` and deletes the tail
   * objects last written before it. `olderThan` must lie further back than the start of the oldest
   * upload session still in use: S3 dates an upload from its start, not its last part. On a server
   * without `ListMultipartUploads` only the tails are found; its abandoned uploads are left to the
   * bucket's lifecycle rule.
   */
  protected async doSweepStaged(
    prefix: string,
    olderThan: Date,
    options?: SweepOptions,
  ): Promise<number> {
    const signal = options?.signal;
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    while (this.caps.listMultipartUploads) {
      const out = await this.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
        prefix,
        signal,
      );
      for (const upload of out.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated) continue;
        if (upload.Initiated >= olderThan) continue;
        if (await options?.keep?.(this.relative(upload.Key))) continue;
        try {
          await this.send(
            new AbortMultipartUploadCommand({
              Bucket: this.bucket,
              Key: upload.Key,
              UploadId: upload.UploadId,
            }),
            upload.Key,
            signal,
          );
          removed++;
        } catch (err) {
          if (!(err instanceof ObjectNotFoundError)) throw err;
        }
      }
      if (out.IsTruncated !== true) break;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
      if (keyMarker === undefined) break;
    }
    // Every object under the prefix once, in whatever order the server lists them: a sweep needs
    // no order, so it also works where `list` is limited to one page (no byte-order listing).
    let token: string | undefined;
    do {
      const out = await this.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          ContinuationToken: token,
        }),
        prefix,
        signal,
      );
      const stale: string[] = [];
      for (const o of out.Contents ?? []) {
        const key = this.strip(o.Key);
        if (key === undefined || !TAIL_PATTERN.test(key)) continue;
        if ((o.LastModified ?? new Date(0)) >= olderThan) continue;
        if (await options?.keep?.(key.replace(TAIL_PATTERN, ''))) continue;
        stale.push(key);
      }
      if (stale.length > 0) await this.deleteMany(stale, options);
      removed += stale.length;
      token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
    return removed;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  // ——— internals ———

  private full(key: string): string {
    return this.prefix + key;
  }

  private relative(fullKey: string): string {
    return fullKey.startsWith(this.prefix) ? fullKey.slice(this.prefix.length) : fullKey;
  }

  private strip(fullKey: string | undefined): string | undefined {
    if (fullKey === undefined || !fullKey.startsWith(this.prefix)) return undefined;
    return fullKey.slice(this.prefix.length);
  }

  private copySource(key: string): string {
    const path = this.full(key).split('/').map(encodeURIComponent).join('/');
    return `${this.bucket}/${path}`;
  }

  /** Sends a command, translating failures into storage errors about `key`. */
  private async send<I extends ServiceInputTypes, O extends ServiceOutputTypes>(
    command: $Command<I, O, S3ClientResolvedConfig, ServiceInputTypes, ServiceOutputTypes>,
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<O> {
    signal?.throwIfAborted();
    try {
      return await this.client.send(command, { abortSignal: signal });
    } catch (err) {
      throw this.fail(err, key);
    }
  }

  /**
   * Completes multipart upload `uploadId` into `key` with `parts`. When the server completed it
   * but its answer was lost (a reset or cut response), the SDK's retry meets `NoSuchUpload`: the
   * upload is done, not gone. The object at `key` then carries the multipart ETag of exactly
   * these parts and their total size, and that counts as completed; anything else is an upload
   * that really is missing.
   */
  private async completeUpload(
    key: string,
    uploadId: string,
    parts: Part[],
    signal: AbortSignal | undefined,
    ifNoneMatch?: '*',
  ): Promise<void> {
    try {
      await this.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: completedParts(parts) },
          ...(ifNoneMatch ? { IfNoneMatch: ifNoneMatch } : {}),
        }),
        key,
        signal,
      );
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError) || errorName(err.cause) !== 'NoSuchUpload')
        throw err;
      // A HEAD that fails otherwise (S3 unavailable) says so; only "no object" means not done.
      const out = await this.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
        key,
        signal,
      ).catch((headErr: unknown) => {
        if (headErr instanceof ObjectNotFoundError) return undefined;
        throw headErr;
      });
      const completed =
        out?.ContentLength === sumSizes(parts) && unquote(out.ETag) === multipartEtag(parts);
      if (!completed) throw err;
    }
  }

  private fail(err: unknown, key: string): Error {
    return translate(err, key, this.bucket);
  }

  private async head(
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
        key,
        signal,
      );
      return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * GETs `key` (or `range` of it) as a stream that errors unless exactly the announced bytes
   * arrive. `expected` (when known) guards against an object replaced in the meantime.
   */
  private async getStream(
    key: string,
    range: string | undefined,
    expected: number | undefined,
    signal?: AbortSignal,
  ): Promise<Readable> {
    const out = await this.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key), Range: range }),
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
  private async readSmall(key: string, size: number, signal?: AbortSignal): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.getStream(key, undefined, size, signal)) {
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private async putSmall(
    key: string,
    bytes: Uint8Array,
    ifAbsent: boolean,
    contentType: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<PutResult> {
    const outcome = await this.conditionalWrite(
      key,
      ifAbsent,
      'conditionalPut',
      signal,
      (ifNoneMatch) =>
        this.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.full(key),
            Body: bytes,
            ContentLength: bytes.byteLength,
            ContentType: contentType ?? 'application/octet-stream',
            IfNoneMatch: ifNoneMatch,
          }),
          key,
          signal,
        ),
    );
    return this.result(outcome, key, bytes.byteLength, signal);
  }

  private async putStream(key: string, body: Body, options: PutOptions): Promise<PutResult> {
    const { signal, size: expected } = options;
    const ifAbsent = options.ifAbsent === true;
    // The upload starts with the first full part: a body that ends sooner is one PutObject.
    let upload: Promise<string> | undefined;
    const uploadId = (): Promise<string> => {
      upload ??= this.createUpload(key, options.contentType, signal);
      return upload;
    };
    const writer = new PartWriter(
      async (partNumber, bytes) =>
        this.uploadPart(key, await uploadId(), partNumber, bytes, signal),
      1,
      this.tuning.partConcurrency,
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
      if (expected !== undefined && total !== expected)
        throw new SizeMismatchError(expected, total);
      const rest = await writer.finish();
      if (upload === undefined) {
        return await this.putSmall(key, rest, ifAbsent, options.contentType, signal);
      }
      if (rest.byteLength > 0) {
        await writer.dispatch(rest);
        await writer.finish();
      }
      const id = await upload;
      const outcome = await this.conditionalWrite(
        key,
        ifAbsent,
        'conditionalComplete',
        signal,
        (ifNoneMatch) => this.completeUpload(key, id, writer.parts, signal, ifNoneMatch),
      );
      if (outcome === 'exists') await this.abortQuietly(key, id);
      return await this.result(outcome, key, total, signal);
    } catch (err) {
      await writer.settle();
      const id = upload === undefined ? undefined : await upload.catch(() => undefined);
      if (id !== undefined) await this.abortQuietly(key, id);
      throw this.fail(err, key);
    }
  }

  /**
   * Runs a write with `ifAbsent` semantics: `If-None-Match: *` where the server honours it on
   * this operation (412 means another writer got there first; 409 means one is racing us, so try
   * again), else HEAD-then-write (see the class comment).
   */
  private async conditionalWrite(
    key: string,
    ifAbsent: boolean,
    op: ConditionalOp,
    signal: AbortSignal | undefined,
    write: (ifNoneMatch: '*' | undefined) => Promise<unknown>,
  ): Promise<WriteOutcome> {
    if (!ifAbsent) {
      await write(undefined);
      return 'written';
    }
    if (!this.caps[op]) {
      if (await this.head(key, signal)) return 'exists';
      await write(undefined);
      return 'written';
    }
    try {
      await retry(() => write('*'), {
        attempts: 6,
        baseDelayMs: 50,
        maxDelayMs: 2000,
        retryable: (err) => statusOf(err) === 409,
        signal,
      });
      return 'written';
    } catch (err) {
      if (statusOf(err) === 412) return 'exists';
      if (statusOf(err) === 501) {
        this.caps[op] = false;
        return this.conditionalWrite(key, ifAbsent, op, signal, write);
      }
      throw err;
    }
  }

  private async result(
    outcome: WriteOutcome,
    key: string,
    size: number,
    signal: AbortSignal | undefined,
  ): Promise<PutResult> {
    if (outcome === 'written') return { created: true, size };
    const existing = await this.head(key, signal);
    return { created: false, size: existing?.size ?? size };
  }

  /** Copies server-side: one `CopyObject` when small enough, else a multipart copy. */
  private async copyObject(
    source: string,
    size: number,
    destination: string,
    ifAbsent: boolean,
    signal: AbortSignal | undefined,
  ): Promise<WriteOutcome> {
    if (size <= this.tuning.maxCopyObjectSize) {
      return this.conditionalWrite(
        destination,
        ifAbsent,
        'conditionalCopy',
        signal,
        (ifNoneMatch) =>
          this.send(
            new CopyObjectCommand({
              Bucket: this.bucket,
              Key: this.full(destination),
              CopySource: this.copySource(source),
              // The copy keeps the source's content type and metadata.
              MetadataDirective: 'COPY',
              IfNoneMatch: ifNoneMatch,
            }),
            source,
            signal,
          ),
      );
    }
    const uploadId = await this.createUpload(destination, undefined, signal);
    try {
      const parts = await this.copyIntoParts(source, size, destination, uploadId, 1, signal);
      if (parts === undefined) {
        // No UploadPartCopy on this server: stream the bytes through instead.
        await this.abortQuietly(destination, uploadId);
        const result = await this.put(destination, await this.getStream(source, undefined, size), {
          ifAbsent,
          size,
          signal,
        });
        return result.created ? 'written' : 'exists';
      }
      const outcome = await this.conditionalWrite(
        destination,
        ifAbsent,
        'conditionalComplete',
        signal,
        (ifNoneMatch) => this.completeUpload(destination, uploadId, parts, signal, ifNoneMatch),
      );
      if (outcome === 'exists') await this.abortQuietly(destination, uploadId);
      return outcome;
    } catch (err) {
      await this.abortQuietly(destination, uploadId);
      throw err;
    }
  }

  /**
   * Copies all of `source` into upload `uploadId` as parts `firstPart…` with `UploadPartCopy`,
   * in ranges of `copyPartSize` (every one at least 5 MiB, as more parts may follow). Returns
   * `undefined` when the server turns out not to support `UploadPartCopy`.
   */
  private async copyIntoParts(
    source: string,
    size: number,
    destination: string,
    uploadId: string,
    firstPart: number,
    signal: AbortSignal | undefined,
  ): Promise<Part[] | undefined> {
    if (!this.caps.uploadPartCopy) return undefined;
    const ranges = copyRanges(size, this.tuning.copyPartSize, MAX_PARTS - firstPart + 1);
    const [head, ...rest] = ranges;
    if (!head) return [];
    // The first range alone tells whether the server can do this at all.
    const first = await this.copyPart(source, head, destination, uploadId, firstPart, signal);
    if (first === undefined) return undefined;
    const others = await mapLimited(rest, this.tuning.partConcurrency, async (range, i) => {
      const part = await this.copyPart(
        source,
        range,
        destination,
        uploadId,
        firstPart + 1 + i,
        signal,
      );
      if (part === undefined) throw new StorageError('UploadPartCopy stopped working mid-copy');
      return part;
    });
    return [first, ...others];
  }

  private async copyPart(
    source: string,
    range: { start: number; end: number },
    destination: string,
    uploadId: string,
    partNumber: number,
    signal: AbortSignal | undefined,
  ): Promise<Part | undefined> {
    if (!this.caps.uploadPartCopy) return undefined;
    let etag: string | undefined;
    try {
      const out = await this.send(
        new UploadPartCopyCommand({
          Bucket: this.bucket,
          Key: this.full(destination),
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: this.copySource(source),
          CopySourceRange: `bytes=${range.start}-${range.end}`,
        }),
        source,
        signal,
      );
      etag = out.CopyPartResult?.ETag;
    } catch (err) {
      if (statusOf(err) !== 501) throw err;
    }
    if (etag === undefined) {
      // A server without UploadPartCopy treats the request as an empty UploadPart (no XML
      // result) or answers 501. The part number is overwritten by whatever comes next.
      this.caps.uploadPartCopy = false;
      return undefined;
    }
    return { partNumber, etag, size: range.end - range.start + 1 };
  }

  private async createUpload(
    key: string,
    contentType: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const out = await this.send(
      new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.full(key),
        ContentType: contentType ?? 'application/octet-stream',
      }),
      key,
      signal,
    );
    if (!out.UploadId) throw new StorageError(`CreateMultipartUpload for ${key} returned no id`);
    return out.UploadId;
  }

  private async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    bytes: Buffer,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const out = await this.send(
      new UploadPartCommand({
        Bucket: this.bucket,
        Key: this.full(key),
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

  private partWriter(
    key: string,
    uploadId: string,
    firstPart: number,
    signal: AbortSignal | undefined,
  ): PartWriter {
    return new PartWriter(
      (partNumber, bytes) => this.uploadPart(key, uploadId, partNumber, bytes, signal),
      firstPart,
      this.tuning.partConcurrency,
    );
  }

  /**
   * Whether the staged bytes are still in the open multipart upload, or were completed into the
   * object at the staging key by `readStaged` (bytes of the parts only) or by a commit that failed
   * after completing (parts and tail).
   */
  private async locate(
    st: S3StagedState,
    key: string,
    size: number,
    signal: AbortSignal | undefined,
  ): Promise<Location> {
    if (await this.isOpen(st, key, signal)) return { kind: 'open' };
    // Without parts there is nothing `readStaged` would have completed: the upload was aborted.
    if (st.parts.length === 0) throw new ObjectNotFoundError(key);
    const info = await this.head(key, signal);
    const partsSize = sumSizes(st.parts);
    if (info?.size === partsSize)
      return { kind: 'completed', size: partsSize, includesTail: false };
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
  private async isOpen(
    st: S3StagedState,
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const next = st.parts.length + 1;
    try {
      if (this.caps.listParts) {
        await this.send(
          new ListPartsCommand({
            Bucket: this.bucket,
            Key: this.full(key),
            UploadId: st.uploadId,
            MaxParts: 1,
          }),
          key,
          signal,
        );
      } else if (next <= MAX_PARTS) {
        await this.uploadPart(key, st.uploadId, next, Buffer.alloc(1), signal);
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
  private async reopen(
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
    const location = known ?? (await this.locate(st, key, size, signal));
    if (location.kind === 'open')
      return { uploadId: st.uploadId, parts: st.parts, needsTail: true };
    const uploadId = await this.createUpload(key, undefined, signal);
    try {
      const needsTail = !location.includesTail;
      const parts = await this.copyIntoParts(key, location.size, key, uploadId, 1, signal);
      if (parts !== undefined) return { uploadId, parts, needsTail, createdUpload: uploadId };
      const prelude = await this.getStream(key, undefined, location.size, signal);
      return { uploadId, parts: [], needsTail, createdUpload: uploadId, prelude };
    } catch (err) {
      await this.abortQuietly(key, uploadId);
      throw err;
    }
  }

  /** Completes a staged object with parts into the object at its staging key (tail included). */
  private async completeStaged(
    st: S3StagedState,
    key: string,
    size: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    let location = await this.locate(st, key, size, signal);
    // A commit that failed after completing (while copying to the destination, say) left the
    // final object in place already.
    if (location.kind === 'completed' && location.size === size) return;
    if (
      location.kind === 'open' &&
      !this.caps.completeSubset &&
      st.parts.length > 0 &&
      (await this.partsAfter(key, st.uploadId, st.parts.length, signal)).length > 0
    ) {
      // Parts of a failed append follow the recorded ones, and this server wants them all in the
      // completion: the small tail must not become a part in the middle. Completing the recorded
      // parts first (see `completeParts`) turns this into the read-back case below.
      await this.completeParts(key, st.uploadId, st.parts, signal);
      location = { kind: 'completed', size: sumSizes(st.parts), includesTail: false };
    }
    const base = await this.reopen(st, key, size, signal, location);
    const writer = this.partWriter(key, base.uploadId, base.parts.length + 1, signal);
    try {
      if (base.prelude) for await (const chunk of base.prelude) await writer.write(chunk);
      const parts = [...base.parts];
      if (base.needsTail && st.tailKey !== null && st.tailSize > 0) {
        // The tail is the last part, which may be small; copied server-side where possible.
        const copied = base.prelude
          ? undefined
          : await this.copyPart(
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
          await writer.write(await this.readSmall(st.tailKey, st.tailSize, signal));
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
        await this.completeParts(key, base.uploadId, all, signal);
      } else {
        await this.completeUpload(key, base.uploadId, all, signal);
      }
    } catch (err) {
      await writer.settle();
      if (base.createdUpload !== undefined) await this.abortQuietly(key, base.createdUpload);
      throw this.fail(err, key);
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
  private async completeParts(
    key: string,
    uploadId: string,
    parts: Part[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const complete = (id: string, list: Part[]) => this.completeUpload(key, id, list, signal);
    const last = parts.at(-1)?.partNumber ?? 0;
    const strays = this.caps.completeSubset
      ? []
      : await this.partsAfter(key, uploadId, last, signal);
    if (strays.length === 0) {
      await complete(uploadId, parts);
      return;
    }
    await complete(uploadId, [...parts, ...strays]);
    const wanted = sumSizes(parts);
    const id = await this.createUpload(key, undefined, signal);
    try {
      let copied = await this.copyIntoParts(key, wanted, key, id, 1, signal);
      if (copied === undefined) {
        const writer = this.partWriter(key, id, 1, signal);
        try {
          for await (const chunk of await this.getStream(
            key,
            `bytes=0-${wanted - 1}`,
            wanted,
            signal,
          ))
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
      await this.abortQuietly(key, id);
      throw err;
    }
  }

  /** The parts of an open upload numbered after `after`, as the server lists them. */
  private async partsAfter(
    key: string,
    uploadId: string,
    after: number,
    signal: AbortSignal | undefined,
  ): Promise<Part[]> {
    const found: Part[] = [];
    let marker: string | undefined = after > 0 ? String(after) : undefined;
    for (;;) {
      const out = await this.send(
        new ListPartsCommand({
          Bucket: this.bucket,
          Key: this.full(key),
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

  private async deleteFull(fullKey: string, signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.send(
        new DeleteObjectCommand({ Bucket: this.bucket, Key: fullKey }),
        fullKey,
        signal,
      );
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
    }
  }

  /** Cleanup after the operation succeeded: a failure here must not fail it (sweeps catch up). */
  private async deleteQuietly(key: string): Promise<void> {
    await this.deleteFull(this.full(key), undefined).catch(() => {});
  }

  private async abortQuietly(key: string, uploadId: string): Promise<void> {
    await this.client
      .send(
        new AbortMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          UploadId: uploadId,
        }),
      )
      .catch(() => {});
  }
}
