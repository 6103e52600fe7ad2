import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { BaseObjectStore } from './base.js';
import { BucketAccessError, InvalidKeyError, StorageUnavailableError } from './errors.js';
import { validatePrefix } from './keys.js';
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
import { S3Context } from './s3/context.js';
import { copy } from './s3/copy.js';
import { deleteFull, deleteObjects } from './s3/delete.js';
import { describe, httpStatus } from './s3/errors.js';
import { list } from './s3/list.js';
import { DEFAULT_TUNING, MAX_COPY_SIZE, MIN_PART_SIZE } from './s3/parts.js';
import { put } from './s3/put.js';
import { head, readObject } from './s3/read.js';
import { abortStaged, appendStaged, beginStaged, commitStaged, readStaged } from './s3/staged.js';
import { sweepStaged } from './s3/sweep.js';
import {
  AWS_CAPABILITIES,
  checkCapabilities,
  S3_FEATURES,
  type S3Capabilities,
} from './s3-capabilities.js';
import type { S3Config } from './s3-config.js';
import { probeS3Capabilities } from './s3-probe.js';

export { MAX_PARTS, MIN_PART_SIZE, partSizeFor } from './s3/parts.js';

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
  private readonly endpoint: string;
  /** Features `config.capabilities` stated, which `probe` leaves alone. */
  private readonly stated: ReadonlySet<keyof S3Capabilities>;
  private readonly region: string;
  private readonly credentials: { accessKeyId: string; secretAccessKey: string };
  private readonly s3: S3Context;

  constructor(config: S3Config) {
    super();
    if (config.prefix !== '') validatePrefix(config.prefix);
    if (config.prefix !== '' && !config.prefix.endsWith('/')) {
      throw new InvalidKeyError(config.prefix);
    }
    this.bucket = config.bucket;
    this.prefix = config.prefix;
    this.endpoint = config.endpoint;
    const tuning = { ...DEFAULT_TUNING, ...config.tuning };
    const caps = { ...AWS_CAPABILITIES, ...config.capabilities };
    this.stated = new Set(S3_FEATURES.filter((f) => typeof config.capabilities?.[f] === 'boolean'));
    checkCapabilities(caps, config.endpoint);
    this.region = config.region;
    this.credentials = { accessKeyId: config.accessKey, secretAccessKey: config.secretKey };
    if (tuning.copyPartSize < MIN_PART_SIZE || tuning.copyPartSize > MAX_COPY_SIZE / 2) {
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
      maxAttempts: tuning.maxAttempts,
      requestHandler: {
        connectionTimeout: 10_000,
        // Inactivity, not duration: a multi-GiB transfer can take as long as it needs.
        socketTimeout: 120_000,
        httpAgent: agent,
        httpsAgent: agent,
      },
    });
    this.s3 = new S3Context({
      client: this.client,
      bucket: this.bucket,
      prefix: this.prefix,
      endpoint: this.endpoint,
      tuning,
      caps,
      store: this,
    });
  }

  /** The optional S3 features this store uses (probed, stated, or AWS S3's by default). */
  get capabilities(): Readonly<S3Capabilities> {
    return { ...this.s3.caps };
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
      const next = { ...this.s3.caps, ...found };
      checkCapabilities(next, this.endpoint);
      Object.assign(this.s3.caps, next);
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
    return head(this.s3, key, options?.signal);
  }

  protected async doRead(key: string, range?: ByteRange, options?: OpOptions): Promise<Readable> {
    return readObject(this.s3, key, range, options?.signal);
  }

  protected async doPut(key: string, body: Body, options: PutOptions): Promise<PutResult> {
    return put(this.s3, key, body, options);
  }

  protected async doCopy(
    source: string,
    destination: string,
    options: CopyOptions,
  ): Promise<PutResult> {
    return copy(this.s3, source, destination, options);
  }

  protected async doDelete(key: string, options?: OpOptions): Promise<void> {
    await deleteFull(this.s3, this.s3.full(key), options?.signal);
  }

  protected async doDeleteMany(keys: readonly string[], options?: OpOptions): Promise<void> {
    await deleteObjects(this.s3, keys, options?.signal);
  }

  protected async doList(prefix: string, limit: number, options: ListOptions): Promise<ListPage> {
    return list(this.s3, prefix, limit, options);
  }

  protected async doPresignGet(key: string, expiresInSeconds: number): Promise<string | undefined> {
    return getSignedUrl(
      this.client,
      new GetObjectCommand({ Bucket: this.bucket, Key: this.s3.full(key) }),
      { expiresIn: expiresInSeconds },
    );
  }

  protected async doBeginStaged(stagingKey: string, options?: OpOptions): Promise<StagedObject> {
    return beginStaged(this.s3, stagingKey, options);
  }

  protected async doAppendStaged(
    staged: StagedObject,
    body: Body,
    options: AppendOptions,
  ): Promise<StagedObject> {
    return appendStaged(this.s3, staged, body, options);
  }

  protected async doReadStaged(staged: StagedObject, options?: OpOptions): Promise<Readable> {
    return readStaged(this.s3, staged, options);
  }

  protected async doCommitStaged(
    staged: StagedObject,
    destination: string,
    options: CopyOptions,
  ): Promise<PutResult> {
    return commitStaged(this.s3, staged, destination, options);
  }

  protected async doAbortStaged(staged: StagedObject, options?: OpOptions): Promise<void> {
    return abortStaged(this.s3, staged, options);
  }

  protected async doSweepStaged(
    prefix: string,
    olderThan: Date,
    options?: SweepOptions,
  ): Promise<number> {
    return sweepStaged(this.s3, prefix, olderThan, options);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
