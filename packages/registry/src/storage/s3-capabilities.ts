import { StorageError } from './errors.js';

/**
 * The optional S3 features the driver can use, each with a slower path (or, for a few
 * combinations, a clear start-up error) where a server lacks it. `createS3ObjectStore` finds out
 * by probing the bucket; `S3Config.capabilities` can state some or all of them instead. Multipart
 * uploads themselves are not optional: a server without them fails the probe.
 *
 * | feature                | used for                                          | without it                                   |
 * | ---------------------- | ------------------------------------------------- | -------------------------------------------- |
 * | `byteOrderListing`     | `list` pages in byte order straight from S3       | one S3 page per listing, sorted here; more than 1,000 entries under a prefix fail with `UnsupportedStorageFeatureError` |
 * | `conditionalPut`       | `ifAbsent` on `PutObject` (`If-None-Match: *`)     | HEAD, then write                              |
 * | `conditionalComplete`  | `ifAbsent` on `CompleteMultipartUpload`            | HEAD, then write                              |
 * | `conditionalCopy`      | `ifAbsent` on `CopyObject` (commits, copies)      | HEAD, then write                              |
 * | `uploadPartCopy`       | server-side copies > 5 GiB, continuing a staged object after `readStaged`, the tail as the last part | the bytes stream through this process |
 * | `listParts`            | telling an open staged upload from a completed or aborted one; finding stray parts | a one-byte `UploadPart` at the next part number, plus HEAD (needs `completeSubset`) |
 * | `listMultipartUploads` | `sweepStaged` finding abandoned multipart uploads | only tails are swept; the bucket's lifecycle rule must abort old uploads |
 * | `completeSubset`       | completing a staged upload while a failed append left later parts | parts after the recorded ones are found with `ListParts`, completed too, and the object is cut back with a ranged server-side copy |
 */
export interface S3Capabilities {
  /** `ListObjectsV2` orders keys by their UTF-8 bytes and honours `StartAfter` in that order. */
  byteOrderListing: boolean;
  /** `If-None-Match: *` on `PutObject` answers 412 when the key exists. */
  conditionalPut: boolean;
  /** `If-None-Match: *` on `CompleteMultipartUpload` answers 412 when the key exists. */
  conditionalComplete: boolean;
  /** `If-None-Match: *` on `CopyObject` answers 412 when the destination exists. */
  conditionalCopy: boolean;
  /** `UploadPartCopy` (with `x-amz-copy-source-range`) answers with a `CopyPartResult`. */
  uploadPartCopy: boolean;
  /** `ListParts` lists the parts of an open multipart upload (an empty list for a fresh one). */
  listParts: boolean;
  /** `ListMultipartUploads` lists the open multipart uploads under a prefix. */
  listMultipartUploads: boolean;
  /**
   * `CompleteMultipartUpload` accepts a list that leaves out some uploaded parts, as AWS S3 does.
   * Ceph RGW refuses it (`InvalidPart`) unless every uploaded part is listed.
   */
  completeSubset: boolean;
}

export type S3Feature = keyof S3Capabilities;

/** What the driver assumes for a feature nobody probed or stated: AWS S3's behaviour. */
export const AWS_CAPABILITIES: Readonly<S3Capabilities> = Object.freeze({
  byteOrderListing: true,
  conditionalPut: true,
  conditionalComplete: true,
  conditionalCopy: true,
  uploadPartCopy: true,
  listParts: true,
  listMultipartUploads: true,
  completeSubset: true,
});

export const S3_FEATURES = Object.keys(AWS_CAPABILITIES) as S3Feature[];

/** What the driver does instead of each feature (for logs and errors). */
export const FALLBACKS: Readonly<Record<S3Feature, string>> = Object.freeze({
  byteOrderListing:
    'listings are sorted by the driver, one S3 page per listing (more than 1,000 entries under one prefix cannot be listed)',
  conditionalPut: 'ifAbsent writes check with HEAD first (concurrent writers may both write)',
  conditionalComplete:
    'ifAbsent multipart writes check with HEAD first (concurrent writers may both write)',
  conditionalCopy:
    'ifAbsent copies and commits check with HEAD first (concurrent writers may both write)',
  uploadPartCopy: 'some copies stream the bytes through this process',
  listParts: 'open uploads are checked with a one-byte UploadPart',
  listMultipartUploads:
    'abandoned multipart uploads are not swept: give the bucket a lifecycle rule that aborts incomplete multipart uploads',
  completeSubset:
    'parts left by failed appends are completed too, then cut off with a server-side copy',
});

/**
 * A feature the S3 server lacks made an operation impossible (not merely slower): named in the
 * message, with what to do about it.
 */
export class UnsupportedStorageFeatureError extends StorageError {
  override readonly name = 'UnsupportedStorageFeatureError';
  constructor(
    readonly feature: S3Feature | 'multipart',
    message: string,
  ) {
    super(message);
  }
}

/** The combinations of missing features the driver cannot work around, as a start-up error. */
export function checkCapabilities(caps: S3Capabilities, where: string): void {
  if (!caps.listParts && !caps.completeSubset) {
    throw new UnsupportedStorageFeatureError(
      'listParts',
      `the S3 server at ${where} has neither ListParts nor CompleteMultipartUpload of a subset of the uploaded parts; resumable uploads need one of them`,
    );
  }
}
