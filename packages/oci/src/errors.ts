/**
 * Why a name, tag, digest, reference or document was rejected. The values line up with the
 * OCI distribution-spec error codes where one exists, so a server can pass them through.
 */
export type OciErrorCode =
  | 'NAME_INVALID'
  | 'TAG_INVALID'
  | 'DIGEST_INVALID'
  | 'MANIFEST_INVALID'
  | 'REFERENCE_INVALID'
  | 'SIZE_INVALID'
  | 'UNSUPPORTED';

/** Input that does not follow the OCI grammar or document schema it claims to. */
export class OciValidationError extends Error {
  /** Which kind of input was wrong. */
  readonly code: OciErrorCode;
  /** JSON path of the offending value (e.g. `layers[2].digest`) when the input is a document. */
  declare readonly field?: string;

  /**
   * @param code - which kind of input was wrong
   * @param message - what is wrong, in words a client can act on
   * @param field - JSON path of the offending value, for documents
   */
  constructor(code: OciErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'OciValidationError';
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}

/** Content hashed to a different digest than the one it was announced under. */
export class DigestMismatchError extends Error {
  /** Distribution-spec error code a server should answer with. */
  readonly code = 'DIGEST_INVALID' as const;
  /** The digest the content was supposed to have. */
  readonly expected: string;
  /** The digest the content actually hashed to. */
  readonly actual: string;

  /**
   * @param expected - the announced digest
   * @param actual - the digest computed from the bytes
   */
  constructor(expected: string, actual: string) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * Content had a different length than announced. `actual` may be a lower bound: a stream is
 * stopped as soon as it passes the expected size instead of being read to its end.
 */
export class ContentSizeMismatchError extends Error {
  /** Distribution-spec error code a server should answer with. */
  readonly code = 'SIZE_INVALID' as const;
  /** The announced length in bytes. */
  readonly expected: number;
  /** The length seen (at least this many bytes when the content was too long). */
  readonly actual: number;

  /**
   * @param expected - the announced length in bytes
   * @param actual - the length seen
   */
  constructor(expected: number, actual: number) {
    super(
      `size mismatch: expected ${expected} bytes, got ${actual > expected ? 'at least ' : ''}${actual}`,
    );
    this.name = 'ContentSizeMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

/** Alias of {@link ContentSizeMismatchError}, for callers that know it by its shorter name. */
export { ContentSizeMismatchError as SizeMismatchError };
