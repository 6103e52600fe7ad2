import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, parseDigest } from '@epoch/oci';
import type { MaterializedFile, PulledKind } from './types.js';

/** The record each materialized artifact keeps beside its files (`artifact.json`). */
export interface ArtifactRecord {
  digest: Digest;
  repository: string;
  kind: PulledKind;
  /** Blobs the artifact's files are hard links of. */
  blobs: Digest[];
  /** Bytes of files that are not blob links (e.g. a reassembled multi-part disk). */
  ownBytes: number;
  files: Omit<MaterializedFile, 'path'>[];
  /** An incremental snapshot's files and the (cached) chunk index each was written from. */
  chunked?: { file: string; index: Digest }[];
}

interface State {
  /** `repository:tag` → the digest it last resolved to (the offline fallback). */
  refs: Record<string, Digest>;
  /** Artifact digest → when an ensure last used it (ms since the epoch). */
  used: Record<string, number>;
  /** Artifact digest → the name the importer registered it under. */
  imported: Record<string, string>;
}

const RECORD = '.epoch-artifact.json';

/**
 * The on-disk cache, content-addressed:
 *
 * ```
 * blobs/sha256/<hex>        verified blobs, read-only; only ever renamed into place complete
 * partial/sha256-<hex>      a blob being downloaded, with .json: the pieces already on disk
 * artifacts/sha256-<hex>/   a materialized artifact (files are hard links to blobs; metadata in
 *                           .epoch-*.json, never a layer name), renamed into
 *                           place complete with its .epoch-artifact.json
 * tmp/                      artifacts being assembled (emptied on start)
 * state.json                tag resolutions, last use, imports (rewritten atomically)
 * ```
 *
 * Whatever has its final name is complete: a crash leaves only `partial/` and `tmp/` entries.
 */
export class Cache {
  readonly dir: string;
  #state: State = { refs: {}, used: {}, imported: {} };
  #saving: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.dir = dir;
  }

  async open(): Promise<void> {
    await rm(join(this.dir, 'tmp'), { recursive: true, force: true });
    for (const sub of ['blobs/sha256', 'partial', 'artifacts', 'tmp']) {
      await mkdir(join(this.dir, sub), { recursive: true });
    }
    try {
      const doc = JSON.parse(
        await readFile(join(this.dir, 'state.json'), 'utf8'),
      ) as Partial<State>;
      this.#state = { refs: doc.refs ?? {}, used: doc.used ?? {}, imported: doc.imported ?? {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }

  partialPath(digest: Digest): string {
    return join(this.dir, 'partial', `sha256-${hexOf(digest)}`);
  }

  artifactDir(digest: Digest): string {
    return join(this.dir, 'artifacts', `sha256-${hexOf(digest)}`);
  }

  /** A fresh directory to assemble an artifact in, on the cache's file system. */
  async tempDir(): Promise<string> {
    const dir = join(this.dir, 'tmp', randomUUID());
    await mkdir(dir);
    return dir;
  }

  /** Size of a complete blob in the cache, or undefined. */
  async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch {
      return undefined;
    }
  }

  /** The artifact's record if it is materialized. */
  async artifact(digest: Digest): Promise<ArtifactRecord | undefined> {
    try {
      return JSON.parse(
        await readFile(join(this.artifactDir(digest), RECORD), 'utf8'),
      ) as ArtifactRecord;
    } catch {
      return undefined;
    }
  }

  /** Moves an assembled directory to its final name, writing its record last before the rename. */
  async commitArtifact(temp: string, record: ArtifactRecord): Promise<void> {
    await writeFile(join(temp, RECORD), JSON.stringify(record));
    try {
      await rename(temp, this.artifactDir(record.digest));
    } catch (err) {
      // Materialized meanwhile: the existing copy is complete, keep it.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await rm(temp, { recursive: true, force: true });
    }
  }

  /** All materialized artifacts. */
  async artifacts(): Promise<ArtifactRecord[]> {
    const out: ArtifactRecord[] = [];
    for (const name of await readdir(join(this.dir, 'artifacts'))) {
      if (!name.startsWith('sha256-')) continue;
      const record = await this.artifact(`sha256:${name.slice(7)}` as Digest);
      if (record) out.push(record);
    }
    return out;
  }

  /** Complete blobs and their sizes. */
  async blobs(): Promise<Map<Digest, number>> {
    const out = new Map<Digest, number>();
    for (const name of await readdir(join(this.dir, 'blobs', 'sha256'))) {
      const digest = `sha256:${name}` as Digest;
      const size = await this.blobSize(digest);
      if (size !== undefined) out.set(digest, size);
    }
    return out;
  }

  async removeArtifact(digest: Digest): Promise<void> {
    const doomed = await this.takeArtifact(digest);
    if (doomed) await rm(doomed, { recursive: true, force: true });
  }

  /**
   * Takes an artifact out of the cache without deleting its files: its directory is renamed
   * into `tmp/` (so it stops looking complete before anything in it changes, and a crash leaves
   * only a `tmp/` entry) and forgotten. The caller owns the returned directory and removes it.
   *
   * @returns the directory now holding its files, or undefined if it was not in the cache
   */
  async takeArtifact(digest: Digest): Promise<string | undefined> {
    const taken = join(this.dir, 'tmp', `taken-${randomUUID()}`);
    try {
      await rename(this.artifactDir(digest), taken);
    } catch {
      return undefined;
    }
    this.#forget(digest);
    return taken;
  }

  #forget(digest: Digest): void {
    delete this.#state.used[digest];
    delete this.#state.imported[digest];
    for (const [ref, d] of Object.entries(this.#state.refs)) {
      if (d === digest) delete this.#state.refs[ref];
    }
  }

  async removeBlob(digest: Digest): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  resolvedDigest(key: string): Digest | undefined {
    return this.#state.refs[key];
  }

  lastUsed(digest: Digest): number {
    return this.#state.used[digest] ?? 0;
  }

  importedAs(digest: Digest): string | undefined {
    return this.#state.imported[digest];
  }

  /** Records a use (and the tag's resolution, if any), then saves. */
  async touch(digest: Digest, key?: string, imported?: string): Promise<void> {
    this.#state.used[digest] = Date.now();
    if (key) this.#state.refs[key] = digest;
    if (imported !== undefined) this.#state.imported[digest] = imported;
    await this.save();
  }

  /** Writes state.json through a temp file and a rename; writes are serialized. */
  save(): Promise<void> {
    const next = this.#saving.then(async () => {
      const temp = join(this.dir, `state.json.${randomUUID()}`);
      await writeFile(temp, JSON.stringify(this.#state));
      await rename(temp, join(this.dir, 'state.json'));
    });
    this.#saving = next.catch(() => {});
    return next;
  }
}

function hexOf(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  if (algorithm !== 'sha256') throw new RangeError(`unsupported digest algorithm ${algorithm}`);
  return hex;
}
