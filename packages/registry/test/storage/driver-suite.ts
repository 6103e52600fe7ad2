import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  InvalidKeyError,
  ObjectNotFoundError,
  RangeNotSatisfiableError,
  SizeLimitError,
  SizeMismatchError,
} from '../../src/storage/errors.js';
import type { Body, ObjectStore, StagedObject } from '../../src/storage/object-store.js';
import {
  type S3Capabilities,
  UnsupportedStorageFeatureError,
} from '../../src/storage/s3-capabilities.js';
import {
  digestOf,
  failingStream,
  generated,
  generatedBytes,
  MiB,
  peakRssGrowth,
  readAll,
  sha256,
} from './helpers.js';

/** One driver under test, over fresh, empty storage. */
export interface DriverHarness {
  store: ObjectStore;
  /** Another driver instance over the same storage, as another process would open it. */
  reopen(): Promise<ObjectStore>;
  /**
   * Backend leftovers that `list` does not show: temporary files on disk, multipart uploads on
   * S3. Empty after a clean run and after `sweepStaged`.
   */
  leftovers(): Promise<string[]>;
  /** Environment that makes `crash-child.mjs` open this same storage. */
  childEnv: Record<string, string>;
  /** Whether `presignGet` returns URLs. */
  presigns: boolean;
  /**
   * The optional S3 features the store found on its server (undefined for the filesystem, which
   * has the equivalent of all of them). Where one is missing, the tests that depend on it check
   * the driver's documented fallback instead (see `s3-capabilities.ts`).
   */
  capabilities?: S3Capabilities;
  dispose(): Promise<void>;
}

export interface SuiteOptions {
  /** Run the ≥ 256 MiB streaming tests (default true). */
  large?: boolean;
  /** Run the SIGKILL crash tests (default true). */
  crash?: boolean;
}

const LARGE = 256 * MiB;
const LARGE_TIMEOUT = 600_000;
/** RSS growth allowed while ≥ 256 MiB stream through: bounded memory means far below the size. */
const RSS_BUDGET = 150 * MiB;
const crashChild = fileURLToPath(new URL('./crash-child.mjs', import.meta.url));
const builtIndex = fileURLToPath(new URL('../../dist/storage/index.js', import.meta.url));

const text = async (stream: Readable): Promise<string> => (await readAll(stream)).toString('utf8');

async function listAll(store: ObjectStore, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, { cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}

/**
 * For tests that write a thousand objects or more: a few seconds on an idle machine, but on a
 * real S3 server (Ceph RGW on the same two loaded cores) 1–2 minutes were seen.
 */
const BULK_TIMEOUT = 180_000;

async function putMany(store: ObjectStore, keys: string[], parallel = 32): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < keys.length) {
        const key = keys[next++] ?? '';
        await store.put(key, key);
      }
    }),
  );
}

/**
 * The object-store contract, run against one driver. Every driver must pass all of it: the fs
 * and S3 test files call this with their own harness factory.
 */
export function runDriverSuite(
  name: string,
  factory: () => Promise<DriverHarness>,
  options: SuiteOptions = {},
): void {
  describe(`object store contract: ${name}`, () => {
    let h: DriverHarness;
    let store: ObjectStore;
    beforeEach(async () => {
      h = await factory();
      store = h.store;
    });
    afterEach(async () => {
      await h.dispose();
    });
    /** Whether the backend has `feature` (the filesystem has everything's equivalent). */
    const has = (feature: keyof S3Capabilities): boolean => h.capabilities?.[feature] ?? true;
    /**
     * What concurrent `ifAbsent` writers of one key may report: exactly one creator where the
     * backend makes that write exclusive; where it cannot (no `If-None-Match` on that operation),
     * at least one, and every one that reports `created: false` saw a whole object.
     */
    const expectCreators = (results: { created: boolean }[], exclusive: boolean): void => {
      const creators = results.filter((r) => r.created).length;
      if (exclusive) expect(creators).toBe(1);
      else expect(creators).toBeGreaterThanOrEqual(1);
    };

    describe('put and read', () => {
      it('round-trips a string', async () => {
        expect(await store.put('a/b.txt', 'héllo wörld')).toEqual({
          created: true,
          size: Buffer.byteLength('héllo wörld'),
        });
        expect(await text(await store.read('a/b.txt'))).toBe('héllo wörld');
      });

      it('round-trips a Uint8Array (not a Buffer)', async () => {
        const bytes = new Uint8Array([0, 1, 2, 250, 255]);
        expect(await store.put('bin', bytes)).toEqual({ created: true, size: 5 });
        expect([...(await readAll(await store.read('bin')))]).toEqual([0, 1, 2, 250, 255]);
      });

      it('round-trips a Node stream of many chunks, and object-mode string chunks', async () => {
        const expected = await generatedBytes(3 * MiB + 17, { chunk: 64 * 1024 + 1 });
        const { stream } = generated(3 * MiB + 17, { chunk: 64 * 1024 + 1 });
        expect(await store.put('stream', stream)).toEqual({ created: true, size: expected.length });
        expect(sha256(await readAll(await store.read('stream')))).toBe(sha256(expected));
        await store.put('strings', Readable.from(['ab', 'cd', '', 'e']));
        expect(await text(await store.read('strings'))).toBe('abcde');
      });

      it('round-trips a Web ReadableStream', async () => {
        const parts = [new Uint8Array([1, 2]), new Uint8Array([3]), new Uint8Array([4, 5, 6])];
        const web = new ReadableStream<Uint8Array>({
          start(controller) {
            for (const p of parts) controller.enqueue(p);
            controller.close();
          },
        });
        expect(await store.put('web', web)).toEqual({ created: true, size: 6 });
        expect([...(await readAll(await store.read('web')))]).toEqual([1, 2, 3, 4, 5, 6]);
      });

      it('stores empty objects', async () => {
        expect(await store.put('empty', '')).toEqual({ created: true, size: 0 });
        expect(await store.put('empty-stream', Readable.from([]))).toEqual({
          created: true,
          size: 0,
        });
        expect((await readAll(await store.read('empty'))).length).toBe(0);
        expect((await store.stat('empty-stream'))?.size).toBe(0);
      });

      it('round-trips a body longer than one S3 part (multipart path)', async () => {
        const size = 23 * MiB + 5;
        const { stream, digest } = generated(size);
        expect(await store.put('multi', stream, { size })).toEqual({ created: true, size });
        expect(await digestOf(await store.read('multi'))).toEqual({ sha256: await digest, size });
        // And a large body held in memory.
        const bytes = await generatedBytes(12 * MiB, { seed: 2 });
        expect(await store.put('multi-bytes', bytes)).toEqual({
          created: true,
          size: bytes.length,
        });
        expect(sha256(await readAll(await store.read('multi-bytes')))).toBe(sha256(bytes));
      });

      it('replaces an existing object without ifAbsent', async () => {
        await store.put('k', 'one');
        expect(await store.put('k', 'second')).toEqual({ created: true, size: 6 });
        expect(await text(await store.read('k'))).toBe('second');
      });

      it('stat gives size and modification time, or undefined', async () => {
        const before = Date.now();
        await store.put('s/t', '12345');
        const info = await store.stat('s/t');
        expect(info?.key).toBe('s/t');
        expect(info?.size).toBe(5);
        // S3 dates have whole seconds.
        expect(info?.lastModified.getTime()).toBeGreaterThanOrEqual(before - 2000);
        expect(info?.lastModified.getTime()).toBeLessThanOrEqual(Date.now() + 2000);
        expect(await store.stat('s/missing')).toBeUndefined();
        expect(await store.stat('s')).toBeUndefined();
      });

      it('accepts contentType', async () => {
        await store.put('typed', '{}', { contentType: 'application/json' });
        expect(await text(await store.read('typed'))).toBe('{}');
      });
    });

    describe('size option', () => {
      it('accepts a body of exactly the declared size', async () => {
        expect(await store.put('ok', 'abc', { size: 3 })).toEqual({ created: true, size: 3 });
        const { stream } = generated(MiB);
        expect(await store.put('ok2', stream, { size: MiB })).toEqual({ created: true, size: MiB });
      });

      const mismatches: [string, () => Body, number][] = [
        ['short string', () => 'ab', 3],
        ['long string', () => 'abcd', 3],
        ['short stream', () => Readable.from([Buffer.alloc(100)]), 101],
        ['long stream', () => Readable.from([Buffer.alloc(100), Buffer.alloc(100)]), 150],
        ['long multipart stream', () => generated(12 * MiB).stream, 11 * MiB],
        ['short multipart stream', () => generated(12 * MiB).stream, 13 * MiB],
      ];
      it.each(mismatches)(
        'rejects a %s with SizeMismatchError and stores nothing',
        async (_, body, size) => {
          await expect(store.put('mismatch', body(), { size })).rejects.toBeInstanceOf(
            SizeMismatchError,
          );
          expect(await store.stat('mismatch')).toBeUndefined();
          expect(await listAll(store)).toEqual([]);
          expect(await h.leftovers()).toEqual([]);
        },
      );

      it('keeps the previous object when a replacement has the wrong size', async () => {
        await store.put('keep', 'original');
        await expect(
          store.put('keep', Readable.from(['rep', 'lacement']), { size: 5 }),
        ).rejects.toBeInstanceOf(SizeMismatchError);
        expect(await text(await store.read('keep'))).toBe('original');
      });
    });

    describe('ifAbsent', () => {
      it('creates once and then leaves the object untouched', async () => {
        expect(await store.put('blob', 'first', { ifAbsent: true })).toEqual({
          created: true,
          size: 5,
        });
        expect(await store.put('blob', 'second!', { ifAbsent: true })).toEqual({
          created: false,
          size: 5,
        });
        const stream = generated(12 * MiB).stream;
        expect(await store.put('blob', stream, { ifAbsent: true })).toEqual({
          created: false,
          size: 5,
        });
        expect(await text(await store.read('blob'))).toBe('first');
      });

      it('applies to copies', async () => {
        await store.put('src', 'source');
        await store.put('dst', 'existing');
        expect(await store.copy('src', 'dst', { ifAbsent: true })).toEqual({
          created: false,
          size: 8,
        });
        expect(await text(await store.read('dst'))).toBe('existing');
        expect(await store.copy('src', 'new', { ifAbsent: true })).toEqual({
          created: true,
          size: 6,
        });
      });
    });

    describe('ranges', () => {
      const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
      const ranged = async (offset: number, length?: number) =>
        readAll(await store.read('r', length === undefined ? { offset } : { offset, length }));
      beforeEach(async () => {
        await store.put('r', data);
      });

      it('reads from offset 0, whole and partial', async () => {
        expect((await ranged(0)).equals(data)).toBe(true);
        expect((await ranged(0, 10)).equals(data.subarray(0, 10))).toBe(true);
      });

      it('reads the last byte', async () => {
        expect((await ranged(999, 1)).equals(data.subarray(999))).toBe(true);
        expect((await ranged(999)).equals(data.subarray(999))).toBe(true);
      });

      it('reads a middle range', async () => {
        expect((await ranged(100, 400)).equals(data.subarray(100, 500))).toBe(true);
      });

      it('yields an empty stream at offset == size', async () => {
        expect((await ranged(1000)).length).toBe(0);
        expect((await ranged(1000, 5)).length).toBe(0);
        expect((await ranged(1000, 0)).length).toBe(0);
      });

      it('rejects an offset past the end', async () => {
        await expect(store.read('r', { offset: 1001 })).rejects.toBeInstanceOf(
          RangeNotSatisfiableError,
        );
        await expect(store.read('r', { offset: 5000, length: 1 })).rejects.toBeInstanceOf(
          RangeNotSatisfiableError,
        );
        await expect(store.read('r', { offset: 1001, length: 0 })).rejects.toBeInstanceOf(
          RangeNotSatisfiableError,
        );
      });

      it('clamps a length past the end', async () => {
        expect((await ranged(990, 100)).equals(data.subarray(990))).toBe(true);
      });

      it('reads zero-length ranges', async () => {
        expect((await ranged(0, 0)).length).toBe(0);
        expect((await ranged(500, 0)).length).toBe(0);
      });

      it('reads ranges of an empty object', async () => {
        await store.put('e', '');
        expect((await readAll(await store.read('e', { offset: 0 }))).length).toBe(0);
        expect((await readAll(await store.read('e', { offset: 0, length: 3 }))).length).toBe(0);
        await expect(store.read('e', { offset: 1 })).rejects.toBeInstanceOf(
          RangeNotSatisfiableError,
        );
      });

      it('reads ranges across S3 part boundaries', async () => {
        const big = await generatedBytes(21 * MiB, { seed: 3 });
        await store.put('big', Readable.from([big]));
        const at = 10 * MiB - 7;
        const got = await readAll(await store.read('big', { offset: at, length: 20 }));
        expect(got.equals(big.subarray(at, at + 20))).toBe(true);
      });
    });

    describe('not found', () => {
      it('stat, read and copy report missing objects', async () => {
        expect(await store.stat('nope')).toBeUndefined();
        await expect(store.read('nope')).rejects.toBeInstanceOf(ObjectNotFoundError);
        await expect(store.read('nope', { offset: 3, length: 2 })).rejects.toBeInstanceOf(
          ObjectNotFoundError,
        );
        await expect(store.read('nope', { offset: 0, length: 0 })).rejects.toBeInstanceOf(
          ObjectNotFoundError,
        );
        const err = await store.copy('nope', 'dest').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ObjectNotFoundError);
        expect((err as ObjectNotFoundError).key).toBe('nope');
        expect(await store.stat('dest')).toBeUndefined();
      });

      it('treats a "directory" of other keys as no object', async () => {
        await store.put('dir/child', 'x');
        expect(await store.stat('dir')).toBeUndefined();
        await expect(store.read('dir')).rejects.toBeInstanceOf(ObjectNotFoundError);
        await store.delete('dir');
        expect(await store.stat('dir/child')).toBeDefined();
      });
    });

    // S3 keeps `a/b` and `a/b/c` side by side (a tag `latest.json` beside a child repository
    // `latest.json/`); every driver must, in either order of writes.
    describe('a key that is also a prefix of other keys', () => {
      it.each([
        ['the key first', ['t/latest.json', 't/latest.json/_digests/x.json']],
        ['the longer key first', ['t/latest.json/_digests/x.json', 't/latest.json']],
      ])('keeps both objects when %s', async (_, order) => {
        for (const key of order as string[]) await store.put(key, `body of ${key}`);
        for (const key of order as string[]) {
          expect(await text(await store.read(key))).toBe(`body of ${key}`);
          expect((await store.stat(key))?.size).toBe(`body of ${key}`.length);
        }
        expect(await listAll(store)).toEqual(['t/latest.json', 't/latest.json/_digests/x.json']);
        const rolled = await store.list('t/', { delimiter: '/' });
        expect(rolled.objects.map((o) => o.key)).toEqual(['t/latest.json']);
        expect(rolled.prefixes).toEqual(['t/latest.json/']);

        await store.put('t/latest.json', 'replaced');
        expect(await text(await store.read('t/latest.json'))).toBe('replaced');
        expect(await store.put('t/latest.json', 'again', { ifAbsent: true })).toMatchObject({
          created: false,
        });
        await store.copy('t/latest.json', 't/copy.json');
        await store.put('t/copy.json/inner', 'inner');
        expect(await text(await store.read('t/copy.json'))).toBe('replaced');

        await store.delete('t/latest.json/_digests/x.json');
        expect(await text(await store.read('t/latest.json'))).toBe('replaced');
        await store.put('t/latest.json', 'after the directory went');
        expect(await listAll(store)).toEqual(['t/copy.json', 't/copy.json/inner', 't/latest.json']);
        expect(await text(await store.read('t/latest.json'))).toBe('after the directory went');
        await store.delete('t/latest.json');
        expect(await store.stat('t/latest.json')).toBeUndefined();
        expect(await listAll(store)).toEqual(['t/copy.json', 't/copy.json/inner']);
      });

      it('commits and reads a staged object whose key is also a prefix', async () => {
        await store.put('s/obj/child', 'child');
        const staged = await store.beginStaged('s/obj');
        const grown = await store.appendStaged(staged, 'staged bytes');
        expect(await text(await store.readStaged(grown))).toBe('staged bytes');
        await store.commitStaged(grown, 's/done');
        await store.put('s/done/child', 'child');
        expect(await text(await store.read('s/done'))).toBe('staged bytes');
        expect(await store.stat('s/obj')).toBeUndefined();
      });

      it('creates an ifAbsent object once beside a directory', async () => {
        await store.put('i/k/child', 'child');
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, i) => store.put('i/k', `v${i}`, { ifAbsent: true })),
        );
        // One creator where PutObject honours If-None-Match; without it (check, then write)
        // racing writers may each create it, and one whole value stays.
        expectCreators(results, has('conditionalPut'));
        expect(['v0', 'v1', 'v2', 'v3', 'v4']).toContain(await text(await store.read('i/k')));
        expect(await store.put('i/k', 'late', { ifAbsent: true })).toMatchObject({
          created: false,
        });
        expect(await text(await store.read('i/k/child'))).toBe('child');
      });
    });

    describe('copy', () => {
      it('copies bytes and keeps the source', async () => {
        await store.put('from/here', 'payload');
        expect(await store.copy('from/here', 'to/there')).toEqual({ created: true, size: 7 });
        expect(await text(await store.read('to/there'))).toBe('payload');
        expect(await text(await store.read('from/here'))).toBe('payload');
      });

      it('replaces the destination without ifAbsent', async () => {
        await store.put('a', 'new');
        await store.put('b', 'old contents');
        expect(await store.copy('a', 'b')).toEqual({ created: true, size: 3 });
        expect(await text(await store.read('b'))).toBe('new');
      });

      it('is independent of later writes to the source', async () => {
        await store.put('orig', 'version one');
        await store.copy('orig', 'snapshot');
        await store.put('orig', 'version two');
        await store.delete('orig');
        expect(await text(await store.read('snapshot'))).toBe('version one');
      });

      it('copies a multipart-sized object', async () => {
        const size = 17 * MiB + 3;
        const { stream, digest } = generated(size, { seed: 4 });
        await store.put('large-src', stream);
        expect(await store.copy('large-src', 'large-dst')).toEqual({ created: true, size });
        expect(await digestOf(await store.read('large-dst'))).toEqual({
          sha256: await digest,
          size,
        });
      });
    });

    describe('list', () => {
      it(
        'pages through 2,500 keys in order, without duplicates or gaps',
        async () => {
          const keys = Array.from({ length: 2500 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
          await putMany(store, [...keys].reverse());
          if (!has('byteOrderListing')) {
            // The S3 server's pages cannot be continued in byte order: a clear error, not a wrong page.
            const err = await store.list('many/', { limit: 1000 }).catch((e: unknown) => e);
            expect(err).toBeInstanceOf(UnsupportedStorageFeatureError);
            expect((err as UnsupportedStorageFeatureError).feature).toBe('byteOrderListing');
            expect(String(err)).toMatch(/byte order/);
            return;
          }
          const pages: string[][] = [];
          let cursor: string | undefined;
          do {
            const page = await store.list('many/', { cursor, limit: 1000 });
            expect(page.prefixes).toEqual([]);
            pages.push(page.objects.map((o) => o.key));
            for (const o of page.objects) expect(o.size).toBe(o.key.length);
            cursor = page.cursor;
          } while (cursor !== undefined);
          expect(pages.map((p) => p.length)).toEqual([1000, 1000, 500]);
          expect(pages.flat()).toEqual(keys);
        },
        BULK_TIMEOUT,
      );

      it(
        'defaults to pages of 1000 and caps larger limits',
        async () => {
          const keys = Array.from({ length: 1100 }, (_, i) => `cap/${String(i).padStart(4, '0')}`);
          await putMany(store, keys);
          if (!has('byteOrderListing')) {
            await expect(store.list('cap/')).rejects.toBeInstanceOf(UnsupportedStorageFeatureError);
            // Up to one S3 page under a prefix still lists, in byte order.
            await store.deleteMany(keys.slice(1000));
            const page = await store.list('cap/', { limit: 5000 });
            expect(page.objects.map((o) => o.key)).toEqual(keys.slice(0, 1000));
            expect(page.cursor).toBeUndefined();
            return;
          }
          expect((await store.list('cap/')).objects.length).toBe(1000);
          expect((await store.list('cap/', { limit: 5000 })).objects.length).toBe(1000);
        },
        BULK_TIMEOUT,
      );

      it('sets the cursor only while more may follow', async () => {
        await putMany(store, ['p/1', 'p/2', 'p/3']);
        const full = await store.list('p/', { limit: 3 });
        expect(full.objects.length).toBe(3);
        const small = await store.list('p/', { limit: 2 });
        expect(small.cursor).toBe('p/2');
        const rest = await store.list('p/', { limit: 2, cursor: small.cursor });
        expect(rest.objects.map((o) => o.key)).toEqual(['p/3']);
        expect(rest.cursor).toBeUndefined();
        expect(await store.list('nothing/')).toEqual({ objects: [], prefixes: [] });
      });

      it('orders keys by bytes, like S3', async () => {
        const keys = ['A', 'Z/x', 'a-b', 'a.b', 'a/b', 'a/c/d', 'aB', 'a_b', 'b', 'z', 'é', '~'];
        await putMany(store, keys);
        const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        expect(await listAll(store)).toEqual(sorted);
        // Page by page, too.
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.list('', { cursor, limit: 2 });
          seen.push(...page.objects.map((o) => o.key));
          cursor = page.cursor;
        } while (cursor !== undefined);
        expect(seen).toEqual(sorted);
      });

      it('filters by prefix, including a partial last segment', async () => {
        await putMany(store, [
          'blobs/sha256/ab12',
          'blobs/sha256/ab34',
          'blobs/sha256/cd56',
          'blobsx',
        ]);
        const keys = async (prefix: string) => (await store.list(prefix)).objects.map((o) => o.key);
        expect(await keys('blobs/sha256/ab')).toEqual(['blobs/sha256/ab12', 'blobs/sha256/ab34']);
        expect(await keys('blobs/')).toEqual([
          'blobs/sha256/ab12',
          'blobs/sha256/ab34',
          'blobs/sha256/cd56',
        ]);
        expect(await keys('blobs')).toEqual([
          'blobs/sha256/ab12',
          'blobs/sha256/ab34',
          'blobs/sha256/cd56',
          'blobsx',
        ]);
        expect(await keys('zzz')).toEqual([]);
      });

      it('rolls up deeper keys with a delimiter', async () => {
        await putMany(store, [
          'manifests/a/latest.json',
          'manifests/a/_digests/sha256-1.json',
          'manifests/b/c/v1.json',
          'manifests/top.json',
          'manifests/b.json',
          'other/x',
        ]);
        const page = await store.list('manifests/', { delimiter: '/' });
        expect(page.objects.map((o) => o.key)).toEqual(['manifests/b.json', 'manifests/top.json']);
        expect(page.prefixes).toEqual(['manifests/a/', 'manifests/b/']);
        const inner = await store.list('manifests/a/', { delimiter: '/' });
        expect(inner.objects.map((o) => o.key)).toEqual(['manifests/a/latest.json']);
        expect(inner.prefixes).toEqual(['manifests/a/_digests/']);
        const root = await store.list('', { delimiter: '/' });
        expect(root).toEqual({ objects: [], prefixes: ['manifests/', 'other/'] });
      });

      it('pages through prefixes and objects mixed, one entry at a time', async () => {
        await putMany(store, ['m/a/1', 'm/a/2', 'm/b', 'm/c/1', 'm/d', 'm/e/x/y']);
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.list('m/', { delimiter: '/', limit: 1, cursor });
          expect(page.objects.length + page.prefixes.length).toBe(1);
          seen.push(...page.prefixes, ...page.objects.map((o) => o.key));
          cursor = page.cursor;
          pages++;
        } while (cursor !== undefined && pages < 20);
        expect(seen).toEqual(['m/a/', 'm/b', 'm/c/', 'm/d', 'm/e/']);
      });

      it('forgets prefixes whose objects are all deleted', async () => {
        await putMany(store, ['gone/deep/x', 'kept/y']);
        await store.delete('gone/deep/x');
        expect(await store.list('', { delimiter: '/' })).toEqual({
          objects: [],
          prefixes: ['kept/'],
        });
      });
    });

    describe('delete', () => {
      it('is idempotent and leaves other keys alone', async () => {
        await putMany(store, ['d/1', 'd/2']);
        await store.delete('d/1');
        await store.delete('d/1');
        await store.delete('never/existed');
        expect(await listAll(store)).toEqual(['d/2']);
        await expect(store.read('d/1')).rejects.toBeInstanceOf(ObjectNotFoundError);
      });

      it('deletes more than 1000 keys at once, missing ones included', async () => {
        const keys = Array.from({ length: 1500 }, (_, i) => `bulk/${i}`);
        await putMany(store, keys);
        await store.put('bulk-keep', 'k');
        await store.deleteMany([...keys, 'bulk/missing', 'also/missing']);
        expect(await listAll(store)).toEqual(['bulk-keep']);
        await store.deleteMany([]);
      });
    });

    describe('concurrency', () => {
      it('ten concurrent puts of one key leave exactly one of them, never a mix', async () => {
        const bodies = Array.from({ length: 10 }, (_, i) => Buffer.alloc(256 * 1024 + i, i + 1));
        await Promise.all(bodies.map((b, i) => store.put('race', i % 2 ? Readable.from([b]) : b)));
        const final = await readAll(await store.read('race'));
        expect(bodies.some((b) => b.equals(final))).toBe(true);
      });

      it('concurrent multipart puts of one key leave exactly one of them', async () => {
        const sizes = [11 * MiB, 12 * MiB, 13 * MiB];
        const digests = await Promise.all(
          sizes.map(async (size, i) => {
            const { stream, digest } = generated(size, { seed: 10 + i });
            await store.put('race-big', stream);
            return digest;
          }),
        );
        const final = await digestOf(await store.read('race-big'));
        expect(digests).toContain(final.sha256);
      });

      it('ten concurrent ifAbsent puts create exactly once', async () => {
        const bodies = Array.from({ length: 10 }, (_, i) => `writer ${i} `.repeat(1000 + i));
        const results = await Promise.all(
          bodies.map((b) => store.put('once', b, { ifAbsent: true })),
        );
        expectCreators(results, has('conditionalPut'));
        const final = await text(await store.read('once'));
        const winner = bodies.indexOf(final);
        expect(results[winner]?.created).toBe(true);
        if (has('conditionalPut')) {
          for (const r of results) expect(r.size).toBe(Buffer.byteLength(final));
        }
        for (const r of results) if (!r.created) expect(r.size).toBe(Buffer.byteLength(final));
      });

      it('concurrent ifAbsent multipart puts create exactly once', async () => {
        const results = await Promise.all(
          [1, 2, 3].map(async (seed) => {
            const { stream, digest } = generated(11 * MiB, { seed });
            return { result: await store.put('once-big', stream, { ifAbsent: true }), digest };
          }),
        );
        expectCreators(
          results.map((r) => r.result),
          has('conditionalComplete'),
        );
        const final = await digestOf(await store.read('once-big'));
        // Whole bytes of one writer that reported creating it.
        const digests = await Promise.all(
          results.map(async (r) => (r.result.created ? await r.digest : undefined)),
        );
        expect(digests).toContain(final.sha256);
      });

      it('concurrent ifAbsent copies to one key create exactly once', async () => {
        await putMany(
          store,
          Array.from({ length: 8 }, (_, i) => `csrc/${i}`),
        );
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.copy(`csrc/${i}`, 'cdst', { ifAbsent: true })),
        );
        expectCreators(results, has('conditionalCopy'));
        const final = await text(await store.read('cdst'));
        expect(final).toMatch(/^csrc\/\d$/);
        expect(results[Number(final.slice(5))]?.created).toBe(true);
      });

      it('two concurrent ifAbsent commits of one key leave one whole object', async () => {
        // Staged objects large enough for multipart (complete, then copy to the destination).
        const stage = async (seed: number) => {
          const bytes = await generatedBytes(11 * MiB + seed, { seed });
          const staged = await store.appendStaged(
            await store.beginStaged(`_uploads/two-${seed}/data`),
            bytes,
          );
          return { staged, bytes };
        };
        const writers = await Promise.all([stage(71), stage(72)]);
        const results = await Promise.all(
          writers.map((w) => store.commitStaged(w.staged, 'blobs/sha256/two', { ifAbsent: true })),
        );
        // The commit's last step is a copy: exclusive only where CopyObject honours If-None-Match.
        expectCreators(results, has('conditionalCopy'));
        const final = await readAll(await store.read('blobs/sha256/two'));
        const winner = writers.findIndex((w) => w.bytes.equals(final));
        expect(winner).toBeGreaterThanOrEqual(0);
        expect(results[winner]?.created).toBe(true);
        for (const r of results) if (!r.created) expect(r.size).toBe(final.length);
        expect(await listAll(store)).toEqual(['blobs/sha256/two']);
        expect(await h.leftovers()).toEqual([]);
      });

      it('never replaces an object that existed before concurrent ifAbsent writers began', async () => {
        await store.put('blobs/sha256/kept', 'the original');
        await store.put('csrc', 'a copy source');
        const staged = await Promise.all(
          [81, 82].map(async (seed) =>
            store.appendStaged(
              await store.beginStaged(`_uploads/kept-${seed}/data`),
              await generatedBytes(6 * MiB + seed, { seed }),
            ),
          ),
        );
        const results = await Promise.all([
          store.put('blobs/sha256/kept', 'small writer', { ifAbsent: true }),
          store.put('blobs/sha256/kept', generated(11 * MiB, { seed: 83 }).stream, {
            ifAbsent: true,
          }),
          store.copy('csrc', 'blobs/sha256/kept', { ifAbsent: true }),
          ...staged.map((s) => store.commitStaged(s, 'blobs/sha256/kept', { ifAbsent: true })),
        ]);
        for (const r of results) expect(r).toEqual({ created: false, size: 12 });
        expect(await text(await store.read('blobs/sha256/kept'))).toBe('the original');
        expect(await listAll(store)).toEqual(['blobs/sha256/kept', 'csrc']);
        expect(await h.leftovers()).toEqual([]);
      });
    });

    describe('keys', () => {
      const bad = [
        '../x',
        'a/../b',
        '/abs',
        'a//b',
        'a\\b',
        'nul\0byte',
        '',
        '.',
        'a/./b',
        'x/',
        'tab\there',
        '.tmp/x',
      ];

      it.each(bad)('rejects %j everywhere', async (key) => {
        const staged = await store.beginStaged('_uploads/valid');
        const attempts: Array<() => Promise<unknown>> = [
          () => store.stat(key),
          () => store.read(key),
          () => store.put(key, 'x'),
          () => store.copy(key, 'ok'),
          () => store.copy('ok', key),
          () => store.delete(key),
          () => store.deleteMany(['fine', key]),
          () => store.presignGet(key, 60),
          () => store.beginStaged(key),
          () => store.commitStaged(staged, key),
          () => store.appendStaged({ ...staged, stagingKey: key }, 'x'),
        ];
        for (const attempt of attempts) {
          await expect(attempt()).rejects.toBeInstanceOf(InvalidKeyError);
        }
        await store.abortStaged(staged);
      });

      it.each(['../', '/x', 'a//', 'a\\', '..'])('rejects the list prefix %j', async (prefix) => {
        await expect(store.list(prefix)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.sweepStaged(prefix, new Date())).rejects.toBeInstanceOf(InvalidKeyError);
      });

      it('accepts ordinary registry keys', async () => {
        const keys = [
          'blobs/sha256/0123456789abcdef',
          'manifests/library/ubuntu/_digests/sha256-00.json',
          'manifests/my-org/vm.snap/v1.2_beta-3.json',
          '_uploads/6f1c/data',
          'catalog.json',
          'uni/ünï/🙂',
          '.hidden/x',
        ];
        await putMany(store, keys);
        expect((await listAll(store)).length).toBe(keys.length);
        for (const k of keys) expect(await text(await store.read(k))).toBe(k);
      });
    });

    describe('presignGet', () => {
      it('returns a working URL, or undefined when the backend has none', async () => {
        await store.put('signed/obj', 'presigned bytes');
        const url = await store.presignGet('signed/obj', 60);
        if (!h.presigns) {
          expect(url).toBeUndefined();
          return;
        }
        expect(url).toMatch(/^https?:\/\//);
        const res = await fetch(url ?? '');
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('presigned bytes');
      });
    });

    describe('staged objects', () => {
      const chunks = [
        MiB, // below S3's 5 MiB minimum part
        7 * MiB, // crosses the first 10 MiB part boundary
        3 * MiB + 1,
        12 * MiB + 7, // spans a whole part and more
        100,
        5 * MiB, // exactly the minimum part size left over
      ];

      async function appendAll(s: StagedObject, sizes: number[], seed = 1) {
        let staged = s;
        const all: Buffer[] = [];
        for (const [i, size] of sizes.entries()) {
          const bytes = await generatedBytes(size, { seed: seed * 100 + i });
          all.push(bytes);
          // Alternate body types.
          const body = i % 2 === 0 ? Readable.from([bytes]) : bytes;
          staged = await store.appendStaged(staged, body);
          expect(staged.size).toBe(s.size + all.reduce((n, b) => n + b.length, 0));
        }
        return { staged, bytes: Buffer.concat(all) };
      }

      it('begins empty and commits several appends atomically', async () => {
        let staged = await store.beginStaged('_uploads/s1/data');
        expect(staged.size).toBe(0);
        expect(staged.stagingKey).toBe('_uploads/s1/data');
        const result = await appendAll(staged, chunks);
        staged = result.staged;
        expect(await store.stat('blobs/sha256/s1')).toBeUndefined();
        expect(sha256(await readAll(await store.readStaged(staged)))).toBe(sha256(result.bytes));
        expect(await store.commitStaged(staged, 'blobs/sha256/s1')).toEqual({
          created: true,
          size: result.bytes.length,
        });
        expect(sha256(await readAll(await store.read('blobs/sha256/s1')))).toBe(
          sha256(result.bytes),
        );
        expect(await listAll(store)).toEqual(['blobs/sha256/s1']);
        expect(await h.leftovers()).toEqual([]);
      });

      it('commits tiny and empty staged objects', async () => {
        const empty = await store.beginStaged('_uploads/e/data');
        expect(await store.commitStaged(empty, 'empty')).toEqual({ created: true, size: 0 });
        expect((await store.stat('empty'))?.size).toBe(0);
        let tiny = await store.beginStaged('_uploads/t/data');
        tiny = await store.appendStaged(tiny, 'hello ');
        tiny = await store.appendStaged(tiny, '');
        tiny = await store.appendStaged(tiny, 'world');
        expect(await text(await store.readStaged(tiny))).toBe('hello world');
        expect(await store.commitStaged(tiny, 'tiny')).toEqual({ created: true, size: 11 });
        expect(await text(await store.read('tiny'))).toBe('hello world');
        expect(await listAll(store)).toEqual(['empty', 'tiny']);
        expect(await h.leftovers()).toEqual([]);
      });

      it('keeps appending after readStaged, which may be called repeatedly', async () => {
        const first = await appendAll(
          await store.beginStaged('_uploads/r/data'),
          [11 * MiB, 2 * MiB],
          2,
        );
        expect(sha256(await readAll(await store.readStaged(first.staged)))).toBe(
          sha256(first.bytes),
        );
        expect(sha256(await readAll(await store.readStaged(first.staged)))).toBe(
          sha256(first.bytes),
        );
        const second = await appendAll(first.staged, [6 * MiB, MiB], 3);
        const all = Buffer.concat([first.bytes, second.bytes]);
        expect(sha256(await readAll(await store.readStaged(second.staged)))).toBe(sha256(all));
        const third = await appendAll(second.staged, [100], 4);
        const everything = Buffer.concat([all, third.bytes]);
        await store.commitStaged(third.staged, 'after-read');
        expect(sha256(await readAll(await store.read('after-read')))).toBe(sha256(everything));
        expect(await listAll(store)).toEqual(['after-read']);
        expect(await h.leftovers()).toEqual([]);
      });

      it('commits right after readStaged', async () => {
        const { staged, bytes } = await appendAll(
          await store.beginStaged('_uploads/rc/data'),
          [8 * MiB, 4 * MiB],
          5,
        );
        expect(sha256(await readAll(await store.readStaged(staged)))).toBe(sha256(bytes));
        await store.commitStaged(staged, 'read-then-commit');
        expect(sha256(await readAll(await store.read('read-then-commit')))).toBe(sha256(bytes));
        // Sizes that leave no bytes over for a tail on S3 (whole parts only).
        const whole = await appendAll(
          await store.beginStaged('_uploads/rc2/data'),
          [10 * MiB, 5 * MiB],
          6,
        );
        expect(sha256(await readAll(await store.readStaged(whole.staged)))).toBe(
          sha256(whole.bytes),
        );
        await store.commitStaged(whole.staged, 'read-then-commit-2');
        expect(sha256(await readAll(await store.read('read-then-commit-2')))).toBe(
          sha256(whole.bytes),
        );
        expect(await listAll(store)).toEqual(['read-then-commit', 'read-then-commit-2']);
      });

      it('aborts, idempotently, leaving nothing behind', async () => {
        const { staged } = await appendAll(await store.beginStaged('_uploads/a/data'), [
          6 * MiB,
          MiB,
        ]);
        await store.abortStaged(staged);
        await store.abortStaged(staged);
        expect(await listAll(store)).toEqual([]);
        expect(await h.leftovers()).toEqual([]);
        const fresh = await store.beginStaged('_uploads/a2/data');
        await store.abortStaged(fresh);
        expect(await h.leftovers()).toEqual([]);
      });

      it('keeps an existing destination with ifAbsent and discards the staged data', async () => {
        await store.put('blobs/sha256/dup', 'already here');
        const { staged } = await appendAll(await store.beginStaged('_uploads/d/data'), [
          6 * MiB,
          10,
        ]);
        expect(await store.commitStaged(staged, 'blobs/sha256/dup', { ifAbsent: true })).toEqual({
          created: false,
          size: 12,
        });
        expect(await text(await store.read('blobs/sha256/dup'))).toBe('already here');
        expect(await listAll(store)).toEqual(['blobs/sha256/dup']);
        expect(await h.leftovers()).toEqual([]);
        let small = await store.beginStaged('_uploads/d2/data');
        small = await store.appendStaged(small, 'tiny');
        expect(await store.commitStaged(small, 'blobs/sha256/dup', { ifAbsent: true })).toEqual({
          created: false,
          size: 12,
        });
        let fresh = await store.beginStaged('_uploads/d3/data');
        fresh = await store.appendStaged(fresh, 'fresh');
        expect(await store.commitStaged(fresh, 'blobs/sha256/new', { ifAbsent: true })).toEqual({
          created: true,
          size: 5,
        });
        expect(await listAll(store)).toEqual(['blobs/sha256/dup', 'blobs/sha256/new']);
      });

      it('replaces an existing destination without ifAbsent', async () => {
        await store.put('dest', 'old');
        let staged = await store.beginStaged('_uploads/rep/data');
        staged = await store.appendStaged(staged, 'new bytes');
        expect(await store.commitStaged(staged, 'dest')).toEqual({ created: true, size: 9 });
        expect(await text(await store.read('dest'))).toBe('new bytes');
      });

      it('rejects an append past maxBytes and keeps the previous size', async () => {
        let staged = await store.beginStaged('_uploads/m/data');
        staged = await store.appendStaged(staged, Buffer.alloc(3 * MiB, 1), { maxBytes: 20 * MiB });
        const before = staged;
        // Streamed: the limit is found mid-body (and mid-part on S3).
        await expect(
          store.appendStaged(staged, generated(18 * MiB).stream, { maxBytes: 20 * MiB }),
        ).rejects.toBeInstanceOf(SizeLimitError);
        // Known length: rejected up front.
        await expect(
          store.appendStaged(staged, Buffer.alloc(17 * MiB + 1), { maxBytes: 20 * MiB }),
        ).rejects.toBeInstanceOf(SizeLimitError);
        expect(before.size).toBe(3 * MiB);
        expect(
          (await readAll(await store.readStaged(before))).equals(Buffer.alloc(3 * MiB, 1)),
        ).toBe(true);
        staged = await store.appendStaged(before, Buffer.alloc(17 * MiB, 2), {
          maxBytes: 20 * MiB,
        });
        expect(staged.size).toBe(20 * MiB);
        await expect(
          store.appendStaged(staged, 'x', { maxBytes: 20 * MiB }),
        ).rejects.toBeInstanceOf(SizeLimitError);
        await store.commitStaged(staged, 'limited');
        const got = await readAll(await store.read('limited'));
        expect(
          got.equals(Buffer.concat([Buffer.alloc(3 * MiB, 1), Buffer.alloc(17 * MiB, 2)])),
        ).toBe(true);
        expect(await listAll(store)).toEqual(['limited']);
        expect(await h.leftovers()).toEqual([]);
      });

      it('survives a body that fails midway: the size is unchanged and appends continue', async () => {
        const first = await generatedBytes(4 * MiB, { seed: 21 });
        let staged = await store.appendStaged(await store.beginStaged('_uploads/f/data'), first);
        const partial = await generatedBytes(14 * MiB, { seed: 22 });
        await expect(
          store.appendStaged(
            staged,
            failingStream([partial.subarray(0, 7 * MiB), partial.subarray(7 * MiB)]),
          ),
        ).rejects.toThrow('client went away');
        expect(staged.size).toBe(4 * MiB);
        expect(sha256(await readAll(await store.readStaged(staged)))).toBe(sha256(first));
        const second = await generatedBytes(9 * MiB + 3, { seed: 23 });
        staged = await store.appendStaged(staged, Readable.from([second]));
        await store.commitStaged(staged, 'after-failure');
        expect(sha256(await readAll(await store.read('after-failure')))).toBe(
          sha256(Buffer.concat([first, second])),
        );
        expect(await listAll(store)).toEqual(['after-failure']);
        expect(await h.leftovers()).toEqual([]);
      });

      it('commits correctly after an append that failed with parts already uploaded', async () => {
        const first = await generatedBytes(12 * MiB, { seed: 24 });
        let staged = await store.appendStaged(await store.beginStaged('_uploads/g/data'), first);
        // 35 MiB arrive before the body fails: on S3 three 10 MiB parts reach the server and
        // stay there, unrecorded, after the recorded ones.
        const partial = await generatedBytes(35 * MiB, { seed: 25 });
        await expect(store.appendStaged(staged, failingStream([partial]))).rejects.toThrow(
          'client went away',
        );
        expect(staged.size).toBe(12 * MiB);
        // A short append that does not overwrite those parts, a read-back, one more, the commit.
        const second = await generatedBytes(MiB + 7, { seed: 26 });
        staged = await store.appendStaged(staged, second);
        expect(sha256(await readAll(await store.readStaged(staged)))).toBe(
          sha256(Buffer.concat([first, second])),
        );
        const third = await generatedBytes(3 * MiB, { seed: 27 });
        staged = await store.appendStaged(staged, third);
        expect(await store.commitStaged(staged, 'after-strays', { ifAbsent: true })).toEqual({
          created: true,
          size: 16 * MiB + 7,
        });
        expect(sha256(await readAll(await store.read('after-strays')))).toBe(
          sha256(Buffer.concat([first, second, third])),
        );
        // And without a read-back in between.
        const again = await store.appendStaged(await store.beginStaged('_uploads/g2/data'), first);
        await expect(store.appendStaged(again, failingStream([partial]))).rejects.toThrow(
          'client went away',
        );
        const next = await store.appendStaged(again, second);
        await store.commitStaged(next, 'after-strays-2');
        expect(sha256(await readAll(await store.read('after-strays-2')))).toBe(
          sha256(Buffer.concat([first, second])),
        );
        expect(await listAll(store)).toEqual(['after-strays', 'after-strays-2']);
        expect(await h.leftovers()).toEqual([]);
      });

      it('continues from a JSON round trip of the state in another driver instance', async () => {
        const a = await appendAll(
          await store.beginStaged('_uploads/j/data'),
          [2 * MiB, 9 * MiB],
          7,
        );
        const persisted = JSON.parse(JSON.stringify(a.staged)) as StagedObject;
        const other = await h.reopen();
        try {
          const b = await generatedBytes(6 * MiB + 11, { seed: 8 });
          const next = await other.appendStaged(persisted, b);
          const all = Buffer.concat([a.bytes, b]);
          const again = JSON.parse(JSON.stringify(next)) as StagedObject;
          expect(sha256(await readAll(await store.readStaged(again)))).toBe(sha256(all));
          expect(await other.commitStaged(again, 'handed-over')).toEqual({
            created: true,
            size: all.length,
          });
          expect(sha256(await readAll(await store.read('handed-over')))).toBe(sha256(all));
        } finally {
          await other.close();
        }
        expect(await listAll(store)).toEqual(['handed-over']);
        expect(await h.leftovers()).toEqual([]);
      });

      it('reports a missing staged object', async () => {
        const staged = await store.beginStaged('_uploads/x/data');
        await store.abortStaged(staged);
        await expect(store.appendStaged(staged, 'more')).rejects.toBeInstanceOf(
          ObjectNotFoundError,
        );
      });

      it('sweepStaged removes nothing recent', async () => {
        let staged = await store.beginStaged('_uploads/keep/data');
        staged = await store.appendStaged(staged, Buffer.alloc(MiB));
        expect(await store.sweepStaged('_uploads/', new Date(Date.now() - 3_600_000))).toBe(0);
        staged = await store.appendStaged(staged, Buffer.alloc(MiB));
        await store.commitStaged(staged, 'swept-not');
        expect((await store.stat('swept-not'))?.size).toBe(2 * MiB);
      });
    });

    if (options.large !== false) {
      describe('large objects (streamed, bounded memory)', () => {
        it(
          'puts and reads 256 MiB with bounded RSS',
          async () => {
            const { stream, digest } = generated(LARGE, { seed: 31 });
            const put = await peakRssGrowth(() =>
              store.put('blobs/large', stream, { size: LARGE }),
            );
            expect(put.result).toEqual({ created: true, size: LARGE });
            const read = await peakRssGrowth(async () => digestOf(await store.read('blobs/large')));
            expect(read.result).toEqual({ sha256: await digest, size: LARGE });
            expect(put.growth).toBeLessThan(RSS_BUDGET);
            expect(read.growth).toBeLessThan(RSS_BUDGET);
          },
          LARGE_TIMEOUT,
        );

        it(
          'stages 256 MiB in appends, reads it back and commits it with bounded RSS',
          async () => {
            const sizes = [100 * MiB + 1, 3 * MiB, 100 * MiB - 1, LARGE - 203 * MiB];
            const run = await peakRssGrowth(async () => {
              let staged = await store.beginStaged('_uploads/large/data');
              const digests: Promise<string>[] = [];
              for (const [i, size] of sizes.entries()) {
                const { stream, digest } = generated(size, { seed: 40 + i });
                digests.push(digest);
                staged = await store.appendStaged(staged, stream);
              }
              const readBack = await digestOf(await store.readStaged(staged));
              const commit = await store.commitStaged(staged, 'blobs/large-staged', {
                ifAbsent: true,
              });
              const final = await digestOf(await store.read('blobs/large-staged'));
              return { staged, readBack, commit, final, parts: await Promise.all(digests) };
            });
            const { staged, readBack, commit, final } = run.result;
            expect(staged.size).toBe(LARGE);
            expect(commit).toEqual({ created: true, size: LARGE });
            expect(readBack.size).toBe(LARGE);
            expect(final).toEqual(readBack);
            // The staged bytes are the concatenation of the generated streams.
            const expected = await digestOf(
              Readable.from(
                (async function* () {
                  for (const [i, size] of sizes.entries()) {
                    yield* generated(size, { seed: 40 + i }).stream;
                  }
                })(),
              ),
            );
            expect(final).toEqual(expected);
            expect(run.growth).toBeLessThan(RSS_BUDGET);
            expect(await listAll(store)).toEqual(['blobs/large-staged']);
            expect(await h.leftovers()).toEqual([]);
          },
          LARGE_TIMEOUT,
        );
      });
    }

    if (options.crash !== false) {
      describe('crash (SIGKILL mid-write)', () => {
        it('a killed put leaves no object and nothing after the sweep', async () => {
          await killMidWrite(h, ['put', 'blobs/sha256/crash-put']);
          expect(await store.stat('blobs/sha256/crash-put')).toBeUndefined();
          expect(await listAll(store)).toEqual([]);
          expect((await h.leftovers()).length).toBeGreaterThan(0);
          expect(await store.sweepStaged('', new Date(Date.now() + 60_000))).toBeGreaterThan(0);
          expect(await h.leftovers()).toEqual([]);
          expect(await listAll(store)).toEqual([]);
        }, 120_000);

        it('a killed staged append leaves no destination and nothing after the sweep', async () => {
          const { state } = await killMidWrite(h, ['staged', '_uploads/crash/data']);
          expect(state?.size).toBe(3 * MiB);
          expect(await store.stat('blobs/sha256/crash-staged')).toBeUndefined();
          // What the registry does for a session it abandons: delete its keys, then sweep.
          for (const key of await listAll(store, '_uploads/')) {
            expect(key.startsWith('_uploads/crash/')).toBe(true);
          }
          await store.deleteMany(await listAll(store, '_uploads/'));
          await store.sweepStaged('_uploads/', new Date(Date.now() + 60_000));
          expect(await listAll(store)).toEqual([]);
          expect(await h.leftovers()).toEqual([]);
        }, 120_000);

        it('a staged upload continues from its last state after a crash mid-append', async () => {
          const { state } = await killMidWrite(h, ['staged', '_uploads/resume/data']);
          if (!state) throw new Error('the child reported no state');
          const more = await generatedBytes(7 * MiB + 5, { seed: 51 });
          const next = await store.appendStaged(state, more);
          const expected = Buffer.concat([Buffer.alloc(3 * MiB, 7), more]);
          expect(sha256(await readAll(await store.readStaged(next)))).toBe(sha256(expected));
          await store.commitStaged(next, 'blobs/sha256/resumed', { ifAbsent: true });
          expect(sha256(await readAll(await store.read('blobs/sha256/resumed')))).toBe(
            sha256(expected),
          );
          await store.sweepStaged('', new Date(Date.now() + 60_000));
          expect(await listAll(store)).toEqual(['blobs/sha256/resumed']);
          expect(await h.leftovers()).toEqual([]);
        }, 120_000);
      });
    }
  });
}

/**
 * Runs `crash-child.mjs` (which imports the built package) until it has produced 80 MiB of an
 * endless body (more than the S3 driver buffers, so parts have reached the server), then
 * SIGKILLs it. Returns the staged state it reported, if any.
 */
async function killMidWrite(
  h: DriverHarness,
  args: string[],
): Promise<{ state: StagedObject | undefined }> {
  if (!existsSync(builtIndex)) {
    throw new Error(`${builtIndex} is missing: build the package before running the crash tests`);
  }
  const child: ChildProcess = spawn(process.execPath, [crashChild, ...args], {
    env: { ...process.env, ...h.childEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let state: StagedObject | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  await new Promise<void>((resolve, reject) => {
    if (!child.stdout) return reject(new Error('no stdout'));
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line.startsWith('STATE ')) state = JSON.parse(line.slice(6)) as StagedObject;
      const bytes = /^BYTES (\d+)$/.exec(line);
      if (bytes && Number(bytes[1]) >= 80 * MiB) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`crash child exited early (${code}): ${stderr}`)));
  });
  await exited;
  return { state };
}
