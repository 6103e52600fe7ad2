import type { Digest, SnapshotConfig } from '@epoch/oci';
import type { MaterializedFile, PulledKind } from './types.js';

/** A materialized artifact handed to an {@link Importer}. */
export interface ImportRequest {
  kind: PulledKind;
  repository: string;
  digest: Digest;
  /** The name to register it under. */
  name: string;
  /** The artifact's files, in manifest order (a snapshot's `snapshot.json` first). */
  files: MaterializedFile[];
  /** The snapshot config, for a snapshot. */
  config?: SnapshotConfig;
  signal: AbortSignal;
}

/**
 * Registers materialized artifacts with a VM runtime. It runs once per artifact digest (inside the
 * shared transfer, so concurrent ensures import once), after every file was verified; a failure
 * fails the ensure and is retried by the next one, the files staying cached.
 */
export interface Importer {
  /** Imports the artifact; resolves with the name it was registered under. */
  import(request: ImportRequest): Promise<string>;
}
