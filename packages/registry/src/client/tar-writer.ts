import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pack } from 'tar-stream';

/** One file of a tar written by {@link writeTar}. */
export interface TarFile {
  name: string;
  size: number;
  mode: number;
  /** PAX records, e.g. cocoon's `COCOON.sparse.map` and `COCOON.sparse.size`. */
  pax?: Record<string, string>;
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/**
 * Writes `files` as a tar to `out`, one after the other (the next file is asked for only once the
 * previous one is written). If a file's body or the iteration fails, the promise rejects before
 * the end-of-archive marker is written and `out` is neither ended nor destroyed: the caller kills
 * whatever reads it, so a truncated stream is never mistaken for a complete one (cocoon import).
 */
export async function writeTar(
  out: Writable,
  files: AsyncIterable<TarFile> | Iterable<TarFile>,
): Promise<void> {
  const tar = pack();
  // Pumped by hand rather than piped: a pipeline would end or destroy `out` on an error.
  const pumped = (async () => {
    for await (const chunk of tar as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await once(out, 'drain');
    }
  })();
  pumped.catch(() => {});
  const mtime = new Date();
  try {
    for await (const file of files) {
      await writeEntry(tar, file, mtime);
    }
    tar.finalize();
    await pumped;
  } catch (err) {
    tar.destroy(err as Error);
    throw err;
  }
}

async function writeEntry(tar: ReturnType<typeof pack>, file: TarFile, mtime: Date): Promise<void> {
  let finish!: (err?: Error | null) => void;
  const written = new Promise<void>((resolve, reject) => {
    finish = (err) => (err ? reject(err) : resolve());
  });
  // Observed at once: if the body fails first, the tar's destruction rejects this too.
  written.catch(() => {});
  const { name, size, mode, pax } = file;
  const entry = tar.entry({ name, size, mode, mtime, ...(pax ? { pax } : {}) }, (err) =>
    finish(err),
  );
  // Its failure arrives through the callback above; an unheard 'error' event would crash.
  entry.on('error', () => {});
  for await (const chunk of file.body) {
    if (!entry.write(chunk)) await once(entry, 'drain');
  }
  entry.end(undefined);
  await written;
}
