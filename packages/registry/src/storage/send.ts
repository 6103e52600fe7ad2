import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileRangeStream } from './fs-read.js';

/**
 * Copies a stream returned by an object store's `read` into `destination` (typically an HTTP
 * response) and ends it. A filesystem read that has not been consumed yet is written straight from
 * the file through a few reused large buffers (`FileRangeStream.sendTo`), which measured a third
 * of the server CPU per GiB that piping the same stream costs; any other stream is piped. Rejects when either side fails or the
 * destination closes early; the caller decides what happens to `destination` then.
 */
export async function streamInto(source: Readable, destination: Writable): Promise<void> {
  if (source instanceof FileRangeStream && source.canSend) {
    await source.sendTo(destination);
    return;
  }
  await pipeline(source, destination);
}
