import {
  InvalidKeyError,
  ObjectNotFoundError,
  RangeNotSatisfiableError,
  StorageError,
  StorageUnavailableError,
} from '../errors.js';

/* Error translation of the S3 driver: SDK failures into the storage layer's typed errors. */

export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const meta = err.$metadata;
  if (typeof meta !== 'object' || meta === null || !('httpStatusCode' in meta)) return undefined;
  return typeof meta.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

/** The HTTP status behind an error, whether raw from the SDK or already translated. */
export function statusOf(err: unknown): number | undefined {
  return httpStatus(err instanceof StorageError ? err.cause : err);
}

export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : '';
}

export function isInvalidRange(err: unknown): boolean {
  return err instanceof RangeNotSatisfiableError;
}

export function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload']);
export const DENIED = new Set([
  'AccessDenied',
  'Forbidden',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
]);

/** Translates an SDK failure into the storage layer's errors. */
export function translate(err: unknown, key: string, bucket: string): Error {
  if (err instanceof StorageError || err instanceof InvalidKeyError) return err;
  const name = errorName(err);
  if (name === 'AbortError') return err as Error;
  const status = httpStatus(err);
  if (name === 'NoSuchBucket') {
    return new StorageUnavailableError(`bucket ${bucket} does not exist`, { cause: err });
  }
  if (NOT_FOUND.has(name) || status === 404) return new ObjectNotFoundError(key, { cause: err });
  if (name === 'InvalidRange' || status === 416) return new RangeNotSatisfiableError(key, -1);
  if (DENIED.has(name) || status === 403) {
    return new StorageError(`access denied to ${key} in bucket ${bucket}`, { cause: err });
  }
  if (status === undefined || status >= 500) {
    // Network failures, timeouts and 5xx that outlived the SDK's retries.
    return new StorageUnavailableError(`S3 unavailable for ${key}: ${describe(err)}`, {
      cause: err,
    });
  }
  return new StorageError(`S3 error on ${key}: ${describe(err)}`, { cause: err });
}
