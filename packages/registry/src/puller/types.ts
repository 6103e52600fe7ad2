import type { Digest, SparseSegment } from '@epoch/oci';
import type { Credentials } from '../client/auth.js';
import type { RegistryClient } from '../client/client.js';
import type { Importer } from './importer.js';

/** What the puller delivers: a cocoonstack snapshot or a cloud image (the formats of `@epoch/oci` `classify`). */
export type PulledKind = 'snapshot' | 'cloud-image';

/** Settings of {@link newPuller}. */
export interface PullerOptions {
  /** The registry: a base URL such as `http://epoch:4300`, or a configured client. */
  registry: string | RegistryClient;
  /** Credentials, when `registry` is a URL; anonymous without. */
  credentials?: Credentials;
  /** Directory of the on-disk cache (created if missing). One puller per directory. */
  cacheDir: string;
  /**
   * Byte budget of the cache (default: unlimited). Least recently used artifacts are evicted to
   * stay within it; what an in-flight ensure uses never is.
   */
  cacheBytes?: number;
  /** Blob requests in flight at once across the whole puller (default 8). */
  concurrency?: number;
  /** Size of one ranged request; larger blobs are fetched in parallel pieces (default 32 MiB). */
  chunkBytes?: number;
  /** Downloads of a blob whose bytes do not match its digest before giving up (default 3). */
  attempts?: number;
  /** Retries of a dropped ranged request, each resumed from the last byte received (default 5). */
  resumes?: number;
  /** Retries of the client's requests, when `registry` is a URL (default 2). */
  retries?: number;
  /** Hands materialized artifacts to a runtime (e.g. a cocoon CLI adapter); none: files only. */
  importer?: Importer;
  /**
   * An incremental snapshot's update from a cached earlier version takes that version's files
   * over and writes only the chunks that differ, instead of writing a whole new copy (default
   * false). The earlier version leaves the cache (asking for it again is the same small update
   * backwards), so paths an ensure returned for it stop being valid; a version another ensure
   * is using is copied from as without this. A failed update leaves neither version.
   */
  updateInPlace?: boolean;
}

/** Options of every puller call. */
export interface CallOptions {
  /** Gives up this call; a transfer shared with other callers goes on for them. */
  signal?: AbortSignal;
}

/** Options of an ensure. */
export interface EnsureOptions extends CallOptions {
  /** Name to import under (default: the repository name, `repo:tag` for a tag other than latest). */
  localName?: string;
  /** Platform of an image index's child to take (default `linux/amd64`). */
  platform?: string;
}

/** One materialized file of an artifact. */
export interface MaterializedFile {
  /** File name (the layer title; `snapshot.json` for the import envelope). */
  name: string;
  /** Absolute path inside the cache (read-only; shared by artifacts with the same blob). */
  path: string;
  /** Bytes on disk. */
  size: number;
  /** Digest of the layer it holds, if it is one. */
  digest?: Digest;
  /** Mode the snapshot config records for it. */
  mode?: number;
  /**
   * For a sparse file, whose layer holds only its data segments: the segments and the logical
   * size (what cocoon's `COCOON.sparse.map`/`.size` records carry).
   */
  sparse?: { map: SparseSegment[]; size: number };
}

/** What an ensure delivered. */
export interface EnsureResult {
  /** The reference as asked for. */
  ref: string;
  repository: string;
  /** Digest of the manifest the reference resolved to. */
  digest: Digest;
  kind: PulledKind;
  /** Directory holding the materialized files. */
  dir: string;
  files: MaterializedFile[];
  /** The name the importer registered it under, when there is an importer. */
  importName?: string;
  /** Blob bytes downloaded by this ensure (0 on a cache hit). */
  bytesTransferred: number;
  /** Blob bytes that were already in the cache. */
  bytesReused: number;
  /** The artifact was complete in the cache before this call. */
  cached: boolean;
  /** The registry was unreachable: this is the last digest the reference resolved to. */
  offline: boolean;
  /** Wall-clock time of the call. */
  durationMs: number;
}

/** One repository of {@link Puller.listRemote}. */
export interface RemoteEntry {
  repository: string;
  tags: string[];
}

/** Cache and transfer counters. */
export interface PullerStats {
  /** Bytes of the cache on disk (blobs once each, plus reassembled cloud images). */
  cacheBytes: number;
  cacheBudget: number;
  artifacts: number;
  blobs: number;
  /** Ensures served from the cache. */
  hits: number;
  /** Ensures that downloaded something. */
  misses: number;
  /** Ensures served offline from the cache. */
  offlineHits: number;
  bytesTransferred: number;
  evictions: number;
  /** Artifacts being fetched right now. */
  inFlight: number;
}

/** Progress and lifecycle events, also emitted as `'event'` on the puller. */
export type PullerEvent =
  | { type: 'resolved'; ref: string; digest: Digest }
  | { type: 'offline'; ref: string; digest: Digest; error: Error }
  | { type: 'progress'; digest: Digest; blob: Digest; bytes: number; total: number }
  | { type: 'blob-rejected'; blob: Digest; attempt: number; error: Error }
  | { type: 'materialized'; ref: string; digest: Digest; bytesTransferred: number }
  | { type: 'evicted'; digest: Digest; bytes: number };
