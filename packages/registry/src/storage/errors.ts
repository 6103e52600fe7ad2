/**
 * Typed errors of the object-store layer. Drivers translate every backend failure into one of
 * these, so the layers above never see an AWS or `node:fs` error and can map each to one HTTP
 * status in one place.
 */
export class StorageError extends Error {
  override readonly name: string = 'StorageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The object does not exist (S3 `NoSuchKey`/`NotFound`/`NoSuchUpload`, `ENOENT`). */
export class ObjectNotFoundError extends StorageError {
  override readonly name = 'ObjectNotFoundError';
  constructor(
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super(`object not found: ${key}`, options);
  }
}

/** A read started past the end of the object. */
export class RangeNotSatisfiableError extends StorageError {
  override readonly name = 'RangeNotSatisfiableError';
  constructor(
    readonly key: string,
    readonly size: number,
  ) {
    super(`range not satisfiable for ${key} (size ${size})`);
  }
}

/** A body was not the length it was declared to be; nothing was stored. */
export class SizeMismatchError extends StorageError {
  override readonly name = 'SizeMismatchError';
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`size mismatch: expected ${expected} bytes, got ${actual}`);
  }
}

/** A write would grow an object past its allowed size; nothing past the limit was kept. */
export class SizeLimitError extends StorageError {
  override readonly name = 'SizeLimitError';
  constructor(readonly limit: number) {
    super(`size limit of ${limit} bytes exceeded`);
  }
}

/** The key could address something outside the store, or is not a key at all. */
export class InvalidKeyError extends StorageError {
  override readonly name = 'InvalidKeyError';
  constructor(readonly key: string) {
    super(`invalid storage key: ${JSON.stringify(key)}`);
  }
}

/** The backend failed and retrying (where it was safe) did not help. */
export class StorageUnavailableError extends StorageError {
  override readonly name = 'StorageUnavailableError';
}

/**
 * The bucket does not exist (`problem: 'not-found'`) or these credentials may not use it
 * (`'denied'`). Raised at start-up, when the store checks the bucket it was given.
 */
export class BucketAccessError extends StorageError {
  override readonly name = 'BucketAccessError';
  constructor(
    readonly bucket: string,
    readonly endpoint: string,
    readonly problem: 'not-found' | 'denied',
    options?: { cause?: unknown },
  ) {
    const where = `bucket ${bucket} at ${endpoint}`;
    super(
      problem === 'not-found' ? `${where} does not exist` : `access to ${where} denied`,
      options,
    );
  }
}
