import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CopyObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { RGW, startRgwBucket } from '@epoch/test-support/rgw';
import { startFaultProxy } from '@epoch/test-support/s3-fault-proxy';
import {
  type S3TestServer,
  s3ConfigFor,
  s3EnvFor,
  startS3Server,
} from '@epoch/test-support/s3-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketAccessError, StorageError } from '../../src/storage/errors.js';
import {
  AWS_CAPABILITIES,
  type S3Capabilities,
  UnsupportedStorageFeatureError,
} from '../../src/storage/s3-capabilities.js';
import {
  createS3ObjectStore,
  resolveS3Config,
  S3ConfigError,
  type S3Settings,
} from '../../src/storage/s3-config.js';
import { partSizeFor, S3ObjectStore } from '../../src/storage/s3-store.js';
import { type DriverHarness, runDriverSuite } from './driver-suite.js';
import { digestOf, generated, generatedBytes, MiB, readAll, sha256 } from './helpers.js';

/** Small copy thresholds, so the suite's objects also go through multipart (UploadPartCopy) copies. */
const TUNING = { maxCopyObjectSize: 8 * MiB, copyPartSize: 5 * MiB };

let counter = 0;

/** Every optional feature missing: what plain fauxqs 1.9.2 has. */
const NONE: S3Capabilities = {
  byteOrderListing: false,
  conditionalPut: false,
  conditionalComplete: false,
  conditionalCopy: false,
  uploadPartCopy: false,
  listParts: false,
  listMultipartUploads: false,
  completeSubset: true,
};

/** What Ceph RGW 16.2 has: everything but If-None-Match on completion and copy, and subsets. */
const RGW_LIKE: S3Capabilities = {
  ...AWS_CAPABILITIES,
  conditionalComplete: false,
  conditionalCopy: false,
  completeSubset: false,
};

/**
 * Runs the shared suite against one server, each test under a fresh prefix of its bucket. The
 * first store probes the server (and must find `expected`); the others are told the answer, so
 * the probe's requests are not repeated a hundred times.
 */
function s3Suite(
  name: string,
  start: () => Promise<S3TestServer>,
  expected: S3Capabilities,
  suite: { large?: boolean; crash?: boolean },
) {
  let server: S3TestServer;
  let capabilities: S3Capabilities;
  beforeAll(async () => {
    server = await start();
    const probe = await createS3ObjectStore(s3ConfigFor(server, 'probe/'));
    capabilities = { ...probe.capabilities };
    await probe.close();
    expect(capabilities).toEqual(expected);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
  });
  runDriverSuite(
    name,
    async (): Promise<DriverHarness> => {
      const prefix = `t${++counter}/`;
      const config = { ...s3ConfigFor(server, prefix, TUNING), capabilities };
      const store = await createS3ObjectStore(config);
      return {
        store,
        reopen: async () => new S3ObjectStore(config),
        leftovers: () => server.uploads(prefix),
        childEnv: s3EnvFor(server, prefix),
        presigns: true,
        capabilities,
        dispose: () => store.close(),
      };
    },
    suite,
  );
}

describe('S3 driver on an S3-compatible server', () => {
  // In a child process: the server keeps every object in memory, which must not count toward
  // this process's RSS in the large-object tests.
  s3Suite('s3', () => startS3Server({ childProcess: true }), AWS_CAPABILITIES, {});
});

describe('S3 driver on a server without UploadPartCopy', () => {
  s3Suite(
    's3 without UploadPartCopy',
    () => startS3Server({ features: { uploadPartCopy: false } }),
    { ...AWS_CAPABILITIES, uploadPartCopy: false },
    { large: false, crash: false },
  );
});

describe('S3 driver on plain fauxqs 1.9.2 (no optional S3 feature)', () => {
  // In this process (the large tests would count its memory). No crash tests: they check that
  // the sweep removes the killed writer's multipart upload, which needs ListMultipartUploads;
  // without it that is the bucket lifecycle rule's job ('S3 driver specifics' tests the rest).
  s3Suite('s3 plain fauxqs', () => startS3Server({ plain: true }), NONE, {
    large: false,
    crash: false,
  });
});

describe('S3 driver on a server with RGW-like multipart and conditional writes', () => {
  // In-process fauxqs answering like Ceph RGW 16.2: If-None-Match on PutObject only, and a
  // completion must list every uploaded part.
  s3Suite(
    's3 RGW-like',
    () => startS3Server({ features: { completeSubset: false, conditionalWrites: 'put-only' } }),
    RGW_LIKE,
    { large: false, crash: false },
  );
  s3Suite(
    's3 RGW-like without UploadPartCopy',
    () =>
      startS3Server({
        features: { completeSubset: false, conditionalWrites: 'put-only', uploadPartCopy: false },
      }),
    { ...RGW_LIKE, uploadPartCopy: false },
    { large: false, crash: false },
  );
});

describe.runIf(RGW)('S3 driver on Ceph RGW [needs EPOCH_TEST_RGW_URL]', () => {
  s3Suite('rgw', startRgwBucket, RGW_LIKE, {});
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
    // Fails the server-side copy to the destination, the step after the upload is completed.
    const client = store.client as unknown as { send: (...args: unknown[]) => Promise<unknown> };
    const original = client.send;
    const failing = async (...args: unknown[]): Promise<unknown> => {
      if (args[0] instanceof CopyObjectCommand) {
        throw new StorageError('injected failure after completion');
      }
      return original.apply(store.client, args);
    };
    const first = await generatedBytes(12 * MiB + 3, { seed: 61 });
    let staged = await store.appendStaged(await store.beginStaged('_uploads/r/data'), first);
    client.send = failing;
    await expect(store.commitStaged(staged, 'dest')).rejects.toThrow('injected failure');
    client.send = original;
    expect(await store.stat('dest')).toBeUndefined();
    // The state from before the failed commit still reads, appends and commits correctly.
    expect(sha256(await readAll(await store.readStaged(staged)))).toBe(sha256(first));
    const more = await generatedBytes(MiB, { seed: 62 });
    staged = await store.appendStaged(staged, more);
    client.send = failing;
    await expect(store.commitStaged(staged, 'dest')).rejects.toThrow('injected failure');
    client.send = original;
    expect(await store.commitStaged(staged, 'dest')).toEqual({
      created: true,
      size: first.length + more.length,
    });
    expect(sha256(await readAll(await store.read('dest')))).toBe(
      sha256(Buffer.concat([first, more])),
    );
    expect((await store.list('')).objects.map((o) => o.key)).toEqual(['dest']);
    expect(await server.uploads('recover/')).toEqual([]);
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

  it('refuses, at start-up, a server without multipart uploads, naming what is missing', async () => {
    const none = await startS3Server({ features: { multipart: false } });
    try {
      const err = await createS3ObjectStore(s3ConfigFor(none, 'x/')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsupportedStorageFeatureError);
      expect((err as UnsupportedStorageFeatureError).feature).toBe('multipart');
      expect(String(err)).toMatch(/multipart uploads.*Epoch needs them/);
    } finally {
      await none.close();
    }
  });

  it('refuses a server with neither ListParts nor completion of a subset of the parts', () => {
    expect(
      () =>
        new S3ObjectStore({
          ...s3ConfigFor(server, ''),
          capabilities: { listParts: false, completeSubset: false },
        }),
    ).toThrow(/neither ListParts nor CompleteMultipartUpload of a subset/);
  });

  it('probes only what the configuration does not state', async () => {
    const proxy = await startFaultProxy(server.endpoint);
    try {
      const config = { ...s3ConfigFor(server, 'stated/'), endpoint: proxy.endpoint };
      const told = await createS3ObjectStore({ ...config, capabilities: { ...AWS_CAPABILITIES } });
      // HeadBucket only.
      expect(proxy.counts.requests).toBe(1);
      expect(told.capabilities).toEqual(AWS_CAPABILITIES);
      await told.close();
      const before = proxy.counts.requests;
      const { listParts: _unstated, ...stated } = AWS_CAPABILITIES;
      const partly = await createS3ObjectStore({
        ...config,
        capabilities: { ...stated, byteOrderListing: false },
      });
      expect(proxy.counts.requests - before).toBeGreaterThan(5);
      // Stated wins over the probe; the probe answers the rest.
      expect(partly.capabilities).toEqual({ ...AWS_CAPABILITIES, byteOrderListing: false });
      await partly.close();
      // The probe leaves nothing behind.
      const raw = await new S3ObjectStore(s3ConfigFor(server, '')).list('stated/');
      expect(raw.objects).toEqual([]);
      expect(await server.uploads('stated/')).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('counts a completion whose answer was lost as done, not as a missing upload', async () => {
    // The server completes the upload, the connection drops before its answer arrives, and the
    // SDK's retry meets NoSuchUpload: the first such commit of a blob answered 500.
    const proxy = await startFaultProxy(server.endpoint, { rates: { resetResponse: 1 } });
    // No fault until a step sets `cut` to 0: then its first completion loses its answer.
    let cut = 1;
    proxy.only = (req) =>
      req.method === 'POST' && /[?&]uploadId=/.test(req.url ?? '') && cut++ === 0;
    const store = await createS3ObjectStore({
      ...s3ConfigFor(server, 'lost-answer/'),
      endpoint: proxy.endpoint,
    });
    try {
      let staged = await store.beginStaged('_uploads/lost/data');
      const first = await generatedBytes(6 * MiB, { seed: 93 });
      staged = await store.appendStaged(staged, Readable.from([first]));
      const second = await generatedBytes(MiB + 3, { seed: 94 });
      staged = await store.appendStaged(staged, Readable.from([second]));
      cut = 0;
      expect(await store.commitStaged(staged, 'blobs/sha256/lost')).toEqual({
        created: true,
        size: 7 * MiB + 3,
      });
      expect(cut).toBeGreaterThan(1);
      expect(proxy.counts.resetResponse).toBe(1);
      expect(sha256(await readAll(await store.read('blobs/sha256/lost')))).toBe(
        sha256(Buffer.concat([first, second])),
      );
      // A monolithic put in parts, the same way.
      cut = 0;
      const whole = await generatedBytes(12 * MiB, { seed: 95 });
      await store.put('blobs/sha256/whole', Readable.from([whole]), { size: whole.length });
      expect(proxy.counts.resetResponse).toBe(2);
      expect(sha256(await readAll(await store.read('blobs/sha256/whole')))).toBe(sha256(whole));
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('appends to a fresh staged upload on plain fauxqs (the first PATCH that answered 500)', async () => {
    const plain = await startS3Server({ plain: true });
    const store = await createS3ObjectStore(s3ConfigFor(plain, 'epoch/'));
    try {
      expect(store.capabilities.listParts).toBe(false);
      // What a skopeo push does: one upload session, then chunks, then the commit.
      let staged = await store.beginStaged('_uploads/skopeo/data');
      const first = await generatedBytes(32 * MiB, { seed: 91 });
      staged = await store.appendStaged(staged, Readable.from([first]));
      const second = await generatedBytes(32 * MiB + 5, { seed: 92 });
      staged = await store.appendStaged(staged, Readable.from([second]));
      expect(await store.commitStaged(staged, 'blobs/sha256/x', { ifAbsent: true })).toEqual({
        created: true,
        size: 64 * MiB + 5,
      });
      expect(sha256(await readAll(await store.read('blobs/sha256/x')))).toBe(
        sha256(Buffer.concat([first, second])),
      );
      // An aborted session is still reported gone.
      const gone = await store.beginStaged('_uploads/gone/data');
      await store.abortStaged(gone);
      await expect(store.appendStaged(gone, 'x')).rejects.toThrow(/object not found/);
    } finally {
      await store.close();
      await plain.close();
    }
  });

  it('sweeps stale tails without ListMultipartUploads and leaves the uploads to a lifecycle rule', async () => {
    const plain = await startS3Server({ plain: true });
    const store = await createS3ObjectStore(s3ConfigFor(plain, ''));
    try {
      expect(store.capabilities.listMultipartUploads).toBe(false);
      const staged = await store.appendStaged(
        await store.beginStaged('_uploads/old/data'),
        Buffer.alloc(MiB, 1),
      );
      expect(staged.size).toBe(MiB);
      const keysBefore = (await store.list('_uploads/')).objects.map((o) => o.key);
      expect(keysBefore).toHaveLength(1);
      expect(await store.sweepStaged('_uploads/', new Date(Date.now() + 60_000))).toBe(1);
      expect((await store.list('_uploads/')).objects).toEqual([]);
      expect(await plain.uploads('_uploads/')).toEqual(['upload:_uploads/old/data']);
    } finally {
      await store.close();
      await plain.close();
    }
  });

  it('checks the bucket at creation', async () => {
    const missing = await createS3ObjectStore({
      ...s3ConfigFor(server, ''),
      bucket: 'no-such-bucket',
    }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(BucketAccessError);
    expect(missing).toMatchObject({ bucket: 'no-such-bucket', problem: 'not-found' });
    expect((missing as Error).message).toMatch(/no-such-bucket.*does not exist/);
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

describe('resolveS3Config', () => {
  const base = {
    endpoint: 's3.example.com',
    accessKey: 'AK',
    secretKey: 'SK',
    bucket: 'snapshots',
  };

  it('applies upstream defaults', () => {
    expect(resolveS3Config(base)).toEqual({
      endpoint: 'https://s3.example.com',
      accessKey: 'AK',
      secretKey: 'SK',
      bucket: 'snapshots',
      region: 'us-east-1',
      prefix: 'epoch/',
    });
  });

  it('reads the scheme, secure, the region and the prefix', () => {
    const cfg = (extra: Partial<S3Settings>) => resolveS3Config({ ...base, ...extra });
    expect(cfg({ endpoint: 'http://minio:9000' }).endpoint).toBe('http://minio:9000');
    expect(cfg({ endpoint: 'minio:9000', secure: false }).endpoint).toBe('http://minio:9000');
    expect(cfg({ endpoint: 'http://minio:9000', secure: true }).endpoint).toBe(
      'https://minio:9000',
    );
    expect(cfg({ endpoint: 'https://s3.example.com/' }).endpoint).toBe('https://s3.example.com');
    expect(cfg({ region: 'eu-west-3' }).region).toBe('eu-west-3');
    expect(cfg({ prefix: 'reg' }).prefix).toBe('reg/');
    expect(cfg({ prefix: '/a/b/' }).prefix).toBe('a/b/');
    expect(cfg({ prefix: '' }).prefix).toBe('');
  });

  it('throws an S3ConfigError naming the setting, the problem and the value', () => {
    const problem = (extra: Partial<S3Settings>) => {
      try {
        resolveS3Config({ ...base, ...extra });
      } catch (err) {
        expect(err).toBeInstanceOf(S3ConfigError);
        const { setting, problem, value, missing } = err as S3ConfigError;
        return { setting, problem, value, missing };
      }
      throw new Error('accepted');
    };
    expect(problem({ bucket: undefined, secretKey: '' })).toEqual({
      setting: 'secretKey',
      problem: 'missing',
      value: undefined,
      missing: ['secretKey', 'bucket'],
    });
    expect(problem({ bucket: 'a' })).toMatchObject({ setting: 'bucket', problem: 'invalid' });
    expect(problem({ endpoint: 'ftp://x' })).toMatchObject({
      setting: 'endpoint',
      problem: 'scheme',
      value: 'ftp://x',
    });
    expect(problem({ endpoint: 'https://x/path' })).toMatchObject({ problem: 'path' });
    expect(problem({ endpoint: 'https://u:p@x' })).toMatchObject({ problem: 'credentials' });
    expect(problem({ region: 'eu west' })).toMatchObject({ setting: 'region', problem: 'invalid' });
    expect(problem({ prefix: 'a/../b' })).toMatchObject({
      setting: 'prefix',
      problem: 'invalid',
      value: 'a/../b',
    });
  });
});
