import type { SparseSegment } from '@epoch/oci';

/** A piece of a file as the chunking rule cuts it (docs/incremental-snapshots.md §3). */
export type FilePiece = { kind: 'hole'; length: number } | { kind: 'chunk'; bytes: Buffer };

/**
 * Reads exactly the bytes asked for from a stream of buffers, without copying when a request
 * falls inside one buffer (the common case: chunks are far smaller than stream buffers).
 */
class ExactReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #head: Buffer = Buffer.alloc(0);

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  async read(n: number): Promise<Buffer> {
    if (this.#head.length >= n) {
      const out = this.#head.subarray(0, n);
      this.#head = this.#head.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = this.#head.copy(out, 0);
    while (filled < n) {
      const next = await this.#source.next();
      if (next.done) throw new RangeError(`the file ended ${n - filled} bytes early`);
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      const take = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, take);
      filled += take;
      this.#head = chunk.subarray(take);
    }
    return out;
  }

  async end(): Promise<void> {
    if (this.#head.length > 0) throw new RangeError('the file has more bytes than its segments');
    const next = await this.#source.next();
    if (!next.done && next.value.byteLength > 0) {
      throw new RangeError('the file has more bytes than its segments');
    }
  }
}

/**
 * Cuts a file into holes and chunks: `body` holds the data segments' bytes back to back (as a
 * sparse tar entry does), `segments` says where they go in the logical file of `size` bytes
 * (one segment `[0, size)` when the file is not sparse). Chunks end at every multiple of
 * `chunkSize` and at segment edges, so holes stay exact.
 *
 * @throws {RangeError} when the body is shorter or longer than its segments, or the segments
 *   overlap or pass the end of the file
 */
export async function* chunkFile(
  body: AsyncIterable<Uint8Array>,
  segments: readonly SparseSegment[],
  size: number,
  chunkSize: number,
): AsyncGenerator<FilePiece> {
  const reader = new ExactReader(body);
  let pos = 0;
  for (const { o, l } of segments) {
    if (o < pos || o + l > size)
      throw new RangeError('sparse segments overlap or pass the file end');
    if (l === 0) continue;
    if (o > pos) yield { kind: 'hole', length: o - pos };
    pos = o;
    const end = o + l;
    while (pos < end) {
      const next = Math.min(end, (Math.floor(pos / chunkSize) + 1) * chunkSize);
      yield { kind: 'chunk', bytes: await reader.read(next - pos) };
      pos = next;
    }
  }
  if (size > pos) yield { kind: 'hole', length: size - pos };
  await reader.end();
}
