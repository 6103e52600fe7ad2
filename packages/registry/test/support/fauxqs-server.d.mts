/** Features of the patched fauxqs server that can be switched off to test driver fallbacks. */
export interface FauxqsFeatures {
  /** UploadPartCopy; off, it is answered 501 NotImplemented like on servers without it. */
  uploadPartCopy?: boolean;
  /**
   * `If-None-Match: *`; `false` keeps fauxqs's own behaviour (ignored: the write overwrites),
   * `'not-implemented'` answers 501 like servers without conditional writes.
   */
  conditionalWrites?: boolean | 'not-implemented';
}

export interface PatchedFauxqs {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  createBucket(name: string): void;
  close(): Promise<void>;
}

/** Starts fauxqs with the S3 behaviour it lacks added (see the .mjs file). */
export function startPatchedFauxqs(options?: {
  port?: number;
  features?: FauxqsFeatures;
}): Promise<PatchedFauxqs>;
