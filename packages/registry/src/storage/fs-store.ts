import { randomBytes } from 'node:crypto';
import { type Dirent, close as fsClose, fstat, open as openCallback, type Stats } from 'node:fs';
import {
  copyFile,
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { BaseObjectStore } from './base.js';
import { emptyStream, knownLength } from './body.js';
import {
  InvalidKeyError,
  ObjectNotFoundError,
  RangeNotSatisfiableError,
  SizeLimitError,
  SizeMismatchError,
  StorageError,
  StorageUnavailableError,
} from './errors.js';
import { FileRangeStream } from './fs-read.js';
import { writeAt } from './fs-write.js';
import { compareKeys, RESERVED_TOP_LEVEL } from './keys.js';
import type {
  AppendOptions,
  Body,
  ByteRange,
  CopyOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  OpOptions,
  PutOptions,
  PutResult,
  StagedObject,
  SweepOptions,
} from './object-store.js';
import { forEachLimited, mapLimited } from './retry.js';

const openFd = promisify(openCallback);
const fstatFd = promisify(fstat);

/** A publish retries when a concurrent `delete` pruned the directory it had just created. */
const PUBLISH_ATTEMPTS = 8;
/**
 * S3 keeps the key `a/b` and the key `a/b/c` side by side; a filesystem cannot have a file and a
 * directory of one name. So an object whose path is (or must become) a directory lives beside
 * it, under its name plus this suffix: a backslash never occurs in a key (`validateKey`), so that
 * name can belong to no other key. Every other object stays exactly where its key says.
 */
const BESIDE = '\\';
const PARALLEL_FILE_OPS = 16;

type Entry = { kind: 'object'; key: string } | { kind: 'prefix'; prefix: string };

/**
 * The filesystem object store, Epoch's embedded default. Each key is a file under `root`
 * (`blobs/sha256/<hex>` is `<root>/blobs/sha256/<hex>`), so a data directory can be inspected,
 * backed up or moved with ordinary tools.
 *
 * Writes go to a temporary file in `<root>/.tmp/` (same filesystem, so the final step is a
 * rename), are fsynced once at the end, then renamed into place and the parent directory fsynced:
 * a reader or a crash sees the old object or the whole new one. `ifAbsent` publishes with link(2),
 * which fails with `EEXIST` instead of replacing, so concurrent writers of one key never clobber an
 * existing object. Staged objects are plain files under their staging key, appended in place at
 * `staged.size` and renamed (or linked) into their destination on commit.
 *
 * A key that is also the prefix of other keys (`manifests/a/latest.json`, a tag, beside the
 * repository `a/latest.json`'s directory `manifests/a/latest.json/`) is stored as
 * `latest.json\\` next to that directory, as S3 semantics require both to exist (see `BESIDE`).
 */
export class FsObjectStore extends BaseObjectStore {
  readonly kind = 'filesystem' as const;
  /** Absolute path of the data directory. */
  readonly root: string;
  private readonly tmpDir: string;

  constructor(rootDir: string) {
    super();
    this.root = resolve(rootDir);
    this.tmpDir = join(this.root, RESERVED_TOP_LEVEL);
  }

  /** Creates the root and its `.tmp` directory. `createFsObjectStore` calls it for you. */
  async init(): Promise<void> {
    try {
      await mkdir(this.tmpDir, { recursive: true });
    } catch (err) {
      throw fsError(err, this.root, `cannot create the data directory ${this.root}`);
    }
  }

  protected async doStat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined> {
    options?.signal?.throwIfAborted();
    const found = await this.locate(key);
    return found && { key, size: found.info.size, lastModified: found.info.mtime };
  }

  protected async doRead(key: string, range?: ByteRange, options?: OpOptions): Promise<Readable> {
    options?.signal?.throwIfAborted();
    const { path, fd, size } = await this.openObject(key);
    try {
      const { start, count } = resolveRange(range, size, key);
      return streamFile(path, fd, start, count, key);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
  }

  protected async doPut(key: string, body: Body, options: PutOptions): Promise<PutResult> {
    options.signal?.throwIfAborted();
    const known = knownLength(body);
    if (options.size !== undefined && known !== undefined && known !== options.size) {
      throw new SizeMismatchError(options.size, known);
    }
    if (options.ifAbsent) {
      // Checked first so that re-pushing an existing multi-GiB blob writes nothing.
      const existing = await this.stat(key);
      if (existing) return { created: false, size: existing.size };
    }
    const tmp = await this.writeTemp(body, options.size, options.signal);
    try {
      return await this.publish(tmp.path, key, tmp.size, options.ifAbsent === true);
    } finally {
      await rm(tmp.path, { force: true });
    }
  }

  protected async doCopy(
    source: string,
    destination: string,
    options: CopyOptions,
  ): Promise<PutResult> {
    options.signal?.throwIfAborted();
    const sourcePath = (await this.locate(source))?.path;
    if (!sourcePath) throw new ObjectNotFoundError(source);
    if (options.ifAbsent) {
      const existing = await this.stat(destination);
      if (existing) return { created: false, size: existing.size };
    }
    const tmp = this.tmpPath();
    try {
      // A hard link costs nothing whatever the size. It is safe because published objects are
      // never modified in place (a put renames a new inode over the key); staged files, the one
      // exception, are unshared before they are modified (see `exclusive`).
      let size: number;
      try {
        await link(sourcePath, tmp);
        size = (await stat(tmp)).size;
      } catch (err) {
        if (isCode(err, 'ENOENT', 'ENOTDIR')) throw new ObjectNotFoundError(source);
        if (!isCode(err, 'EPERM', 'EXDEV', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP')) {
          throw fsError(err, source);
        }
        // No hard links here (some network and FUSE filesystems): copy the bytes instead.
        size = await copyToTemp(sourcePath, tmp, source);
      }
      return await this.publish(tmp, destination, size, options.ifAbsent === true);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  protected async doDelete(key: string, options?: OpOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await this.unlinkKey(key);
  }

  protected async doDeleteMany(keys: readonly string[], options?: OpOptions): Promise<void> {
    await forEachLimited(keys, PARALLEL_FILE_OPS, async (key) => {
      options?.signal?.throwIfAborted();
      await this.unlinkKey(key);
    });
  }

  protected async doList(prefix: string, limit: number, options: ListOptions): Promise<ListPage> {
    options.signal?.throwIfAborted();
    const { cursor, delimiter } = options;
    const slash = prefix.lastIndexOf('/');
    const base = prefix.slice(0, slash + 1);
    const namePrefix = prefix.slice(slash + 1);
    const entries: Entry[] = [];
    // One entry more than the page holds tells whether another page follows.
    const want = limit + 1;

    const walk = async (dir: string, filter: string): Promise<void> => {
      const children = await this.readDirSorted(dir, filter);
      for (const child of children) {
        if (entries.length >= want) return;
        options.signal?.throwIfAborted();
        const full = dir + child.sortKey;
        if (!child.isDir) {
          if (cursor === undefined || compareKeys(full, cursor) > 0) {
            entries.push({ kind: 'object', key: full });
          }
          continue;
        }
        if (delimiter === '/' && dir === base) {
          if (cursor !== undefined && compareKeys(full, cursor) <= 0) continue;
          if (await this.hasFile(full)) entries.push({ kind: 'prefix', prefix: full });
          continue;
        }
        // Every key under `full` sorts before the cursor: skip the whole subtree.
        if (cursor !== undefined && compareKeys(full, cursor) < 0 && !cursor.startsWith(full)) {
          continue;
        }
        await walk(full, '');
      }
    };
    await walk(base, namePrefix);

    const page = entries.slice(0, limit);
    const objects: ObjectInfo[] = [];
    const prefixes: string[] = [];
    const infos = await mapLimited(page, PARALLEL_FILE_OPS, async (entry) =>
      entry.kind === 'object' ? this.stat(entry.key) : undefined,
    );
    page.forEach((entry, i) => {
      if (entry.kind === 'prefix') prefixes.push(entry.prefix);
      else {
        const info = infos[i];
        // Deleted between the directory read and the stat: it is simply not there any more.
        if (info) objects.push(info);
      }
    });
    const last = page.at(-1);
    const result: ListPage = { objects, prefixes };
    if (entries.length > limit && last) {
      result.cursor = last.kind === 'object' ? last.key : last.prefix;
    }
    return result;
  }

  protected async doPresignGet(
    _key: string,
    _expiresInSeconds: number,
  ): Promise<string | undefined> {
    return undefined;
  }

  protected async doBeginStaged(stagingKey: string, options?: OpOptions): Promise<StagedObject> {
    options?.signal?.throwIfAborted();
    const primary = this.pathOf(stagingKey);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ensureParent(dirname(primary));
        const path = (await isDirectory(primary)) ? primary + BESIDE : primary;
        const fh = await open(path, 'w');
        try {
          await fh.datasync();
        } finally {
          await fh.close();
        }
        await fsyncDir(dirname(primary));
        break;
      } catch (err) {
        if (isCode(err, 'ENOENT') && attempt < PUBLISH_ATTEMPTS) continue;
        throw fsError(err, stagingKey);
      }
    }
    return { stagingKey, size: 0, driverState: { driver: 'filesystem' } };
  }

  protected async doAppendStaged(
    staged: StagedObject,
    body: Body,
    options: AppendOptions,
  ): Promise<StagedObject> {
    checkStaged(staged);
    options.signal?.throwIfAborted();
    const { maxBytes } = options;
    const room = maxBytes === undefined ? undefined : maxBytes - staged.size;
    const known = knownLength(body);
    if (room !== undefined && (room < 0 || (known !== undefined && known > room))) {
      throw new SizeLimitError(maxBytes ?? 0);
    }
    const path = await this.stagedPath(staged.stagingKey);
    const fh = await openStaged(path, staged.stagingKey);
    try {
      const before = await this.exclusive(fh, path, staged.stagingKey);
      const onDisk = before.size;
      if (onDisk < staged.size) throw shorterThanRecorded(staged, onDisk);
      let written: number;
      try {
        written = await writeAt(fh.handle, body, staged.size, {
          max: room,
          onOverflow: () => new SizeLimitError(maxBytes ?? 0),
          signal: options.signal,
        });
        // Bytes past the recorded size are what a crashed append left behind: drop them.
        if (onDisk > staged.size + written) await fh.handle.truncate(staged.size + written);
        await fh.handle.datasync();
      } catch (err) {
        // Back to the recorded size, so the caller can retry from `staged.size`.
        await fh.handle.truncate(staged.size);
        await fh.handle.datasync();
        throw err instanceof StorageError || isAbort(err) ? err : fsError(err, staged.stagingKey);
      }
      return { ...staged, size: staged.size + written };
    } finally {
      await fh.handle.close();
    }
  }

  protected async doReadStaged(staged: StagedObject, options?: OpOptions): Promise<Readable> {
    checkStaged(staged);
    options?.signal?.throwIfAborted();
    const { path, fd, size: onDisk } = await this.openObject(staged.stagingKey);
    try {
      if (onDisk < staged.size) throw shorterThanRecorded(staged, onDisk);
      return streamFile(path, fd, 0, staged.size, staged.stagingKey);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
  }

  protected async doCommitStaged(
    staged: StagedObject,
    destination: string,
    options: CopyOptions,
  ): Promise<PutResult> {
    checkStaged(staged);
    options.signal?.throwIfAborted();
    const path = await this.stagedPath(staged.stagingKey);
    const fh = await openStaged(path, staged.stagingKey);
    try {
      const onDisk = (await this.exclusive(fh, path, staged.stagingKey)).size;
      if (onDisk < staged.size) throw shorterThanRecorded(staged, onDisk);
      if (onDisk > staged.size) {
        await fh.handle.truncate(staged.size);
        await fh.handle.datasync();
      }
    } finally {
      await fh.handle.close();
    }
    if (options.ifAbsent) {
      const existing = await this.stat(destination);
      if (existing) {
        await this.unlinkKey(staged.stagingKey);
        return { created: false, size: existing.size };
      }
    }
    const result = await this.publish(path, destination, staged.size, options.ifAbsent === true);
    // After a rename the staging file is gone; after a link (or a lost ifAbsent race) it remains.
    await this.unlinkKey(staged.stagingKey);
    return result;
  }

  protected async doAbortStaged(staged: StagedObject, options?: OpOptions): Promise<void> {
    checkStaged(staged);
    options?.signal?.throwIfAborted();
    await this.unlinkKey(staged.stagingKey);
  }

  /**
   * Removes temporary files in `<root>/.tmp/` last modified before `olderThan`: what a crash during
   * a put or copy leaves behind. Staged objects need nothing more (their files are visible to `list`
   * and the registry deletes those it abandons). `prefix` cannot narrow this down because temporary
   * files do not belong to a key; an active write keeps bumping its file's mtime, so it is never
   * swept as long as `olderThan` is further back than a body can stall.
   */
  protected async doSweepStaged(
    _prefix: string,
    olderThan: Date,
    options?: SweepOptions,
  ): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return 0;
      throw fsError(err, RESERVED_TOP_LEVEL);
    }
    let removed = 0;
    await forEachLimited(names, PARALLEL_FILE_OPS, async (name) => {
      options?.signal?.throwIfAborted();
      const path = join(this.tmpDir, name);
      try {
        const info = await lstat(path);
        if (info.mtime >= olderThan) return;
        await rm(path, { force: true, recursive: true });
        removed++;
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw fsError(err, `${RESERVED_TOP_LEVEL}/${name}`);
      }
    });
    return removed;
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  /** Where `key`'s file is when nothing else claims its name (see `BESIDE` for when it is not). */
  private pathOf(key: string): string {
    return join(this.root, key);
  }

  /** The file holding `key` and its stats, or `undefined` when there is no such object. */
  private async locate(key: string): Promise<{ path: string; info: Stats } | undefined> {
    // The usual place first; beside it only if that is a directory or missing (the object may be
    // on its way beside a directory being created at this very moment).
    for (const path of [this.pathOf(key), this.pathOf(key) + BESIDE]) {
      const info = await statFile(path, key);
      if (info) return { path, info };
    }
    return undefined;
  }

  /** Opens `key`'s file for reading (see `openForRead`), wherever it is. */
  private async openObject(key: string): Promise<{ path: string; fd: number; size: number }> {
    const primary = this.pathOf(key);
    try {
      return { path: primary, ...(await openForRead(primary, key)) };
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
    }
    const beside = primary + BESIDE;
    return { path: beside, ...(await openForRead(beside, key)) };
  }

  /** The file of a staged object: where `locate` finds it, else (to report it missing) its path. */
  private async stagedPath(key: string): Promise<string> {
    return (await this.locate(key))?.path ?? this.pathOf(key);
  }

  /**
   * `mkdir -p dir`. Where one of the directories to create is an object's file (the key `a/b`
   * when `a/b/c` is being written), the file moves beside it first (see `BESIDE`): a reader
   * looking for that object meanwhile finds it in one place or the other.
   */
  private async ensureParent(dir: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await ensureDir(dir, this.root);
        return;
      } catch (err) {
        if (!isCode(err, 'EEXIST', 'ENOTDIR') || attempt >= PUBLISH_ATTEMPTS) throw err;
        const file = await firstFileOnPath(this.root, dir);
        if (file === undefined) continue;
        try {
          // Over an older copy beside it, if any: the file being moved is the newer one.
          await rename(file, file + BESIDE);
          await fsyncDir(dirname(file));
        } catch (moveErr) {
          if (!isCode(moveErr, 'ENOENT')) throw moveErr;
        }
      }
    }
  }

  private tmpPath(): string {
    return join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`);
  }

  /** Writes `body` to a fresh temporary file, fsynced, and returns its path and size. */
  private async writeTemp(
    body: Body,
    expected: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ path: string; size: number }> {
    const path = this.tmpPath();
    let fh: FileHandle;
    try {
      fh = await open(path, 'wx');
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw fsError(err, RESERVED_TOP_LEVEL);
      // `.tmp` was removed behind our back (a cleanup script): recreate it once.
      await this.init();
      fh = await open(path, 'wx');
    }
    try {
      const size = await writeAt(fh, body, 0, {
        max: expected,
        onOverflow: (seen) => new SizeMismatchError(expected ?? 0, seen),
        signal,
      });
      if (expected !== undefined && size !== expected) throw new SizeMismatchError(expected, size);
      // One fsync at the end, not one per chunk: the rename is what makes the object visible, so
      // durability is only needed before it.
      await fh.datasync();
      await fh.close();
      return { path, size };
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(path, { force: true });
      throw err instanceof StorageError || isAbort(err) ? err : fsError(err, RESERVED_TOP_LEVEL);
    }
  }

  /**
   * Moves (or, with `ifAbsent`, links) the file at `from` to `key`, creating parent directories,
   * and fsyncs the directory so the new name survives a crash.
   */
  private async publish(
    from: string,
    key: string,
    size: number,
    ifAbsent: boolean,
  ): Promise<PutResult> {
    const primary = this.pathOf(key);
    const dir = dirname(primary);
    const place = (to: string) => (ifAbsent ? link(from, to) : rename(from, to));
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ensureParent(dir);
        try {
          await place(primary);
        } catch (err) {
          // The key's path is a directory (other keys extend it): the object goes beside it.
          if (!(await isDirectory(primary))) throw err;
          await place(primary + BESIDE);
        }
        await fsyncDir(dir);
        return { created: true, size };
      } catch (err) {
        if (ifAbsent && isCode(err, 'EEXIST')) {
          const existing = await this.stat(key);
          return { created: false, size: existing?.size ?? size };
        }
        if (ifAbsent && isCode(err, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK')) {
          // No hard links on this filesystem: fall back to check-then-rename. Only a concurrent
          // writer of the same key can slip in between, and content-addressed keys make that
          // harmless (both wrote the same bytes).
          if (await this.stat(key)) return { created: false, size };
          ifAbsent = false;
          continue;
        }
        // A concurrent delete pruned the directory between mkdir and rename: make it again.
        if (isCode(err, 'ENOENT') && attempt < PUBLISH_ATTEMPTS) continue;
        if (isCode(err, 'EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EEXIST')) {
          throw new StorageError(`key ${key} conflicts with another key's path on disk`, {
            cause: err,
          });
        }
        throw fsError(err, key);
      }
    }
  }

  /**
   * Unlinks a key's file, wherever it is (both places: an older copy may have been left beside a
   * directory that has since been pruned), and prunes its empty parent directories; missing is
   * fine.
   */
  private async unlinkKey(key: string): Promise<void> {
    const path = this.pathOf(key);
    for (const file of [path, path + BESIDE]) {
      try {
        await unlink(file);
      } catch (err) {
        // Gone already (a commit renamed it, say), or the path runs through a file: nothing here.
        if (isCode(err, 'ENOENT', 'ENOTDIR')) continue;
        // A directory is not an object, so there is nothing to delete.
        if (isCode(err, 'EISDIR', 'EPERM') && (await isDirectory(file))) continue;
        throw fsError(err, key);
      }
    }
    await this.pruneDirs(dirname(path));
  }

  /** Best effort: removes empty directories from `dir` up to (not including) the root. */
  private async pruneDirs(dir: string): Promise<void> {
    while (dir.startsWith(`${this.root}/`) && dir !== this.tmpDir) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty, already gone or not ours to remove: all fine
      }
      dir = dirname(dir);
    }
  }

  /**
   * Makes sure the staged file `fh` is the only name for its inode before it is modified in place:
   * `copy` may have hard-linked it to another key, which must not change with it.
   */
  private async exclusive(fh: { handle: FileHandle }, path: string, key: string): Promise<Stats> {
    const info = await fh.handle.stat();
    if (info.nlink <= 1) return info;
    const tmp = this.tmpPath();
    try {
      await copyToTemp(path, tmp, key);
      await rename(tmp, path);
      await fsyncDir(dirname(path));
    } catch (err) {
      await rm(tmp, { force: true });
      throw fsError(err, key);
    }
    await fh.handle.close();
    fh.handle = await open(path, 'r+');
    return fh.handle.stat();
  }

  private async readDirSorted(
    dir: string,
    filter: string,
  ): Promise<{ sortKey: string; isDir: boolean }[]> {
    let dirents: Dirent[];
    try {
      dirents = await readdir(join(this.root, dir), { withFileTypes: true });
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return [];
      throw fsError(err, dir);
    }
    const children: { sortKey: string; isDir: boolean }[] = [];
    for (const d of dirents) {
      if (dir === '' && d.name === RESERVED_TOP_LEVEL) continue;
      // A file beside a directory holds the key without the suffix (see `BESIDE`).
      const name = d.isFile() && d.name.endsWith(BESIDE) ? d.name.slice(0, -1) : d.name;
      if (!name.startsWith(filter)) continue;
      // Symlinks, sockets and the like are not objects; this driver never creates them.
      if (d.isDirectory()) children.push({ sortKey: `${name}/`, isDir: true });
      else if (d.isFile()) children.push({ sortKey: name, isDir: false });
    }
    // A directory sorts as `name/`: all its keys share that prefix, so comparing it with its
    // siblings this way yields exactly the byte order of the full keys.
    children.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    // One key in both places (an older copy left beside a pruned directory) is one object.
    return children.filter((c, i) => i === 0 || c.sortKey !== children[i - 1]?.sortKey);
  }

  /** Whether a directory holds at least one file somewhere (empty leftovers are not prefixes). */
  private async hasFile(dir: string): Promise<boolean> {
    for (const child of await this.readDirSorted(dir, '')) {
      if (!child.isDir) return true;
      if (await this.hasFile(dir + child.sortKey)) return true;
    }
    return false;
  }
}

/** Creates the data directory if needed and returns a filesystem store rooted there. */
export async function createFsObjectStore(rootDir: string): Promise<FsObjectStore> {
  const store = new FsObjectStore(rootDir);
  await store.init();
  return store;
}

function resolveRange(
  range: ByteRange | undefined,
  size: number,
  key: string,
): { start: number; count: number } {
  if (!range) return { start: 0, count: size };
  // The base checked the offset and length.
  const { offset, length } = range;
  if (offset > size) throw new RangeNotSatisfiableError(key, size);
  const available = size - offset;
  return { start: offset, count: length === undefined ? available : Math.min(length, available) };
}

function streamFile(path: string, fd: number, start: number, count: number, key: string): Readable {
  if (count === 0) {
    closeFd(fd);
    return emptyStream();
  }
  return new FileRangeStream(fd, start, count, key, path, (err) => fsError(err, key));
}

/**
 * Opens an object for reading and returns a numeric descriptor with the size it had at open time.
 * Numeric descriptors allow callback-based positional reads, which move bytes about twice as fast
 * as a `FileHandle` stream.
 */
async function openForRead(path: string, key: string): Promise<{ fd: number; size: number }> {
  let fd: number;
  try {
    fd = await openFd(path, 'r');
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw new ObjectNotFoundError(key);
    throw fsError(err, key);
  }
  try {
    const info = await fstatFd(fd);
    // open(2) of a directory for reading succeeds on Linux, but a directory is not an object.
    if (!info.isFile()) throw new ObjectNotFoundError(key);
    return { fd, size: info.size };
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

function closeFd(fd: number): void {
  fsClose(fd, () => {});
}

async function openStaged(path: string, key: string): Promise<{ handle: FileHandle }> {
  try {
    return { handle: await open(path, 'r+') };
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw new ObjectNotFoundError(key);
    throw fsError(err, key);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isDirectory() === true;
}

/** The first regular file among the directories from `root` (excluded) down to `dir`. */
async function firstFileOnPath(root: string, dir: string): Promise<string | undefined> {
  const parts = dir.slice(root.length + 1).split('/');
  let path = root;
  for (const part of parts) {
    path = join(path, part);
    const info = await lstat(path).catch(() => undefined);
    if (info === undefined) return undefined;
    if (info.isFile()) return path;
  }
  return undefined;
}

async function statFile(path: string, key: string): Promise<Stats | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info : undefined;
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw fsError(err, key);
  }
}

/** Copies `from` to the new file `to` (byte copy, no reflink requested) and fsyncs it. */
async function copyToTemp(from: string, to: string, key: string): Promise<number> {
  try {
    await copyFile(from, to);
    const fh = await open(to, 'r+');
    try {
      await fh.datasync();
      return (await fh.stat()).size;
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (isCode(err, 'ENOENT')) throw new ObjectNotFoundError(key);
    throw fsError(err, key);
  }
}

/**
 * `mkdir -p` that also fsyncs the directories it created into their parents, so a new object's
 * path survives a crash along with the object.
 */
async function ensureDir(dir: string, root: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // Everything from `first` down to `dir` is new; each new entry lives in its parent directory.
  const created: string[] = [];
  for (let d = dir; d.length >= first.length; d = dirname(d)) created.push(d);
  for (const d of [dirname(first), ...created.reverse()]) {
    if (d.length >= root.length) await fsyncDir(d).catch(() => {});
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function checkStaged(staged: StagedObject): void {
  // The base checked the staging key.
  const state = staged.driverState;
  if (
    !Number.isSafeInteger(staged.size) ||
    staged.size < 0 ||
    typeof state !== 'object' ||
    state === null ||
    Array.isArray(state) ||
    state.driver !== 'filesystem'
  ) {
    throw new StorageError(`not a staged object of the filesystem store: ${staged.stagingKey}`);
  }
}

function shorterThanRecorded(staged: StagedObject, onDisk: number): StorageError {
  return new StorageError(
    `staged object ${staged.stagingKey} holds ${onDisk} bytes, fewer than the ${staged.size} recorded`,
  );
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    typeof err.code === 'string' &&
    codes.includes(err.code)
  );
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/** Translates a `node:fs` failure into the storage layer's errors. */
function fsError(err: unknown, key: string, message?: string): Error {
  if (err instanceof StorageError || err instanceof InvalidKeyError || isAbort(err)) {
    return err as Error;
  }
  if (isCode(err, 'ENOENT')) return new ObjectNotFoundError(key, { cause: err });
  const code = isCode(err, 'EIO', 'EAGAIN', 'EMFILE', 'ENFILE', 'EBUSY', 'ETIMEDOUT')
    ? 'unavailable'
    : 'error';
  const text =
    message ?? `filesystem ${code} on ${key}: ${err instanceof Error ? err.message : err}`;
  return code === 'unavailable'
    ? new StorageUnavailableError(text, { cause: err })
    : new StorageError(text, { cause: err });
}
