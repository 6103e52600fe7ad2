/** Features of the patched fauxqs server that can be switched off to test driver fallbacks. */
export interface FauxqsFeatures {
  /** UploadPartCopy; off, it is answered 501 NotImplemented like on servers without it. */
  uploadPartCopy?: boolean;
  /**
   * `If-None-Match: *`; `false` keeps fauxqs's own behaviour (ignored: the write overwrites),
   * `'not-implemented'` answers 501 like servers without conditional writes, `'put-only'` honours
   * it on PutObject and ignores it on CopyObject and CompleteMultipartUpload, like Ceph RGW.
   */
  conditionalWrites?: boolean | 'not-implemented' | 'put-only';
  /**
   * CompleteMultipartUpload of a subset of the uploaded parts (AWS S3); `false` answers it 400
   * InvalidPart unless every uploaded part is listed, like Ceph RGW.
   */
  completeSubset?: boolean;
  /** Multipart uploads at all; off, every multipart request is answered 501. */
  multipart?: boolean;
}

export interface PatchedFauxqs {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  createBucket(name: string): void;
  /** The open multipart uploads whose key starts with `prefix`, as `upload:<key>`. */
  uploads(prefix?: string): string[];
  close(): Promise<void>;
}

/**
 * Starts fauxqs with the S3 behaviour it lacks added (see the .mjs file), or exactly as published
 * with `plain: true`.
 */
export function startPatchedFauxqs(options?: {
  port?: number;
  plain?: boolean;
  features?: FauxqsFeatures;
}): Promise<PatchedFauxqs>;
