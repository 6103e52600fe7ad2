import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { RGW, startRgwBucket } from '@epoch/test-support/rgw';
import { type S3TestServer, s3EnvFor, startS3Server } from '@epoch/test-support/s3-server';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';

/**
 * Starts a server on `s3` with a logger that keeps its lines, and returns the S3 warnings it
 * logged at start-up: the optional features the probe found missing, each with its fallback.
 */
async function startupWarnings(s3: S3TestServer): Promise<Record<string, string>[]> {
  const dir = await mkdtemp(join(tmpdir(), 'epoch-s3caps-'));
  await writeFile(join(dir, 's3.env'), '');
  const lines: { msg?: string; missing?: Record<string, string> }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const env = {
    EPOCH_ADDR: '127.0.0.1:0',
    EPOCH_DATA_DIR: dir,
    EPOCH_S3_ENV_FILE: join(dir, 's3.env'),
    ...s3EnvFor(s3, 'epoch/'),
  };
  const server = await startServer(loadConfig(env), { env, log: pino({ level: 'info' }, sink) });
  try {
    return lines
      .filter(
        (l) => l.msg === 'the S3 server lacks optional features: slower paths are used instead',
      )
      .map((l) => l.missing ?? {});
  } finally {
    await server.close(1000);
    await rm(dir, { recursive: true, force: true });
  }
}

describe('the S3 features found at start-up', () => {
  let s3: S3TestServer | undefined;
  afterEach(async () => {
    await s3?.close();
    s3 = undefined;
  });

  it('are logged as one warning naming each missing feature and its fallback', async () => {
    s3 = await startS3Server({ plain: true });
    const [missing, ...more] = await startupWarnings(s3);
    expect(more).toEqual([]);
    expect(Object.keys(missing ?? {}).sort()).toEqual([
      'byteOrderListing',
      'conditionalComplete',
      'conditionalCopy',
      'conditionalPut',
      'listMultipartUploads',
      'listParts',
      'uploadPartCopy',
    ]);
    expect(missing?.listMultipartUploads).toMatch(/lifecycle rule/);
  });

  it('are not logged when the server has them all', async () => {
    s3 = await startS3Server();
    expect(await startupWarnings(s3)).toEqual([]);
  });

  it.runIf(RGW)(
    'on Ceph RGW: no If-None-Match on completion and copy, no subset completion [needs EPOCH_TEST_RGW_URL]',
    async () => {
      s3 = await startRgwBucket();
      const [missing] = await startupWarnings(s3);
      expect(Object.keys(missing ?? {}).sort()).toEqual([
        'completeSubset',
        'conditionalComplete',
        'conditionalCopy',
      ]);
    },
  );
});
