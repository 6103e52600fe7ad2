import { Readable } from 'node:stream';
import type { Body } from '../storage/object-store.js';

/** Any accepted body as a Node stream, without copying bytes that are already in memory. */
export function toReadable(body: Body): Readable {
  if (body instanceof Readable) return body;
  if (typeof body === 'string' || body instanceof Uint8Array) return Readable.from([body]);
  return Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>);
}

/**
 * Reads a small object (a manifest, a session record) fully into memory, refusing to buffer more
 * than `maxBytes`: callers use this only for documents whose size the registry itself caps.
 */
export async function readAll(stream: Readable, maxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > maxBytes) {
      stream.destroy();
      throw new RangeError(`document larger than ${maxBytes} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}
