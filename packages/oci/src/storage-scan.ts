import type { Digest } from './digest.js';
import type { ParsedManifest } from './manifest.js';

/**
 * The registry as its object storage holds it, read in one pass with no index access: what
 * `@epoch/registry`'s `readStorageScan` produces and `@epoch/store`'s reconcile applies. The
 * shape lives here, below both, so that neither defines it for the other.
 */
export interface StorageScan {
  /**
   * When the read began. Index rows written at or after it may record pushes the read missed,
   * so applying the scan never deletes or moves them.
   */
  readonly startedAt: Date;
  readonly repositories: Iterable<RepositoryScan>;
  /** What could not be read or trusted; the run went on without it. */
  readonly errors?: readonly ScanError[];
  /**
   * What storage holds for one repository now (a listing, no reads). A reconcile calls it under
   * the repository's lock right before applying, so a delete that landed after the scan is not
   * undone.
   */
  readonly recheck?: (repository: string) => Promise<RepositoryPresence>;
}

/** Everything storage holds for one repository. */
export interface RepositoryScan {
  readonly name: string;
  /** By digest; every tag's digest is among them (with manifests known only from a tag). */
  readonly manifests: ReadonlyMap<string, ScannedManifest>;
  /** Tag name → the digest of its bytes. */
  readonly tags: ReadonlyMap<string, ScannedTag>;
  /** Blob digest → what storage says of it. */
  readonly blobs: ReadonlyMap<string, ScannedBlob>;
}

/** A manifest found in storage: its exact bytes, their digest and the validated document. */
export interface ScannedManifest {
  readonly digest: Digest | string;
  readonly bytes: Uint8Array;
  readonly parsed: ParsedManifest;
  /** When its object was last written: the best push time storage can tell. */
  readonly pushedAt?: Date | undefined;
}

/** A tag found in storage: the digest of its bytes. */
export interface ScannedTag {
  readonly digest: Digest | string;
  /** When the tag object was last written. */
  readonly pushedAt?: Date | undefined;
}

/** A blob a repository may serve: linked there by a marker, or referenced by its manifests. */
export interface ScannedBlob {
  readonly size: number;
  /** From the first manifest descriptor naming it; absent for a blob only linked. */
  readonly mediaType?: string | undefined;
  /** Whether a link marker links it (a pushed or mounted blob). */
  readonly linked: boolean;
  /** When the link marker was written, for linked blobs. */
  readonly linkedAt?: Date | undefined;
  /**
   * Whether a manifest names it with `urls` (a foreign layer). Such a reference never makes the
   * blob readable.
   */
  readonly foreign?: boolean | undefined;
}

/** Something that could not be read, trusted or applied. */
export interface ScanError {
  readonly repository?: string | undefined;
  readonly key?: string | undefined;
  readonly message: string;
}

/** The manifests (by digest) and tags storage holds for a repository at one moment. */
export interface RepositoryPresence {
  readonly manifests: ReadonlySet<string>;
  readonly tags: ReadonlySet<string>;
}
