import { createHash, type Hash } from 'node:crypto';
import { OciValidationError } from './errors.js';
import { quote } from './quote.js';

/** Hash algorithms accepted in digests. */
export type DigestAlgorithm = 'sha256' | 'sha512';

/** A content digest, `<algorithm>:<lowercase hex>`. */
export type Digest = `${DigestAlgorithm}:${string}`;

/** A digest split into its parts. */
export interface ParsedDigest {
  /** The hash algorithm. */
  algorithm: DigestAlgorithm;
  /** The encoded hash: lowercase hex of exactly the algorithm's length. */
  hex: string;
}

const hexLength: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128 };
const digestPattern = /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;
const lowerHexPattern = /^[0-9a-f]*$/;

function isAlgorithm(value: string): value is DigestAlgorithm {
  return Object.hasOwn(hexLength, value);
}

/** Whether `value` is a valid sha256 or sha512 digest with lowercase hex of the right length. */
export function isDigest(value: string): value is Digest {
  return digestPattern.test(value);
}

/**
 * Splits a digest into algorithm and hex.
 *
 * @throws {OciValidationError} `DIGEST_INVALID` for anything but `sha256:` + 64 or `sha512:` +
 *   128 lowercase hex characters (no whitespace, no uppercase, no other algorithms)
 */
export function parseDigest(value: string): ParsedDigest {
  if (isDigest(value)) {
    const colon = value.indexOf(':');
    return { algorithm: value.slice(0, colon) as DigestAlgorithm, hex: value.slice(colon + 1) };
  }
  throw new OciValidationError('DIGEST_INVALID', describeInvalidDigest(value));
}

function describeInvalidDigest(value: string): string {
  const colon = value.indexOf(':');
  if (colon < 0) return `invalid digest ${quote(value)}: expected <algorithm>:<hex>`;
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (!isAlgorithm(algorithm)) {
    return `invalid digest ${quote(value)}: unsupported algorithm ${quote(algorithm)} (sha256 or sha512)`;
  }
  const want = hexLength[algorithm];
  if (!lowerHexPattern.test(hex)) {
    return `invalid digest ${quote(value)}: the hash must be lowercase hex`;
  }
  return `invalid digest ${quote(value)}: ${algorithm} needs ${want} hex characters, got ${hex.length}`;
}

/**
 * Joins an algorithm and hex into a digest.
 *
 * @throws {OciValidationError} `DIGEST_INVALID` if the result is not a valid digest
 */
export function formatDigest(algorithm: DigestAlgorithm, hex: string): Digest {
  const value = `${algorithm}:${hex}`;
  parseDigest(value);
  return value as Digest;
}

/** The digest of an in-memory value; strings are hashed as UTF-8. */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Incremental hasher that also counts the bytes it has seen. */
export class Digester {
  /** The algorithm this digester uses. */
  readonly algorithm: DigestAlgorithm;
  #hash: Hash;
  #bytes = 0;
  #result: Digest | undefined;

  /** @param algorithm - hash algorithm, sha256 unless given */
  constructor(algorithm: DigestAlgorithm = 'sha256') {
    if (!isAlgorithm(algorithm)) {
      throw new OciValidationError(
        'DIGEST_INVALID',
        `unsupported digest algorithm ${quote(algorithm)}`,
      );
    }
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  /**
   * Adds bytes to the hash.
   *
   * @throws {Error} after {@link Digester.digest} was called
   */
  update(chunk: Uint8Array): void {
    if (this.#result !== undefined) throw new Error('Digester.update called after digest()');
    this.#hash.update(chunk);
    this.#bytes += chunk.byteLength;
  }

  /** Number of bytes hashed so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * An independent digester with the same state, e.g. to roll an incremental hash back when the
   * bytes after this point turn out not to count.
   */
  copy(): Digester {
    if (this.#result !== undefined) throw new Error('Digester.copy called after digest()');
    const clone = new Digester(this.algorithm);
    clone.#hash = this.#hash.copy();
    clone.#bytes = this.#bytes;
    return clone;
  }

  /** The digest of everything hashed; later calls return the same value. */
  digest(): Digest {
    this.#result ??= `${this.algorithm}:${this.#hash.digest('hex')}`;
    return this.#result;
  }
}
