import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import {
  checkSnapshotFileName,
  envelopeConfig,
  envelopeTarEntry,
  type TarEntry,
  writeTar,
} from '@epoch/oci';
import { CliError } from '../support/errors.js';

const ENVELOPE_LIMIT = 4 * 1024 * 1024;

/** A directory read as a snapshot: its envelope and its files, in push order. */
export interface DirectorySnapshot {
  /** `snapshot.json` as found in the directory, or the one made for it. */
  envelope: Buffer;
  /** Whether `envelope` was made here (no snapshot.json in the directory). */
  generated: boolean;
  files: { name: string; path: string; size: number; mode: number }[];
}

/**
 * Reads a plain directory as a snapshot (`epoch push --from-dir`): every regular file directly
 * in it becomes one snapshot file, in byte order of their names. `snapshot.json`, when present,
 * is the envelope (`{"version": 1, "config": {...}}`, kept verbatim); without one, the envelope
 * is `{"config":{"name":NAME},"version":1}`. Anything else (subdirectories, symbolic links,
 * devices) is refused by name rather than silently left out: a snapshot missing a file would
 * restore as a broken VM.
 */
export async function readSnapshotDirectory(dir: string, name: string): Promise<DirectorySnapshot> {
  const entries = await listDirectory(dir);
  let envelope: Buffer | undefined;
  const files: DirectorySnapshot['files'] = [];
  const names = new Set<string>();
  for (const entry of entries) {
    const path = join(dir, entry);
    const st = await lstat(path);
    if (!st.isFile()) {
      throw new CliError(
        `--from-dir ${dir}: ${entry} is ${kindOf(st)}; a snapshot directory holds only regular files`,
      );
    }
    if (entry === 'snapshot.json') {
      envelope = await readEnvelope(path, st.size);
      continue;
    }
    try {
      checkSnapshotFileName(entry, names);
    } catch (err) {
      throw new CliError(`--from-dir ${dir}: ${(err as Error).message}`);
    }
    files.push({ name: entry, path, size: st.size, mode: st.mode & 0o7777 });
  }
  if (files.length === 0) {
    throw new CliError(`--from-dir ${dir}: no files to push (a snapshot needs at least one)`);
  }
  return {
    envelope: envelope ?? Buffer.from(`${JSON.stringify({ config: { name }, version: 1 })}\n`),
    generated: envelope === undefined,
    files,
  };
}

/** The names in `dir`, in byte order; a missing or unreadable directory is a CliError. */
async function listDirectory(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`--from-dir ${dir}: no such directory`);
    if (code === 'ENOTDIR') throw new CliError(`--from-dir ${dir}: not a directory`);
    throw new CliError(`--from-dir ${dir}: ${(err as Error).message}`);
  }
  return entries.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

async function readEnvelope(path: string, size: number): Promise<Buffer> {
  if (size > ENVELOPE_LIMIT) throw new CliError(`${path} is too large for a snapshot.json`);
  const envelope = await readFile(path);
  checkEnvelope(envelope, path);
  return envelope;
}

function checkEnvelope(bytes: Buffer, path: string): void {
  try {
    envelopeConfig(bytes.toString('utf8'));
  } catch (err) {
    throw new CliError(`${path}: ${(err as Error).message}`);
  }
}

/**
 * The directory as the tar a `cocoon snapshot export` writes (snapshot.json first, then each
 * file), streamed from the files as it is read: the push reads tars, so a directory takes the
 * same path through hashing, deduplication and upload.
 */
export function snapshotDirectoryTar(snapshot: DirectorySnapshot): Readable {
  const out = new PassThrough();
  function* entries(): Generator<TarEntry> {
    yield envelopeTarEntry(snapshot.envelope);
    for (const file of snapshot.files) {
      yield {
        name: file.name,
        size: file.size,
        mode: file.mode,
        open: () => createReadStream(file.path),
      };
    }
  }
  writeTar(out, entries()).then(
    () => out.end(),
    (err: unknown) => out.destroy(err as Error),
  );
  return out;
}
