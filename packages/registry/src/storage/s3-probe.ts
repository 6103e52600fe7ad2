import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { StorageError } from './errors.js';
import {
  S3_FEATURES,
  type S3Capabilities,
  type S3Feature,
  UnsupportedStorageFeatureError,
} from './s3-capabilities.js';

interface ProbeTarget {
  client: S3Client;
  bucket: string;
  /** Key prefix of the store (`''` or ending in `/`). */
  prefix: string;
  endpoint: string;
}

/**
 * Order-probe keys: byte order differs from locale order (`_` before `-` there), from
 * case-insensitive order (`B`/`a`) and from UTF-16 order (U+FF71 is above the surrogates, which
 * encode 🙂, in UTF-16, below them in UTF-8).
 */
const ORDER_KEYS = ['-', 'B', '_', 'a', '~', 'é', '\uff71', '🙂'];

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const meta = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata;
  return typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Transient failures are retried a few times; any other answer is the server's real one. */
function transient(err: unknown): boolean {
  const status = statusOf(err);
  return status === undefined || status === 503 || (status >= 500 && status !== 501);
}

type Outcome<T> =
  | { ok: true; value: T }
  | { ok: false; status: number | undefined; error: unknown };

async function attempt<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  for (let i = 1; ; i++) {
    try {
      return { ok: true, value: await fn() };
    } catch (err) {
      if (i >= 3 || !transient(err)) return { ok: false, status: statusOf(err), error: err };
      await new Promise((r) => setTimeout(r, 100 * i));
    }
  }
}

/**
 * Finds out which optional features the server behind `target` has, with about twenty small
 * requests on objects and uploads under `<prefix>_uploads/probe-<random>/` (removed afterwards;
 * a crash leaves them to the registry's upload sweep). Throws `UnsupportedStorageFeatureError`
 * when the server cannot do multipart uploads at all, and `StorageError` when the bucket cannot
 * be written.
 */
export async function probeS3Capabilities(
  target: ProbeTarget,
  features: readonly S3Feature[] = S3_FEATURES,
): Promise<Partial<S3Capabilities>> {
  const probe = new Probe(target, features);
  try {
    await probe.writeOrderKeys();
    await probe.listing();
    await probe.conditionalWrites();
    await probe.multipart();
    return probe.caps;
  } finally {
    await cleanup(target.client, target.bucket, probe.base, probe.uploads);
  }
}

/** One probe run: its keys, its answers so far and the multipart uploads it left open. */
class Probe {
  readonly caps: Partial<S3Capabilities> = {};
  readonly uploads: { key: string; id: string }[] = [];
  readonly base: string;
  private readonly want: Set<S3Feature>;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly where: string;
  /** The order-probe keys, in the order they were written. */
  private readonly order: string[];

  constructor(target: ProbeTarget, features: readonly S3Feature[]) {
    this.client = target.client;
    this.bucket = target.bucket;
    this.where = `bucket ${target.bucket} at ${target.endpoint}`;
    this.want = new Set(features);
    this.base = `${target.prefix}_uploads/probe-${randomBytes(6).toString('hex')}/`;
    this.order = ORDER_KEYS.map((k) => `${this.base}o/${k}`);
  }

  /** A key that exists once `writeOrderKeys` is done. */
  private get existing(): string {
    return this.order[3] ?? '';
  }

  private copySource(key: string): string {
    return `${this.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  private put(key: string, body: string, ifNoneMatch?: '*') {
    return attempt(() =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: Buffer.from(body),
          ContentLength: Buffer.byteLength(body),
          IfNoneMatch: ifNoneMatch,
        }),
      ),
    );
  }

  private noMultipart(step: string, detail: string): UnsupportedStorageFeatureError {
    return new UnsupportedStorageFeatureError(
      'multipart',
      `the S3 server at ${this.where} does not take multipart uploads (${step}: ${detail}); Epoch needs them`,
    );
  }

  private async createUpload(key: string): Promise<string> {
    const out = await attempt(() =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key })),
    );
    const id = out.ok ? out.value.UploadId : undefined;
    if (!id) {
      throw this.noMultipart('CreateMultipartUpload', out.ok ? 'no UploadId' : describe(out.error));
    }
    this.uploads.push({ key, id });
    return id;
  }

  private async uploadPart(key: string, id: string, partNumber: number, body: string) {
    const out = await attempt(() =>
      this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: id,
          PartNumber: partNumber,
          Body: Buffer.from(body),
          ContentLength: Buffer.byteLength(body),
        }),
      ),
    );
    if (!out.ok || !out.value.ETag) {
      throw this.noMultipart('UploadPart', out.ok ? 'no ETag' : describe(out.error));
    }
    return out.value.ETag;
  }

  /** Completes an upload; on success it is no longer open. */
  private async complete(key: string, id: string, parts: [number, string][], ifNoneMatch?: '*') {
    const out = await attempt(() =>
      this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: id,
          MultipartUpload: { Parts: parts.map(([PartNumber, ETag]) => ({ PartNumber, ETag })) },
          IfNoneMatch: ifNoneMatch,
        }),
      ),
    );
    if (out.ok) {
      const i = this.uploads.findIndex((u) => u.key === key && u.id === id);
      if (i >= 0) this.uploads.splice(i, 1);
    }
    return out;
  }

  async writeOrderKeys(): Promise<void> {
    const written = await Promise.all(
      this.order.map((key, i) => this.put(key, ORDER_KEYS[i] ?? '')),
    );
    const failed = written.find((w) => !w.ok);
    if (failed && !failed.ok) {
      throw new StorageError(`cannot write to ${this.where}: ${describe(failed.error)}`, {
        cause: failed.error,
      });
    }
  }

  /** `byteOrderListing`: a first page of three and the rest after `StartAfter`, in byte order. */
  async listing(): Promise<void> {
    if (!this.want.has('byteOrderListing')) return;
    const prefix = `${this.base}o/`;
    const sorted = [...this.order].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const list = (startAfter: string | undefined, maxKeys: number) =>
      attempt(() =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            StartAfter: startAfter,
            MaxKeys: maxKeys,
          }),
        ),
      );
    const first = await list(undefined, 3);
    const rest = await list(sorted[2], 1000);
    const keys = (out: typeof first) =>
      out.ok ? (out.value.Contents ?? []).map((o) => o.Key) : [];
    this.caps.byteOrderListing =
      first.ok &&
      first.value.IsTruncated === true &&
      JSON.stringify(keys(first)) === JSON.stringify(sorted.slice(0, 3)) &&
      JSON.stringify(keys(rest)) === JSON.stringify(sorted.slice(3));
  }

  /** `If-None-Match: *` where the key exists: 412 means the server honours it. */
  async conditionalWrites(): Promise<void> {
    if (this.want.has('conditionalPut')) {
      const out = await this.put(this.existing, 'again', '*');
      this.caps.conditionalPut = !out.ok && out.status === 412;
    }
    if (this.want.has('conditionalCopy')) {
      const out = await attempt(() =>
        this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key: this.existing,
            CopySource: this.copySource(this.order[1] ?? ''),
            IfNoneMatch: '*',
          }),
        ),
      );
      this.caps.conditionalCopy = !out.ok && out.status === 412;
    }
  }

  /**
   * One upload for `ListParts`, `ListMultipartUploads`, `UploadPartCopy` and subset completion;
   * then conditional completion, and at least one completion that must work.
   */
  async multipart(): Promise<void> {
    const key = `${this.base}mp`;
    const id = await this.createUpload(key);
    await this.listParts(key, id, []);
    const etag1 = await this.uploadPart(key, id, 1, 'x');
    await this.uploadPart(key, id, 2, 'y');
    await this.listParts(key, id, [1, 2]);
    await this.listMultipartUploads(key, id);
    await this.uploadPartCopy(key, id);
    // Part 1 alone, while parts 2 (and maybe 3) exist.
    const subset = await this.complete(key, id, [[1, etag1]]);
    if (this.want.has('completeSubset')) this.caps.completeSubset = subset.ok;
    let completed = subset.ok;
    if (this.want.has('conditionalComplete') || !completed) {
      completed = (await this.conditionalComplete()) || completed;
    }
    if (!completed) await this.plainComplete();
  }

  /** `listParts`: a fresh upload lists no parts (some servers answer with an error, or as a GET). */
  private async listParts(key: string, id: string, expected: number[]): Promise<void> {
    if (!this.want.has('listParts') || this.caps.listParts === false) return;
    const listed = await attempt(() =>
      this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: id })),
    );
    const numbers = listed.ok ? (listed.value.Parts ?? []).map((p) => p.PartNumber) : undefined;
    this.caps.listParts = JSON.stringify(numbers) === JSON.stringify(expected);
  }

  private async listMultipartUploads(key: string, id: string): Promise<void> {
    if (!this.want.has('listMultipartUploads')) return;
    const listed = await attempt(() =>
      this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.base })),
    );
    this.caps.listMultipartUploads =
      listed.ok && (listed.value.Uploads ?? []).some((u) => u.Key === key && u.UploadId === id);
  }

  private async uploadPartCopy(key: string, id: string): Promise<void> {
    if (!this.want.has('uploadPartCopy')) return;
    const copied = await attempt(() =>
      this.client.send(
        new UploadPartCopyCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: id,
          PartNumber: 3,
          CopySource: this.copySource(this.order[0] ?? ''),
          CopySourceRange: 'bytes=0-0',
        }),
      ),
    );
    this.caps.uploadPartCopy = copied.ok && copied.value.CopyPartResult?.ETag !== undefined;
  }

  /** `conditionalComplete` over the existing key; whether that completion went through. */
  private async conditionalComplete(): Promise<boolean> {
    const key = this.existing;
    const id = await this.createUpload(key);
    const etag = await this.uploadPart(key, id, 1, 'z');
    const out = await this.complete(key, id, [[1, etag]], '*');
    this.caps.conditionalComplete = !out.ok && out.status === 412;
    return out.ok;
  }

  /** A completion of every uploaded part, which every usable server must accept. */
  private async plainComplete(): Promise<void> {
    const key = `${this.base}mp2`;
    const id = await this.createUpload(key);
    const etag = await this.uploadPart(key, id, 1, 'w');
    const out = await this.complete(key, id, [[1, etag]]);
    if (!out.ok) {
      throw new UnsupportedStorageFeatureError(
        'multipart',
        `the S3 server at ${this.where} does not complete multipart uploads (${describe(out.error)}); Epoch needs them`,
      );
    }
  }
}

async function cleanup(
  client: S3Client,
  bucket: string,
  base: string,
  uploads: { key: string; id: string }[],
): Promise<void> {
  await Promise.all(
    uploads.map((u) =>
      client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.id }))
        .catch(() => undefined),
    ),
  );
  const keys = [...ORDER_KEYS.map((k) => `${base}o/${k}`), `${base}mp`, `${base}mp2`];
  await client
    .send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
      }),
    )
    .catch(() => undefined);
}
