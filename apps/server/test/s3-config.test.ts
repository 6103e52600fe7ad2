import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ConfigError } from '@epoch/registry';
import { type S3TestServer, s3EnvFor, startS3Server } from '@epoch/test-support/s3-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadS3Config } from '../src/config.js';
import { openObjectStore } from '../src/storage.js';

/** The EPOCH_S3_* variables and the env file, read by the server (the library reads none). */
describe('loadS3Config', () => {
  const base = {
    EPOCH_S3_ENDPOINT: 's3.example.com',
    EPOCH_S3_ACCESS_KEY: 'AK',
    EPOCH_S3_SECRET_KEY: 'SK',
    EPOCH_S3_BUCKET: 'snapshots',
    HOME: '/nonexistent-home',
  };

  it('is undefined when nothing is configured', () => {
    expect(loadS3Config({ HOME: '/nonexistent-home' })).toBeUndefined();
  });

  it('applies upstream defaults', () => {
    expect(loadS3Config(base)).toEqual({
      endpoint: 'https://s3.example.com',
      accessKey: 'AK',
      secretKey: 'SK',
      bucket: 'snapshots',
      region: 'us-east-1',
      prefix: 'epoch/',
    });
  });

  it('reads the scheme, EPOCH_S3_SECURE, the region and the prefix', () => {
    const cfg = (extra: Record<string, string>) => loadS3Config({ ...base, ...extra });
    expect(cfg({ EPOCH_S3_ENDPOINT: 'http://minio:9000' })?.endpoint).toBe('http://minio:9000');
    expect(cfg({ EPOCH_S3_ENDPOINT: 'minio:9000', EPOCH_S3_SECURE: 'false' })?.endpoint).toBe(
      'http://minio:9000',
    );
    expect(cfg({ EPOCH_S3_ENDPOINT: 'http://minio:9000', EPOCH_S3_SECURE: 'true' })?.endpoint).toBe(
      'https://minio:9000',
    );
    expect(cfg({ EPOCH_S3_ENDPOINT: ' https://s3.example.com/ ' })?.endpoint).toBe(
      'https://s3.example.com',
    );
    expect(cfg({ EPOCH_S3_REGION: 'eu-west-3' })?.region).toBe('eu-west-3');
    expect(cfg({ EPOCH_S3_REGION: ' ' })?.region).toBe('us-east-1');
    expect(cfg({ EPOCH_S3_PREFIX: 'reg' })?.prefix).toBe('reg/');
    expect(cfg({ EPOCH_S3_PREFIX: '/a/b/' })?.prefix).toBe('a/b/');
    expect(cfg({ EPOCH_S3_PREFIX: '' })?.prefix).toBe('');
  });

  it('names the variable that is wrong, in a ConfigError', () => {
    const message = (extra: Record<string, string | undefined>) => {
      try {
        loadS3Config({ ...base, ...extra });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(message({ EPOCH_S3_BUCKET: undefined })).toBe(
      'S3 storage is partly configured: EPOCH_S3_BUCKET is not set (set all of EPOCH_S3_ENDPOINT, ' +
        'EPOCH_S3_ACCESS_KEY, EPOCH_S3_SECRET_KEY and EPOCH_S3_BUCKET, or none for the filesystem store)',
    );
    expect(message({ EPOCH_S3_SECRET_KEY: '', EPOCH_S3_BUCKET: ' ' })).toMatch(
      /^S3 storage is partly configured: EPOCH_S3_SECRET_KEY, EPOCH_S3_BUCKET are not set/,
    );
    expect(message({ EPOCH_S3_BUCKET: 'x' })).toBe(
      'EPOCH_S3_BUCKET is not a valid bucket name: "x"',
    );
    expect(message({ EPOCH_S3_SECURE: 'maybe' })).toBe(
      'EPOCH_S3_SECURE must be true or false, not "maybe"',
    );
    expect(message({ EPOCH_S3_ENDPOINT: 'FTP://x' })).toBe(
      'EPOCH_S3_ENDPOINT must use http or https, not ftp',
    );
    expect(message({ EPOCH_S3_ENDPOINT: 'https://x/path' })).toBe(
      'EPOCH_S3_ENDPOINT must be a host (and port) only, without a path: "https://x/path"',
    );
    expect(message({ EPOCH_S3_ENDPOINT: 'https://u:p@x' })).toBe(
      'EPOCH_S3_ENDPOINT must not contain credentials; use EPOCH_S3_ACCESS_KEY',
    );
    expect(message({ EPOCH_S3_ENDPOINT: 'http://[x' })).toBe(
      'EPOCH_S3_ENDPOINT is not a valid host or URL: "http://[x"',
    );
    expect(message({ EPOCH_S3_REGION: 'eu west' })).toBe(
      'EPOCH_S3_REGION is not a valid region: "eu west"',
    );
    expect(message({ EPOCH_S3_PREFIX: 'a/../b' })).toBe(
      'EPOCH_S3_PREFIX is not a valid key prefix: "a/../b"',
    );
    expect(message({ EPOCH_S3_ENV_FILE: '/nonexistent/s3.env', EPOCH_S3_BUCKET: '' })).toMatch(
      /^EPOCH_S3_ENV_FILE names a file that cannot be read: /,
    );
    // Upstream's order: a missing setting or a bad bucket name is told before EPOCH_S3_SECURE,
    // EPOCH_S3_SECURE before the endpoint, region and prefix.
    expect(message({ EPOCH_S3_BUCKET: '', EPOCH_S3_SECURE: 'maybe' })).toMatch(/partly/);
    expect(message({ EPOCH_S3_BUCKET: 'x', EPOCH_S3_SECURE: 'maybe' })).toMatch(/BUCKET/);
    expect(message({ EPOCH_S3_ENDPOINT: 'ftp://x', EPOCH_S3_SECURE: 'maybe' })).toMatch(
      /EPOCH_S3_SECURE/,
    );
    // The library's own error, with its fields, is the cause.
    try {
      loadS3Config({ ...base, EPOCH_S3_REGION: 'eu west' });
    } catch (err) {
      const cause = (err as Error).cause as S3ConfigError;
      expect(cause).toBeInstanceOf(S3ConfigError);
      expect(cause).toMatchObject({ setting: 'region', problem: 'invalid', value: 'eu west' });
    }
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
      expect(loadS3Config(env)).toEqual({
        endpoint: 'http://from-file:9000',
        accessKey: 'env key',
        secretKey: 'file secret',
        bucket: 'file-bucket',
        region: 'us-east-1',
        prefix: '',
      });
      // The default location is ~/.config/epoch/s3.env.
      await mkdir(join(dir, '.config', 'epoch'), { recursive: true });
      await writeFile(join(dir, '.config', 'epoch', 's3.env'), 'EPOCH_S3_BUCKET=default-bucket\n');
      expect(loadS3Config({ ...base, HOME: dir, EPOCH_S3_BUCKET: undefined })?.bucket).toBe(
        'default-bucket',
      );
      // Not read at all when the environment is complete.
      expect(loadS3Config({ ...base, HOME: dir })?.bucket).toBe('snapshots');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('openObjectStore on S3', () => {
  let s3: S3TestServer;
  let dir: string;
  beforeAll(async () => {
    s3 = await startS3Server();
    dir = await mkdtemp(join(tmpdir(), 'epoch-s3-open-'));
  });
  afterAll(async () => {
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('names EPOCH_S3_BUCKET when the bucket does not exist', async () => {
    const env = {
      EPOCH_DATA_DIR: dir,
      EPOCH_S3_ENV_FILE: '/dev/null',
      ...s3EnvFor(s3, 'epoch/'),
      EPOCH_S3_BUCKET: 'no-such-bucket',
    };
    const err = await openObjectStore(loadConfig(env), env).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `bucket no-such-bucket at ${s3.endpoint} does not exist (EPOCH_S3_BUCKET)`,
    );
  });

  it('opens the store the variables name', async () => {
    const env = { EPOCH_DATA_DIR: dir, EPOCH_S3_ENV_FILE: '/dev/null', ...s3EnvFor(s3, 'x/') };
    const store = await openObjectStore(loadConfig(env), env);
    try {
      expect(store.kind).toBe('s3');
    } finally {
      await store.close();
    }
  });
});
