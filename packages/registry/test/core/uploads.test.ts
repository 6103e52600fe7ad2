import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestOf } from '@epoch/oci';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Layout } from '../../src/core/layout.js';
import { ParallelDigester } from '../../src/core/parallel-digester.js';
import { readAll } from '../../src/core/streams.js';
import { Uploads } from '../../src/core/uploads.js';
import {
  TooLargeError,
  UploadDigestMismatchError,
  UploadOffsetError,
  UploadUnknownError,
} from '../../src/errors.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { storeFactories } from '../support/stores.js';

describe.each(storeFactories())('uploads on $name', ({ create }) => {
  let store: ObjectStore;
  let cleanup: () => Promise<void>;
  let uploads: Uploads;

  beforeEach(async () => {
    ({ store, cleanup } = await create());
    uploads = new Uploads(store);
  });
  afterEach(async () => {
    await cleanup();
  });

  async function blobBytes(digest: string): Promise<Buffer> {
    return Buffer.from(await readAll(await store.read(Layout.blob(digest)), 1 << 30));
  }

  it('assembles chunks in order and commits them under their digest', async () => {
    const parts = [randomBytes(3000), randomBytes(1), randomBytes(70_000)];
    const all = Buffer.concat(parts);
    const digest = digestOf(all);
    const { id } = await uploads.start('team/app');
    let offset = 0;
    for (const part of parts) {
      const status = await uploads.append('team/app', id, part, { offset });
      offset += part.length;
      expect(status.size).toBe(offset);
    }
    expect(await store.stat(Layout.blob(digest))).toBeUndefined();
    const result = await uploads.finish('team/app', id, digest);
    expect(result).toEqual({ digest, size: all.length, created: true });
    expect((await blobBytes(digest)).equals(all)).toBe(true);
    await expect(uploads.status('team/app', id)).rejects.toBeInstanceOf(UploadUnknownError);
  });

  it('accepts a final chunk with the finishing call', async () => {
    const all = randomBytes(5000);
    const digest = digestOf(all);
    const { id } = await uploads.start('app');
    await uploads.append('app', id, all.subarray(0, 1000));
    const result = await uploads.finish('app', id, digest, {
      finalChunk: all.subarray(1000),
      offset: 1000,
    });
    expect(result.size).toBe(5000);
    expect((await blobBytes(digest)).equals(all)).toBe(true);
  });

  it('rejects an out-of-order chunk and keeps the committed bytes', async () => {
    const { id } = await uploads.start('app');
    await uploads.append('app', id, 'hello', { offset: 0 });
    const err = await uploads.append('app', id, 'xx', { offset: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadOffsetError);
    expect((err as UploadOffsetError).expectedOffset).toBe(5);
    await uploads.append('app', id, ' world', { offset: 5 });
    const result = await uploads.finish('app', id, digestOf('hello world'));
    expect(result.size).toBe(11);
  });

  it('stores nothing when the digest does not match, and ends the session', async () => {
    const { id } = await uploads.start('app');
    await uploads.append('app', id, 'some bytes');
    const claimed = digestOf('other bytes');
    await expect(uploads.finish('app', id, claimed)).rejects.toBeInstanceOf(
      UploadDigestMismatchError,
    );
    expect(await store.stat(Layout.blob(claimed))).toBeUndefined();
    expect(await store.stat(Layout.blob(digestOf('some bytes')))).toBeUndefined();
    await expect(uploads.status('app', id)).rejects.toBeInstanceOf(UploadUnknownError);
    expect((await store.list(Layout.uploadsPrefix)).objects).toEqual([]);
  });

  it('treats malformed ids, unknown ids and other repositories as unknown uploads', async () => {
    const { id } = await uploads.start('app');
    for (const bad of ['../../blobs', 'x', '', `${id}/..`, id.toUpperCase()]) {
      await expect(uploads.status('app', bad)).rejects.toBeInstanceOf(UploadUnknownError);
    }
    await expect(uploads.status('app', crypto.randomUUID())).rejects.toBeInstanceOf(
      UploadUnknownError,
    );
    await expect(uploads.append('other', id, 'x')).rejects.toBeInstanceOf(UploadUnknownError);
    await expect(uploads.status('app', id)).resolves.toMatchObject({ size: 0 });
  });

  it('reports an upload whose staged bytes were removed elsewhere as unknown', async () => {
    const bytes = randomBytes(100_000);
    const { id } = await uploads.start('app');
    await uploads.append('app', id, bytes);
    // What an abort by another process or a bucket lifecycle rule leaves: the session record
    // without its bytes.
    const session = JSON.parse(
      Buffer.from(await readAll(await store.read(Layout.uploadSession(id)), 1 << 20)).toString(),
    ) as { staged: Parameters<ObjectStore['abortStaged']>[0] };
    await store.abortStaged(session.staged);
    await expect(uploads.finish('app', id, digestOf(bytes))).rejects.toBeInstanceOf(
      UploadUnknownError,
    );
  });

  it('finishes an upload begun by another process by hashing the stored bytes', async () => {
    const all = randomBytes(200_000);
    const digest = digestOf(all);
    const { id } = await uploads.start('app');
    await uploads.append('app', id, all.subarray(0, 100_000));
    const restarted = new Uploads(store);
    await restarted.append('app', id, all.subarray(100_000), { offset: 100_000 });
    expect(await new Uploads(store).finish('app', id, digest)).toMatchObject({ size: all.length });
    expect((await blobBytes(digest)).equals(all)).toBe(true);
  });

  it('finishes by hashing the stored bytes when the hashing thread crashed mid-upload', async () => {
    const all = randomBytes(1_500_000);
    const digest = digestOf(all);
    const { id } = await uploads.start('app');
    await uploads.append('app', id, all.subarray(0, 900_000));
    // An algorithm node:crypto does not know makes the hashing thread throw, which ends it and
    // with it the session's incremental state.
    new ParallelDigester('bogus' as 'sha256');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await uploads.append('app', id, all.subarray(900_000), { offset: 900_000 });
    expect(await uploads.finish('app', id, digest)).toEqual({
      digest,
      size: all.length,
      created: true,
    });
    expect((await blobBytes(digest)).equals(all)).toBe(true);
    // And a wrong digest is still refused on that path.
    const other = await uploads.start('app');
    await uploads.append('app', other.id, all);
    new ParallelDigester('bogus' as 'sha256');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expect(uploads.finish('app', other.id, digestOf(Buffer.from('x')))).rejects.toThrow(
      /digest/i,
    );
  });

  it('verifies sha512 digests', async () => {
    const body = randomBytes(4096);
    const digest = `sha512:${createHash('sha512').update(body).digest('hex')}`;
    const result = await uploads.putBlob('app', digest, body);
    expect(result).toMatchObject({ digest, size: 4096, created: true });
  });

  it('keeps an existing blob and reports it was not created again', async () => {
    const digest = digestOf('same');
    expect((await uploads.putBlob('a', digest, 'same')).created).toBe(true);
    expect((await uploads.putBlob('b', digest, 'same')).created).toBe(false);
    expect((await blobBytes(digest)).toString()).toBe('same');
  });

  it('rejects a second chunk while one is streaming', async () => {
    const { id } = await uploads.start('app');
    const slow = new Readable({ read() {} });
    const first = uploads.append('app', id, slow);
    await new Promise((r) => setTimeout(r, 50));
    await expect(uploads.append('app', id, 'x')).rejects.toBeInstanceOf(UploadOffsetError);
    slow.push('abc');
    slow.push(null);
    expect((await first).size).toBe(3);
  });

  it('leaves the size unchanged when a chunk fails midway, and continues afterwards', async () => {
    const { id } = await uploads.start('app');
    await uploads.append('app', id, 'abc');
    const failing = new Readable({
      read() {
        this.push(Buffer.from('garbage'));
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(uploads.append('app', id, failing)).rejects.toThrow();
    expect((await uploads.status('app', id)).size).toBe(3);
    await uploads.append('app', id, 'def', { offset: 3 });
    expect((await uploads.finish('app', id, digestOf('abcdef'))).size).toBe(6);
  });

  it('refuses to grow past the blob size limit', async () => {
    const limited = new Uploads(store, { maxBlobSize: 10 });
    const { id } = await limited.start('app');
    await limited.append('app', id, '12345');
    await expect(limited.append('app', id, '1234567')).rejects.toBeInstanceOf(TooLargeError);
    expect((await limited.status('app', id)).size).toBe(5);
  });

  it('runs independent sessions in parallel', async () => {
    const bodies = Array.from({ length: 8 }, () => randomBytes(50_000));
    const results = await Promise.all(
      bodies.map(async (body, i) => {
        const { id } = await uploads.start(`repo-${i}`);
        await uploads.append(`repo-${i}`, id, body.subarray(0, 20_000));
        await uploads.append(`repo-${i}`, id, body.subarray(20_000), { offset: 20_000 });
        return uploads.finish(`repo-${i}`, id, digestOf(body));
      }),
    );
    expect(results.map((r) => r.size)).toEqual(bodies.map((b) => b.length));
  });

  it('cancels a session and deletes its bytes', async () => {
    const { id } = await uploads.start('app');
    await uploads.append('app', id, 'to be cancelled');
    await uploads.cancel('app', id);
    await expect(uploads.status('app', id)).rejects.toBeInstanceOf(UploadUnknownError);
    expect((await store.list(Layout.uploadsPrefix)).objects).toEqual([]);
  });

  it('sweeps sessions by idle time, not by age', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const clocked = new Uploads(store, { idleTimeoutMs: 60_000, now: () => now });
    const old = await clocked.start('app');
    const active = await clocked.start('app');
    now = new Date(now.getTime() + 50_000);
    await clocked.append('app', active.id, 'still going');
    now = new Date(now.getTime() + 20_000); // old: idle 70 s; active: idle 20 s
    const { removed } = await clocked.sweep();
    expect(removed).toBe(1);
    await expect(clocked.status('app', old.id)).rejects.toBeInstanceOf(UploadUnknownError);
    await expect(clocked.status('app', active.id)).resolves.toMatchObject({ size: 11 });
  });

  it('keeps the backend data of a live session whose upload began before the cutoff', async () => {
    // The session's clock runs ahead of the store's: its record says "active now", while the
    // backend dates its multipart upload (S3) at the real, earlier start.
    const ahead = () => new Date(Date.now() + 2 * 60 * 60 * 1000);
    const clocked = new Uploads(store, { idleTimeoutMs: 60 * 60 * 1000, now: ahead });
    const body = randomBytes(6 * 1024 * 1024);
    const { id } = await clocked.start('app');
    await clocked.append('app', id, body.subarray(0, 5 * 1024 * 1024 + 1));
    expect((await clocked.sweep()).removed).toBe(0);
    await clocked.append('app', id, body.subarray(5 * 1024 * 1024 + 1), {
      offset: 5 * 1024 * 1024 + 1,
    });
    const result = await clocked.finish('app', id, digestOf(body));
    expect(result.size).toBe(body.length);
    expect((await blobBytes(digestOf(body))).equals(body)).toBe(true);
  });

  it('sweeps upload data left without a session record by a crash', async () => {
    await store.put(`${Layout.uploadPrefix(crypto.randomUUID())}data`, 'orphan');
    const { removed } = await uploads.sweep({ olderThan: new Date(Date.now() + 60_000) });
    expect(removed).toBe(1);
    expect((await store.list(Layout.uploadsPrefix)).objects).toEqual([]);
  });
});
