import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readlink, rm, truncate } from 'node:fs/promises';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/storage/errors.js';
import { createFsObjectStore, type FsObjectStore } from '../../src/storage/fs-store.js';
import { streamInto } from '../../src/storage/send.js';
import { MiB, sha256 } from './helpers.js';

/** Descriptors of this process open on files under `dir`: a send must close its file. */
async function filesOpenUnder(dir: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(dir)) n++;
  }
  return n;
}

describe('streamInto: a store read sent into an HTTP response over loopback', () => {
  let root: string;
  let store: FsObjectStore;
  let server: Server;
  let base: string;
  /** What the server does with each request; set per test. */
  let handler: (res: import('node:http').ServerResponse) => Promise<void>;
  let outcome: Promise<unknown>;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'epoch-send-'));
    store = await createFsObjectStore(root);
    server = createServer((_req, res) => {
      outcome = handler(res).then(
        () => 'ok',
        (err: unknown) => {
          res.destroy();
          return err;
        },
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    server.close();
    await rm(root, { recursive: true, force: true });
  });

  function fetchAll(): Promise<{ res: IncomingMessage; body: Buffer }> {
    return new Promise((resolve, reject) => {
      get(base, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      }).on('error', reject);
    });
  }

  it('sends a whole multi-buffer object and a range of it, byte for byte', async () => {
    // Larger than two send buffers and not a multiple of them, so buffers are reused mid-send.
    const bytes = randomBytes(9 * MiB + 123);
    await store.put('blobs/a', bytes);
    for (const range of [undefined, { offset: 5 * MiB - 7, length: 4 * MiB + 11 }]) {
      const expected = range ? bytes.subarray(range.offset, range.offset + range.length) : bytes;
      handler = async (res) => {
        res.writeHead(200, { 'Content-Length': String(expected.length) });
        await streamInto(await store.read('blobs/a', range), res);
      };
      const { body } = await fetchAll();
      expect(await outcome).toBe('ok');
      expect(body.length).toBe(expected.length);
      expect(sha256(body)).toBe(sha256(expected));
    }
    expect(await filesOpenUnder(root)).toBe(0);
  });

  it('pipes a stream that is not a fresh filesystem read', async () => {
    handler = async (res) => {
      res.writeHead(200, { 'Content-Length': '6' });
      await streamInto(Readable.from([Buffer.from('abc'), Buffer.from('def')]), res);
    };
    const { body } = await fetchAll();
    expect(await outcome).toBe('ok');
    expect(body.toString()).toBe('abcdef');
  });

  it('rejects and closes the file when the object turns out shorter than at open', async () => {
    await store.put('blobs/b', randomBytes(10 * MiB));
    handler = async (res) => {
      const source = await store.read('blobs/b');
      await truncate(join(root, 'blobs/b'), 6 * MiB);
      res.writeHead(200, { 'Content-Length': String(10 * MiB) });
      await streamInto(source, res);
    };
    // The server destroys the response: the client sees an aborted, short transfer.
    await expect(fetchAll()).rejects.toThrow();
    const err = await outcome;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/ended \d+ bytes early/);
    expect(await filesOpenUnder(root)).toBe(0);
  });

  it('rejects and closes the file when the client goes away mid-send', async () => {
    await store.put('blobs/c', randomBytes(64 * MiB));
    handler = async (res) => {
      res.writeHead(200, { 'Content-Length': String(64 * MiB) });
      await streamInto(await store.read('blobs/c'), res);
    };
    await new Promise<void>((resolve, reject) => {
      get(base, (res) => {
        res.once('data', () => {
          res.destroy();
          resolve();
        });
      }).on('error', reject);
    });
    expect(await outcome).toBeInstanceOf(Error);
    expect(await filesOpenUnder(root)).toBe(0);
  });
});
