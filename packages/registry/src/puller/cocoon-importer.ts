import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { DEFAULT_FILE_MODE, snapshotTarEntry, writeTar } from '@epoch/oci';
import type { Importer, ImportRequest } from './importer.js';
import type { MaterializedFile } from './types.js';

/** Settings of {@link cocoonImporter}. */
export interface CocoonImporterOptions {
  /**
   * The cocoon binary: a path, or a name looked up on the PATH (default, and when empty:
   * `cocoon`). The library reads no environment; an application that honours
   * `EPOCH_COCOON_BINARY` passes `binary: process.env.EPOCH_COCOON_BINARY`.
   */
  binary?: string | undefined;
  /** Environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv | undefined;
}

/** cocoon exited with a failure, or could not be run. */
export class CocoonImportError extends Error {
  override readonly name = 'CocoonImportError';
}

/**
 * The cocoon CLI adapter: a snapshot goes to `cocoon snapshot import --name NAME` as the tar
 * `cocoon snapshot export` writes (`snapshot.json`, then one entry per file with its mode and
 * sparse PAX records: `@epoch/oci` `snapshotImportEntries`), a cloud image's disk to `cocoon image import NAME`. Inputs
 * are verified cached files; if feeding fails (or the call is aborted) the child is killed
 * before its stdin ends, so it never takes a truncated stream for a complete one.
 */
export function cocoonImporter(options: CocoonImporterOptions = {}): Importer {
  const env = options.env ?? process.env;
  const binary = options.binary || 'cocoon';
  return {
    async import(request: ImportRequest): Promise<string> {
      if (request.kind === 'snapshot') {
        await feed(
          binary,
          env,
          ['snapshot', 'import', '--name', request.name],
          request.signal,
          (stdin) => writeSnapshotTar(stdin, request.files),
        );
      } else {
        const disk = request.files[0] as MaterializedFile;
        await feed(
          binary,
          env,
          ['image', 'import', request.name],
          request.signal,
          async (stdin) => {
            for await (const chunk of createReadStream(disk.path, { highWaterMark: 1024 * 1024 })) {
              if (!stdin.write(chunk)) await once(stdin, 'drain');
            }
          },
        );
      }
      return request.name;
    },
  };
}

async function feed(
  binary: string,
  env: NodeJS.ProcessEnv,
  args: string[],
  signal: AbortSignal,
  produce: (stdin: Writable) => Promise<void>,
): Promise<void> {
  signal.throwIfAborted();
  const child = spawn(binary, args, { stdio: ['pipe', 'ignore', 'inherit'], env });
  const spawned = once(child, 'spawn').then(
    () => undefined,
    (err: Error) => err,
  );
  const stdin = child.stdin as Writable;
  // EPIPE from an importer that gave up is reported by its exit status instead.
  stdin.on('error', () => {});
  const failed = await spawned;
  if (failed) throw new CocoonImportError(`cannot run ${binary}: ${failed.message}`);
  const status = exited(child);
  const kill = () => child.kill('SIGKILL');
  signal.addEventListener('abort', kill, { once: true });
  try {
    try {
      await produce(stdin);
      signal.throwIfAborted();
    } catch (err) {
      kill();
      stdin.destroy();
      await status.catch(() => {});
      throw err;
    }
    stdin.end();
    const code = await status;
    signal.throwIfAborted();
    if (code !== 0) {
      throw new CocoonImportError(`${binary} ${args.join(' ')} exited with ${code ?? 'a signal'}`);
    }
  } finally {
    signal.removeEventListener('abort', kill);
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
}

/** The import tar of materialized snapshot files; rejects before the end-of-archive on failure. */
function writeSnapshotTar(out: Writable, files: MaterializedFile[]): Promise<void> {
  return writeTar(
    out,
    files.map((file) =>
      snapshotTarEntry(
        // Cache records written before every file carried its mode lack one.
        { ...file, mode: file.mode ?? DEFAULT_FILE_MODE },
        () => createReadStream(file.path, { highWaterMark: 1024 * 1024 }),
      ),
    ),
  );
}
