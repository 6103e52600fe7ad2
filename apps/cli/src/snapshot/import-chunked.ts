import type { Writable } from 'node:stream';
import {
  type ChunkedSnapshotLayout,
  type SnapshotConfig,
  type TarEntry,
  writeTar,
} from '@epoch/oci';
import { chunkedImportEntries, clientBlobs, type RegistryClient } from '@epoch/registry/client';
import { Progress } from '../support/progress.js';

/** Where an incremental snapshot comes from, and how to name it locally. */
export interface ImportChunkedOptions {
  client: RegistryClient;
  repository: string;
  layout: ChunkedSnapshotLayout;
  config: SnapshotConfig;
  name?: string;
  description?: string;
}

/**
 * Writes the `cocoon snapshot import` tar of an incremental snapshot (the entries of
 * `chunkedImportEntries`, the same the server's `/dl/` sends), with a progress line per file.
 * Any failure, a chunk that does not match its sha256 say, rejects before the tar's
 * end-of-archive marker.
 */
export async function writeChunkedImportTar(
  out: Writable,
  options: ImportChunkedOptions,
): Promise<void> {
  const { client, repository, layout, config } = options;
  const entries = await chunkedImportEntries(clientBlobs(client, repository), layout, config, {
    overrides: {
      ...(options.name !== undefined ? { name: options.name } : {}),
      ...(options.description !== undefined ? { description: options.description } : {}),
    },
  });
  // The first entry is snapshot.json; the files follow.
  await writeTar(
    out,
    entries.map((e, i) => (i === 0 ? e : withProgress(e))),
  );
}

function withProgress(entry: TarEntry): TarEntry {
  return {
    ...entry,
    async *open() {
      const progress = new Progress(entry.name, entry.size);
      let n = 0;
      for await (const b of await entry.open()) {
        n += b.length;
        progress.update(n);
        yield b;
      }
      progress.done();
    },
  };
}
