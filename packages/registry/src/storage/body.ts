import { Readable, Transform, type TransformCallback } from 'node:stream';
import { StorageError, StorageUnavailableError } from './errors.js';
import type { Body } from './object-store.js';

/** The length of a body held in memory, or `undefined` for a stream. */
export function knownLength(body: Body): number | undefined {
  if (typeof body === 'string') return Buffer.byteLength(body, 'utf8');
  if (body instanceof Uint8Array) return body.byteLength;
  return undefined;
}

/**
 * The bytes of `body` as a sequence of chunks, whatever its type. A Node stream is iterated without
 * destroying it when the consumer stops early (a size check that fails, say): the caller owns the
 * stream, and an HTTP request body rejected early must still be drained by the HTTP layer.
 */
export async function* bodyChunks(body: Body, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted();
  if (typeof body === 'string') {
    yield Buffer.from(body, 'utf8');
    return;
  }
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  if (body instanceof ReadableStream) {
    const reader = body.getReader();
    try {
      for (;;) {
        signal?.throwIfAborted();
        const { done, value } = await reader.read();
        if (done) return;
        yield toBytes(value);
      }
    } finally {
      reader.releaseLock();
    }
  }
  for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<unknown>) {
    signal?.throwIfAborted();
    yield toBytes(chunk);
  }
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  // Object-mode streams such as `Readable.from(['a', 'b'])` yield strings.
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError(`body chunk is not bytes or a string: ${typeof chunk}`);
}

/** A stream with no bytes. */
export function emptyStream(): Readable {
  return Readable.from([]);
}

/**
 * Passes `source` through and errors the result unless exactly `expected` bytes arrive. Backends
 * can end a response cleanly on fewer bytes than promised (a truncated file, a dropped connection
 * that looks like an end); the object-store contract says a read never does.
 */
export function exactLength(source: Readable, expected: number, key: string): Readable {
  let seen = 0;
  const check = new Transform({
    // Keep chunks as they are (up to 1 MiB from the drivers) rather than re-buffering them small.
    readableHighWaterMark: 4 * 1024 * 1024,
    writableHighWaterMark: 4 * 1024 * 1024,
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > expected) {
        callback(
          new StorageError(`read of ${key} returned more than the ${expected} bytes expected`),
        );
        return;
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (seen !== expected) {
        callback(
          new StorageUnavailableError(
            `read of ${key} ended after ${seen} of ${expected} bytes (truncated)`,
          ),
        );
        return;
      }
      callback();
    },
  });
  // A failing backend stream (a reset connection, an aborted response) is the storage being
  // unavailable, a typed error the HTTP layer answers with 503; an abort stays an abort.
  source.on('error', (err) =>
    check.destroy(
      err instanceof StorageError || err.name === 'AbortError'
        ? err
        : new StorageUnavailableError(`read of ${key} failed: ${err.message}`, { cause: err }),
    ),
  );
  let ended = false;
  source.once('end', () => {
    ended = true;
  });
  source.once('close', () => {
    // A socket that closes without an error or an end (some HTTP failures) must not leave the
    // consumer waiting forever.
    if (!ended && !check.destroyed) {
      check.destroy(
        new StorageUnavailableError(
          `read of ${key} was cut off after ${seen} of ${expected} bytes`,
        ),
      );
    }
  });
  check.on('close', () => {
    // A consumer that stops early must release the file handle or socket behind `source`.
    if (!source.destroyed) source.destroy();
  });
  return source.pipe(check);
}
