import { OciValidationError } from '@epoch/oci';
import {
  RangeNotSatisfiableError,
  RegistryError,
  SizeLimitError,
  StorageUnavailableError,
  UploadOffsetError,
} from '@epoch/registry';
import { IndexUnavailableError, InvalidCursorError, TokenRuleError } from '@epoch/store';
import { ApiProblem } from '../api/errors.js';

/** The spec's error body: `{"errors":[{"code","message","detail"}]}`. */
export interface ErrorBody {
  errors: { code: string; message: string; detail?: unknown }[];
}

/** The control API's error body (upstream epoch's `{"error"}`, with a code). */
export interface ApiErrorBody {
  error: string;
  code: string;
}

/** An error as it goes on the wire. */
export interface HttpError {
  status: number;
  body: ErrorBody | ApiErrorBody;
  headers?: Record<string, string>;
  /** True for conditions that are the server's fault: they are logged with their stack. */
  internal: boolean;
}

/** A client-visible error raised by the HTTP layer itself (bad header, unknown route…). */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

const registryStatus: Record<string, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 415,
  TOOMANYREQUESTS: 429,
};

const validationCode: Record<string, string> = {
  NAME_INVALID: 'NAME_INVALID',
  TAG_INVALID: 'TAG_INVALID',
  DIGEST_INVALID: 'DIGEST_INVALID',
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  REFERENCE_INVALID: 'NAME_INVALID',
  SIZE_INVALID: 'SIZE_INVALID',
  UNSUPPORTED: 'MANIFEST_INVALID',
};

/**
 * The one place where errors become HTTP responses (OCI JSON errors on `/v2/`, upstream's
 * `{"error"}` shape with `api`). Typed errors map to their status and spec
 * code; anything untyped is a bug and becomes a 500 that says nothing about internals.
 */
export function toHttpError(err: unknown, api = false): HttpError {
  return withRetryAfter(toEitherHttpError(err, api));
}

/** Seconds a client should wait before retrying a 503. */
export const RETRY_AFTER_SECONDS = 5;

/**
 * Every 503 says when to retry: registry clients and balancers treat a 503 with `Retry-After` as
 * retryable, and one without it as a failure.
 */
function withRetryAfter(error: HttpError): HttpError {
  if (error.status !== 503 || error.headers?.['Retry-After']) return error;
  return { ...error, headers: { ...error.headers, 'Retry-After': String(RETRY_AFTER_SECONDS) } };
}

function toEitherHttpError(err: unknown, api: boolean): HttpError {
  const mapped = toOciHttpError(err);
  if (!api) return mapped;
  if (err instanceof ApiProblem) {
    return {
      status: err.status,
      body: { error: err.message, code: err.code },
      internal: err.status >= 500,
    };
  }
  if (err instanceof TokenRuleError) {
    return { status: 400, body: { error: err.message, code: err.code }, internal: false };
  }
  if (err instanceof InvalidCursorError) {
    return { status: 400, body: { error: err.message, code: 'BAD_CURSOR' }, internal: false };
  }
  const first = 'errors' in mapped.body ? mapped.body.errors[0] : undefined;
  return {
    ...mapped,
    body: { error: first?.message ?? 'error', code: first?.code ?? 'UNKNOWN' },
  };
}

function toOciHttpError(err: unknown): HttpError {
  if (err instanceof HttpProblem) {
    return {
      status: err.status,
      body: body(err.code, err.message, err.detail),
      ...(err.headers ? { headers: err.headers } : {}),
      internal: err.status >= 500,
    };
  }
  if (err instanceof UploadOffsetError) {
    // 416 with the committed range, so the client can resume from the right offset.
    const range = err.expectedOffset > 0 ? `0-${err.expectedOffset - 1}` : '0-0';
    return {
      status: 416,
      body: body(err.code, err.message, err.detail),
      headers: { Range: range, 'Docker-Upload-UUID': err.uploadId },
      internal: false,
    };
  }
  if (err instanceof RegistryError) {
    const status =
      err.code === 'SIZE_INVALID' && err.name === 'TooLargeError'
        ? 413
        : (registryStatus[err.code] ?? 400);
    return { status, body: body(err.code, err.message, err.detail), internal: false };
  }
  if (err instanceof OciValidationError) {
    const code = validationCode[err.code] ?? 'MANIFEST_INVALID';
    return {
      status: 400,
      body: body(code, err.message, err.field ? { field: err.field } : undefined),
      internal: false,
    };
  }
  if (err instanceof RangeNotSatisfiableError) {
    return {
      status: 416,
      body: body('BLOB_UNKNOWN', 'requested range not satisfiable'),
      headers: { 'Content-Range': `bytes */${err.size}` },
      internal: false,
    };
  }
  if (err instanceof SizeLimitError) {
    return { status: 413, body: body('SIZE_INVALID', err.message), internal: false };
  }
  if (err instanceof StorageUnavailableError) {
    return {
      status: 503,
      body: body('UNAVAILABLE', 'storage is unavailable, retry later'),
      internal: true,
    };
  }
  if (err instanceof IndexUnavailableError) {
    return {
      status: 503,
      body: body('UNAVAILABLE', 'the index database is unavailable, retry later'),
      internal: true,
    };
  }
  return { status: 500, body: body('UNKNOWN', 'internal server error'), internal: true };
}

export function body(code: string, message: string, detail?: unknown): ErrorBody {
  return { errors: [detail === undefined ? { code, message } : { code, message, detail }] };
}
