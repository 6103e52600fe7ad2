/**
 * Typed errors of the registry core. Each carries the OCI distribution-spec error code it stands
 * for; the HTTP layer maps classes to statuses in one table and never inspects messages.
 */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS';

/** Base class: a client-visible registry condition with its spec error code. */
export class RegistryError extends Error {
  override readonly name: string = 'RegistryError';
  constructor(
    readonly code: OciErrorCode,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }
}

export class BlobUnknownError extends RegistryError {
  override readonly name = 'BlobUnknownError';
  constructor(readonly digest: string) {
    super('BLOB_UNKNOWN', `blob unknown to registry: ${digest}`, { digest });
  }
}

export class ManifestUnknownError extends RegistryError {
  override readonly name = 'ManifestUnknownError';
  constructor(
    readonly repository: string,
    readonly reference: string,
  ) {
    super('MANIFEST_UNKNOWN', `manifest unknown: ${repository}:${reference}`, {
      name: repository,
      reference,
    });
  }
}

export class NameUnknownError extends RegistryError {
  override readonly name = 'NameUnknownError';
  constructor(readonly repository: string) {
    super('NAME_UNKNOWN', `repository name not known to registry: ${repository}`, {
      name: repository,
    });
  }
}

export class UploadUnknownError extends RegistryError {
  override readonly name = 'UploadUnknownError';
  constructor(readonly uploadId: string) {
    super('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { uuid: uploadId });
  }
}

/**
 * A chunk did not start where the upload currently ends (or the session is busy with another
 * chunk). The spec answers 416 with the committed range, so the offset is carried along.
 */
export class UploadOffsetError extends RegistryError {
  override readonly name = 'UploadOffsetError';
  constructor(
    readonly uploadId: string,
    readonly expectedOffset: number,
    readonly receivedOffset: number | undefined,
  ) {
    super(
      'BLOB_UPLOAD_INVALID',
      receivedOffset === undefined
        ? 'another chunk of this upload is in progress'
        : `chunk starts at byte ${receivedOffset}, but the upload has ${expectedOffset} bytes`,
      { uuid: uploadId, size: expectedOffset },
    );
  }
}

/** Uploaded content hashed to another digest than the client claimed; nothing was stored. */
export class UploadDigestMismatchError extends RegistryError {
  override readonly name = 'UploadDigestMismatchError';
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super('DIGEST_INVALID', `provided digest did not match uploaded content`, {
      expected,
      actual,
    });
  }
}

/** A manifest PUT by digest whose bytes hash to another digest. */
export class ManifestDigestMismatchError extends RegistryError {
  override readonly name = 'ManifestDigestMismatchError';
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super('DIGEST_INVALID', 'manifest digest does not match its content', { expected, actual });
  }
}

/** A body larger than the registry accepts (upload size cap, manifest size cap). */
export class TooLargeError extends RegistryError {
  override readonly name = 'TooLargeError';
  constructor(
    readonly limit: number,
    what: string,
  ) {
    super('SIZE_INVALID', `${what} exceeds the limit of ${limit} bytes`, { limit });
  }
}
