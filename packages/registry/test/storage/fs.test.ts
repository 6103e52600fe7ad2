import { mkdtemp, readdir, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SizeMismatchError } from '../../src/storage/errors.js';
import { createFsObjectStore, type FsObjectStore } from '../../src/storage/fs-store.js';
import { type DriverHarness, runDriverSuite } from './driver-suite.js';
import { failingStream, MiB, readAll } from './helpers.js';

async function tmpFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, '.tmp')).catch(() => [])).map((n) => `.tmp/${n}`);
}

async function fsHarness(): Promise<DriverHarness> {
  const root = await mkdtemp(join(tmpdir(), 'epoch-fs-store-'));
  const store = await createFsObjectStore(root);
  return {
    store,
    reopen: () => createFsObjectStore(root),
    leftovers: () => tmpFiles(root),
    childEnv: { CRASH_FS_ROOT: root },
    presigns: false,
    dispose: async () => {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

runDriverSuite('filesystem', fsHarness);

describe('filesystem store specifics', () => {
  let root: string;
  let store: FsObjectStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'epoch-fs-specific-'));
    store = await createFsObjectStore(join(root, 'data'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('errors a read whose file became shorter than it was when opened, never ending it cleanly', async () => {
    await store.put('blobs/sha256/short', Buffer.alloc(3 * MiB, 7));
    const stream = await store.read('blobs/sha256/short');
    await truncate(join(root, 'data', 'blobs', 'sha256', 'short'), MiB + 5);
    await expect(readAll(stream)).rejects.toThrow(/ended \d+ bytes early/);
  });

  it('creates the data directory and maps keys to files under it', async () => {
    await store.put('blobs/sha256/abc', 'x');
    expect((await stat(join(root, 'data', 'blobs', 'sha256', 'abc'))).size).toBe(1);
    expect(store.root).toBe(join(root, 'data'));
  });

  it('leaves no temporary file after a write, successful or not', async () => {
    await store.put('ok', Readable.from(['a', 'b']));
    await expect(store.put('bad', 'abc', { size: 4 })).rejects.toBeInstanceOf(SizeMismatchError);
    await expect(store.put('bad', failingStream([Buffer.alloc(5 * MiB)]))).rejects.toThrow();
    expect(await tmpFiles(store.root)).toEqual([]);
  });

  it('prunes empty parent directories on delete, but not the root', async () => {
    await store.put('a/b/c/d', 'x');
    await store.put('a/keep', 'y');
    await store.delete('a/b/c/d');
    expect(await readdir(join(store.root, 'a'))).toEqual(['keep']);
    await store.delete('a/keep');
    expect((await readdir(store.root)).sort()).toEqual(['.tmp']);
  });

  it('shows staging files in list, like any key', async () => {
    let staged = await store.beginStaged('_uploads/1/data');
    staged = await store.appendStaged(staged, 'abc');
    expect((await store.list('_uploads/')).objects.map((o) => [o.key, o.size])).toEqual([
      ['_uploads/1/data', 3],
    ]);
  });

  it('does not let an append change a copy of the staging file', async () => {
    let staged = await store.beginStaged('_uploads/2/data');
    staged = await store.appendStaged(staged, 'first');
    await store.copy('_uploads/2/data', 'copied');
    staged = await store.appendStaged(staged, ' second');
    expect((await readAll(await store.read('copied'))).toString()).toBe('first');
    expect((await readAll(await store.readStaged(staged))).toString()).toBe('first second');
  });

  it('drops bytes a crashed append left past the recorded size', async () => {
    let staged = await store.beginStaged('_uploads/3/data');
    staged = await store.appendStaged(staged, 'keep');
    await writeFile(join(store.root, '_uploads/3/data'), 'keepGARBAGE-FROM-A-CRASH');
    expect((await readAll(await store.readStaged(staged))).toString()).toBe('keep');
    staged = await store.appendStaged(staged, '+new');
    await store.commitStaged(staged, 'final');
    expect((await readAll(await store.read('final'))).toString()).toBe('keep+new');
  });

  it('sweeps only temporary files older than the cutoff', async () => {
    const old = join(store.root, '.tmp', 'old-leftover');
    const recent = join(store.root, '.tmp', 'recent-leftover');
    await writeFile(old, 'x');
    await writeFile(recent, 'y');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(old, hourAgo, hourAgo);
    expect(await store.sweepStaged('', new Date(Date.now() - 60_000))).toBe(1);
    expect(await tmpFiles(store.root)).toEqual(['.tmp/recent-leftover']);
  });
});
