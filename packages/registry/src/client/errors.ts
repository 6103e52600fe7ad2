/**
 * Typed errors of the registry HTTP client. Callers branch on the class (a missing manifest is
 * not a failed transfer), never on messages.
 */

/** One entry of an OCI error body: `{"errors":[{"code","message","detail"}]}`. */
export interface RemoteErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

/** A registry answered with an unexpected HTTP status. */
export class RegistryHttpError extends Error {
  override readonly name: string = 'RegistryHttpError';
  constructor(
    /** Method and URL of the request, for messages that name the server. */
    readonly method: string,
    readonly url: string,
    readonly status: number,
    /** The OCI error entries of the body, when it had any. */
    readonly errors: readonly RemoteErrorEntry[] = [],
  ) {
    super(`${method} ${url}: ${status}${describe(errors)}`);
  }

  /** The first OCI error code of the body (e.g. `MANIFEST_UNKNOWN`), if any. */
  get code(): string | undefined {
    return this.errors[0]?.code;
  }
}

/** 404: the repository, manifest, tag, blob or upload does not exist. */
export class RegistryNotFoundError extends RegistryHttpError {
  override readonly name = 'RegistryNotFoundError';
}

/** 401 after the authentication flow ran (or could not run): no or wrong credentials. */
export class RegistryUnauthorizedError extends RegistryHttpError {
  override readonly name = 'RegistryUnauthorizedError';
}

/** 403: authenticated, but not allowed. */
export class RegistryDeniedError extends RegistryHttpError {
  override readonly name = 'RegistryDeniedError';
}

/** The request never got an HTTP answer (connection refused or reset, timeout, TLS failure). */
export class RegistryNetworkError extends Error {
  override readonly name = 'RegistryNetworkError';
  constructor(
    readonly method: string,
    readonly url: string,
    override readonly cause: unknown,
  ) {
    super(`${method} ${url}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** The registry said something the protocol does not allow (e.g. a 201 without a Location). */
export class RegistryProtocolError extends Error {
  override readonly name = 'RegistryProtocolError';
}

function describe(errors: readonly RemoteErrorEntry[]): string {
  if (errors.length === 0) return '';
  return ` ${errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ')}`;
}

/** The error class for a status. */
export function httpError(
  method: string,
  url: string,
  status: number,
  errors: readonly RemoteErrorEntry[],
): RegistryHttpError {
  if (status === 404) return new RegistryNotFoundError(method, url, status, errors);
  if (status === 401) return new RegistryUnauthorizedError(method, url, status, errors);
  if (status === 403) return new RegistryDeniedError(method, url, status, errors);
  return new RegistryHttpError(method, url, status, errors);
}
