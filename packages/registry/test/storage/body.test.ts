import { PassThrough } from 'node:stream';
import { expect, it } from 'vitest';
import { exactLength } from '../../src/storage/body.js';
import { StorageError, StorageUnavailableError } from '../../src/storage/errors.js';

async function drain(stream: NodeJS.ReadableStream): Promise<unknown> {
  try {
    for await (const _ of stream) {
      // consume
    }
    return undefined;
  } catch (err) {
    return err;
  }
}

it('turns a backend stream failure (a reset connection) into StorageUnavailableError', async () => {
  const source = new PassThrough();
  const checked = exactLength(source, 10, 'blobs/x');
  source.write(Buffer.from('abc'));
  const reset = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
  setImmediate(() => source.destroy(reset));
  const err = await drain(checked);
  expect(err).toBeInstanceOf(StorageUnavailableError);
  expect((err as Error).cause).toBe(reset);
});

it('reports a short body as unavailable storage and a long one as an integrity error', async () => {
  const short = new PassThrough();
  const shortChecked = exactLength(short, 10, 'k');
  short.end(Buffer.from('abc'));
  expect(await drain(shortChecked)).toBeInstanceOf(StorageUnavailableError);

  const long = new PassThrough();
  const longChecked = exactLength(long, 2, 'k');
  long.end(Buffer.from('abc'));
  const err = await drain(longChecked);
  expect(err).toBeInstanceOf(StorageError);
  expect(err).not.toBeInstanceOf(StorageUnavailableError);
});
