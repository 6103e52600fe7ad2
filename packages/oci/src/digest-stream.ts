import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { type Digest, type DigestAlgorithm, Digester, parseDigest } from './digest.js';
import { ContentSizeMismatchError, DigestMismatchError, OciValidationError } from './errors.js';

/** What content is expected to be: its digest and, when known, its length. */
export interface ExpectedContent {
  /** The digest the bytes must hash to; its algorithm selects the hash. */
  digest: Digest | string;
  /** The exact length in bytes, if known. */
  size?: number;
}

/** What a stream turned out to contain. */
export interface ContentSummary {
  /** The digest of the bytes. */
  digest: Digest;
  /** The number of bytes. */
  size: number;
}

/** A byte source: a Node readable or a web `ReadableStream` (e.g. a `fetch` body). */
export type ByteSource = NodeJS.ReadableStream | ReadableStream<Uint8Array>;

/**
 * A pass-through that hashes what flows through it and fails the stream when the bytes do not
 * match the expectation. Bytes are forwarded before the check can be made (at the end), so
 * whatever consumes them must treat them as provisional until the stream finishes cleanly.
 */
export class VerifyingTransform extends Transform {
  /** The digest the content must have. */
  readonly expectedDigest: Digest;
  /** The length the content must have, if known. */
  readonly expectedSize: number | undefined;
  readonly #digester: Digester;
  #result: ContentSummary | undefined;

  /**
   * @throws {OciValidationError} `DIGEST_INVALID` / `SIZE_INVALID` for a malformed expectation
   */
  constructor(expected: ExpectedContent) {
    // Strings are refused rather than re-encoded: their original bytes are unknowable.
    super({ decodeStrings: false });
    const { algorithm } = parseDigest(expected.digest);
    if (expected.size !== undefined && !isByteCount(expected.size)) {
      throw new OciValidationError(
        'SIZE_INVALID',
        `invalid expected size ${String(expected.size)}`,
      );
    }
    this.expectedDigest = expected.digest as Digest;
    this.expectedSize = expected.size;
    this.#digester = new Digester(algorithm);
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#digester.bytes;
  }

  /** Digest and size of the content, once it has ended and matched; undefined before. */
  get result(): ContentSummary | undefined {
    return this.#result;
  }

  override _transform(
    chunk: unknown,
    _encoding: BufferEncoding,
    callback: TransformCallback,
  ): void {
    if (!(chunk instanceof Uint8Array)) {
      callback(new TypeError('verifying stream accepts byte chunks only (is an encoding set?)'));
      return;
    }
    const seen = this.#digester.bytes + chunk.byteLength;
    // Stop at the first byte too many, so an oversized upload is cut off, not read to its end.
    if (this.expectedSize !== undefined && seen > this.expectedSize) {
      callback(new ContentSizeMismatchError(this.expectedSize, seen));
      return;
    }
    this.#digester.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const size = this.#digester.bytes;
    if (this.expectedSize !== undefined && size !== this.expectedSize) {
      callback(new ContentSizeMismatchError(this.expectedSize, size));
      return;
    }
    const digest = this.#digester.digest();
    if (digest !== this.expectedDigest) {
      callback(new DigestMismatchError(this.expectedDigest, digest));
      return;
    }
    this.#result = { digest, size };
    callback();
  }
}

function isByteCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/**
 * A Node `Transform` that passes bytes through while hashing them. It fails with
 * {@link DigestMismatchError} or {@link ContentSizeMismatchError} at the end when the content
 * does not match, and with {@link ContentSizeMismatchError} as soon as more than
 * `expected.size` bytes arrive.
 *
 * @throws {OciValidationError} `DIGEST_INVALID` / `SIZE_INVALID` for a malformed expectation
 */
export function verifyingStream(expected: ExpectedContent): VerifyingTransform {
  return new VerifyingTransform(expected);
}

function isWebStream(source: ByteSource): source is ReadableStream<Uint8Array> {
  return typeof (source as { getReader?: unknown }).getReader === 'function';
}

/** Adapts either kind of byte source to a Node readable. */
export function toNodeReadable(source: ByteSource): NodeJS.ReadableStream {
  return isWebStream(source) ? Readable.fromWeb(source as WebReadableStream<Uint8Array>) : source;
}

// Used when copyVerified fails before it could start the pipeline. Destroying without an error
// keeps the streams from emitting 'error' events nobody may be listening to.
function discard(source: ByteSource, dest: NodeJS.WritableStream, reason: unknown): void {
  if (isWebStream(source)) {
    source.cancel(reason).catch(() => {});
  } else {
    (source as Partial<Readable>).destroy?.();
  }
  (dest as Partial<NodeJS.WritableStream & { destroy(): void }>).destroy?.();
}

/**
 * Streams `source` into `dest`, verifying the bytes on the way, and resolves once `dest` has
 * finished. On a mismatch, a stream error or an abort it rejects and destroys both ends, so
 * `dest` never finishes with bad content; if `dest` is a file, the caller still removes it.
 * Memory use is bounded by the streams' buffers, whatever the content length.
 *
 * @throws {DigestMismatchError | ContentSizeMismatchError} when the bytes do not match
 * @throws {OciValidationError} for a malformed expectation
 */
export async function copyVerified(
  source: ByteSource,
  dest: NodeJS.WritableStream,
  expected: ExpectedContent,
  options: { signal?: AbortSignal } = {},
): Promise<ContentSummary> {
  let verifier: VerifyingTransform;
  try {
    verifier = verifyingStream(expected);
  } catch (error) {
    discard(source, dest, error);
    throw error;
  }
  const readable = toNodeReadable(source);
  await (options.signal === undefined
    ? pipeline(readable, verifier, dest)
    : pipeline(readable, verifier, dest, { signal: options.signal }));
  const { result } = verifier;
  // pipeline only resolves after the verifier flushed successfully, which sets the result.
  if (result === undefined) throw new Error('verifying stream ended without a result');
  return result;
}

/** Hashes a whole stream without holding it in memory. */
export async function hashStream(
  source: ByteSource,
  algorithm: DigestAlgorithm = 'sha256',
): Promise<ContentSummary> {
  const digester = new Digester(algorithm);
  for await (const chunk of toNodeReadable(source)) {
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError('hashStream accepts byte chunks only (is an encoding set?)');
    }
    digester.update(chunk);
  }
  return { digest: digester.digest(), size: digester.bytes };
}
