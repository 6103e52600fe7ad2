import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/storage/errors.js';
import { createS3ObjectStore, s3ConfigFromEnv } from '../../src/storage/s3-config.js';
import { partSizeFor, S3ObjectStore } from '../../src/storage/s3-store.js';
import {
  type S3TestServer,
  type StartS3ServerOptions,
  s3ConfigFor,
  s3EnvFor,
  startS3Server,
} from '../support/s3-server.js';
import { type DriverHarness, runDriverSuite } from './driver-suite.js';
import { digestOf, generated, generatedBytes, MiB, readAll, sha256 } from './helpers.js';

/** Small copy thresholds, so the suite's objects also go through multipart (UploadPartCopy) copies. */
const TUNING = { maxCopyObjectSize: 8 * MiB, copyPartSize: 5 * MiB };

let counter = 0;

async function uploadsUnder(store: S3ObjectStore, prefix: string): Promise<string[]> {
  const out = await store.client.send(
    new ListMultipartUploadsCommand({ Bucket: store.bucket, Prefix: prefix }),
  );
  return (out.Uploads ?? []).map((u) => `upload:${u.Key}`);
}

/** Runs the shared suite against one server, each test under a fresh prefix of its bucket. */
function s3Suite(
  name: string,
  serverOptions: StartS3ServerOptions,
  suite: { large?: boolean; crash?: boolean },
) {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server(serverOptions);
  });
  afterAll(async () => {
    await server?.close();
  });
  runDriverSuite(
    name,
    async (): Promise<DriverHarness> => {
      const prefix = `t${++counter}/`;
      const config = s3ConfigFor(server, prefix, TUNING);
      const store = await createS3ObjectStore(config);
      return {
        store,
        reopen: async () => new S3ObjectStore(config),
        leftovers: () => uploadsUnder(store, prefix),
        childEnv: s3EnvFor(server, prefix),
        presigns: true,
        dispose: () => store.close(),
      };
    },
    suite,
  );
}

describe('S3 driver on an S3-compatible server', () => {
  // In a child process: the server keeps every object in memory, which must not count toward
  // this process's RSS in the large-object tests.
  s3Suite('s3', { childProcess: true }, {});
});

describe('S3 driver on a server without UploadPartCopy', () => {
  s3Suite(
    's3 without UploadPartCopy',
    { features: { uploadPartCopy: false } },
    {
      large: false,
      crash: false,
    },
  );
});

describe('S3 driver specifics', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('stores every key under the prefix', async () => {
    const store = new S3ObjectStore(s3ConfigFor(server, 'epoch/'));
    await store.put('blobs/sha256/aa', 'x');
    const raw = await store.client.send(
      new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'epoch/' }),
    );
    expect(raw.Contents?.map((o) => o.Key)).toEqual(['epoch/blobs/sha256/aa']);
    const unprefixed = new S3ObjectStore(s3ConfigFor(server, ''));
    expect((await unprefixed.list('')).objects.map((o) => o.key)).toContain(
      'epoch/blobs/sha256/aa',
    );
    await store.close();
    await unprefixed.close();
  });

  it('uses multipart copies above the CopyObject limit', async () => {
    const store = new S3ObjectStore(s3ConfigFor(server, 'mpcopy/', TUNING));
    const size = 23 * MiB + 1;
    const { stream, digest } = generated(size);
    await store.put('src', stream);
    expect(await store.copy('src', 'dst', { ifAbsent: true })).toEqual({ created: true, size });
    expect(await store.copy('src', 'dst', { ifAbsent: true })).toEqual({ created: false, size });
    expect(await digestOf(await store.read('dst'))).toEqual({ sha256: await digest, size });
    await store.close();
  });

  it('recovers a commit that failed after completing the upload', async () => {
    const store = new S3ObjectStore(s3ConfigFor(server, 'recover/'));
    const patchable = store as unknown as Record<string, unknown>;
    const original = patchable.copyObject;
    const first = await generatedBytes(12 * MiB + 3, { seed: 61 });
    let staged = await store.appendStaged(await store.beginStaged('_uploads/r/data'), first);
    patchable.copyObject = async () => {
      throw new StorageError('injected failure after completion');
    };
    await expect(store.commitStaged(staged, 'dest')).rejects.toThrow('injected failure');
    patchable.copyObject = original;
    expect(await store.stat('dest')).toBeUndefined();
    // The state from before the failed commit still reads, appends and commits correctly.
    expect(sha256(await readAll(await store.readStaged(staged)))).toBe(sha256(first));
    const more = await generatedBytes(MiB, { seed: 62 });
    staged = await store.appendStaged(staged, more);
    patchable.copyObject = async () => {
      throw new StorageError('injected failure after completion');
    };
    await expect(store.commitStaged(staged, 'dest')).rejects.toThrow('injected failure');
    patchable.copyObject = original;
    expect(await store.commitStaged(staged, 'dest')).toEqual({
      created: true,
      size: first.length + more.length,
    });
    expect(sha256(await readAll(await store.read('dest')))).toBe(
      sha256(Buffer.concat([first, more])),
    );
    expect((await store.list('')).objects.map((o) => o.key)).toEqual(['dest']);
    expect(await uploadsUnder(store, 'recover/')).toEqual([]);
    await store.close();
  });

  it('falls back to HEAD-then-write where conditional writes are not implemented', async () => {
    const plain = await startS3Server({ features: { conditionalWrites: 'not-implemented' } });
    const store = new S3ObjectStore(s3ConfigFor(plain, ''));
    try {
      expect(await store.put('k', 'one', { ifAbsent: true })).toEqual({ created: true, size: 3 });
      expect(await store.put('k', 'two!', { ifAbsent: true })).toEqual({ created: false, size: 3 });
      const big = await generatedBytes(12 * MiB);
      expect(await store.put('big', Readable.from([big]), { ifAbsent: true })).toEqual({
        created: true,
        size: big.length,
      });
      expect(await store.copy('k', 'k2', { ifAbsent: true })).toEqual({ created: true, size: 3 });
      expect(await store.copy('big', 'k2', { ifAbsent: true })).toEqual({
        created: false,
        size: 3,
      });
      expect(sha256(await readAll(await store.read('big')))).toBe(sha256(big));
    } finally {
      await store.close();
      await plain.close();
    }
  });

  it('checks the bucket at creation', async () => {
    await expect(
      createS3ObjectStore({ ...s3ConfigFor(server, ''), bucket: 'no-such-bucket' }),
    ).rejects.toThrow(/no-such-bucket.*does not exist/);
    await expect(
      createS3ObjectStore({ ...s3ConfigFor(server, ''), endpoint: 'http://127.0.0.1:9' }),
    ).rejects.toBeInstanceOf(StorageError);
  });

  it('grows part sizes so 10,000 parts hold more than 500 GiB', () => {
    let total = 0;
    for (let n = 1; n <= 10_000; n++) total += partSizeFor(n);
    expect(total).toBeGreaterThan(500 * 1024 * MiB);
    expect(partSizeFor(1)).toBe(10 * MiB);
    expect(partSizeFor(10_000)).toBe(80 * MiB);
  });
});

describe('s3ConfigFromEnv', () => {
  const base = {
    EPOCH_S3_ENDPOINT: 's3.example.com',
    EPOCH_S3_ACCESS_KEY: 'AK',
    EPOCH_S3_SECRET_KEY: 'SK',
    EPOCH_S3_BUCKET: 'snapshots',
    HOME: '/nonexistent-home',
  };

  it('is undefined when nothing is configured', () => {
    expect(s3ConfigFromEnv({ HOME: '/nonexistent-home' })).toBeUndefined();
  });

  it('applies upstream defaults', () => {
    expect(s3ConfigFromEnv(base)).toEqual({
      endpoint: 'https://s3.example.com',
      accessKey: 'AK',
      secretKey: 'SK',
      bucket: 'snapshots',
      region: 'us-east-1',
      prefix: 'epoch/',
    });
  });

  it('reads the scheme, EPOCH_S3_SECURE, the region and the prefix', () => {
    const cfg = (extra: Record<string, string>) => s3ConfigFromEnv({ ...base, ...extra });
    expect(cfg({ EPOCH_S3_ENDPOINT: 'http://minio:9000' })?.endpoint).toBe('http://minio:9000');
    expect(cfg({ EPOCH_S3_ENDPOINT: 'minio:9000', EPOCH_S3_SECURE: 'false' })?.endpoint).toBe(
      'http://minio:9000',
    );
    expect(cfg({ EPOCH_S3_ENDPOINT: 'http://minio:9000', EPOCH_S3_SECURE: 'true' })?.endpoint).toBe(
      'https://minio:9000',
    );
    expect(cfg({ EPOCH_S3_ENDPOINT: 'https://s3.example.com/' })?.endpoint).toBe(
      'https://s3.example.com',
    );
    expect(cfg({ EPOCH_S3_REGION: 'eu-west-3' })?.region).toBe('eu-west-3');
    expect(cfg({ EPOCH_S3_PREFIX: 'reg' })?.prefix).toBe('reg/');
    expect(cfg({ EPOCH_S3_PREFIX: '/a/b/' })?.prefix).toBe('a/b/');
    expect(cfg({ EPOCH_S3_PREFIX: '' })?.prefix).toBe('');
  });

  it('names the variable that is wrong', () => {
    const bad = (extra: Record<string, string | undefined>) => () =>
      s3ConfigFromEnv({ ...base, ...extra });
    expect(bad({ EPOCH_S3_BUCKET: undefined })).toThrow(/EPOCH_S3_BUCKET/);
    expect(bad({ EPOCH_S3_SECRET_KEY: '' })).toThrow(/EPOCH_S3_SECRET_KEY/);
    expect(bad({ EPOCH_S3_SECURE: 'maybe' })).toThrow(/EPOCH_S3_SECURE/);
    expect(bad({ EPOCH_S3_ENDPOINT: 'ftp://x' })).toThrow(/EPOCH_S3_ENDPOINT/);
    expect(bad({ EPOCH_S3_ENDPOINT: 'https://x/path' })).toThrow(/EPOCH_S3_ENDPOINT/);
    expect(bad({ EPOCH_S3_PREFIX: 'a/../b' })).toThrow(/EPOCH_S3_PREFIX/);
    expect(bad({ EPOCH_S3_ENV_FILE: '/nonexistent/s3.env', EPOCH_S3_BUCKET: '' })).toThrow(
      /EPOCH_S3_ENV_FILE/,
    );
  });

  it('fills missing settings from the env file without overriding the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'epoch-s3-env-'));
    try {
      await writeFile(
        join(dir, 's3.env'),
        [
          '# Epoch S3 settings',
          'EPOCH_S3_ENDPOINT=http://from-file:9000',
          'export EPOCH_S3_ACCESS_KEY="file key"',
          "EPOCH_S3_SECRET_KEY='file secret'",
          'EPOCH_S3_BUCKET=file-bucket # trailing comment',
          'EPOCH_S3_PREFIX=',
          '',
        ].join('\n'),
      );
      const env = {
        HOME: dir,
        EPOCH_S3_ENV_FILE: join(dir, 's3.env'),
        EPOCH_S3_ACCESS_KEY: 'env key',
      };
      expect(s3ConfigFromEnv(env)).toEqual({
        endpoint: 'http://from-file:9000',
        accessKey: 'env key',
        secretKey: 'file secret',
        bucket: 'file-bucket',
        region: 'us-east-1',
        prefix: '',
      });
      // The default location is ~/.config/epoch/s3.env.
      await writeFile(join(dir, 'default.env'), 'EPOCH_S3_BUCKET=default-bucket\n');
      const { mkdir, rename } = await import('node:fs/promises');
      await mkdir(join(dir, '.config', 'epoch'), { recursive: true });
      await rename(join(dir, 'default.env'), join(dir, '.config', 'epoch', 's3.env'));
      expect(s3ConfigFromEnv({ ...base, HOME: dir, EPOCH_S3_BUCKET: undefined })?.bucket).toBe(
        'default-bucket',
      );
      // Not read at all when the environment is complete.
      expect(s3ConfigFromEnv({ ...base, HOME: dir })?.bucket).toBe('snapshots');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
