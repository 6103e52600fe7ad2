import { type ByteSink, type SparseSegment, writeAll } from '@epoch/oci';

/** What {@link chunkFile} hands the pieces of a file to, in file order. */
export interface ChunkSink {
  /** A hole of `length` bytes (before, between or after the data segments). */
  hole(length: number): void;
  /**
   * A chunk's bytes: a view into the body's buffer or into a buffer used again for the next
   * chunk that straddles two of them, valid until the call returns or, if it returns a promise,
   * until that settles (the next chunk waits for it). Copy what must outlive it.
   */
  chunk(bytes: Buffer): void | Promise<void>;
}

/**
 * Cuts a file into holes and chunks: the bytes written hold the data segments' bytes back to
 * back (as a sparse tar entry does), `segments` says where they go in the logical file of `size`
 * bytes (one segment `[0, size)` when the file is not sparse). Chunks end at every multiple of
 * `chunkSize` and at segment edges, so holes stay exact.
 *
 * Each written buffer is cut in one synchronous pass, the sink called per piece: no promise,
 * generator step or piece object per chunk. A memory image has hundreds of thousands of chunks,
 * and per-chunk garbage, alive while the export's pipe buffers wait in their queues, was
 * promoted with them and cost a full collection every few dozen milliseconds. A promise from
 * the sink pauses the cut, and `write` returns one for the rest of its buffer.
 *
 * @throws {RangeError} when the segments overlap or pass the end of the file (before anything
 *   is told); from `write` or `end`, when the bytes are more or fewer than the segments hold
 */
export function fileChunker(
  segments: readonly SparseSegment[],
  size: number,
  chunkSize: number,
  sink: ChunkSink,
): ByteSink {
  const data = checkedSegments(segments, size);
  return new Cutter(data, size, chunkSize, sink);
}

/** {@link fileChunker} over a body read as an async iterable. */
export async function chunkFile(
  body: AsyncIterable<Uint8Array>,
  segments: readonly SparseSegment[],
  size: number,
  chunkSize: number,
  sink: ChunkSink,
): Promise<void> {
  return writeAll(body, fileChunker(segments, size, chunkSize, sink));
}

/** The non-empty segments, checked to be in order, apart and inside the file. */
function checkedSegments(segments: readonly SparseSegment[], size: number): SparseSegment[] {
  let pos = 0;
  for (const { o, l } of segments) {
    if (o < pos || o + l > size)
      throw new RangeError('sparse segments overlap or pass the file end');
    pos = o + l;
  }
  return segments.filter((s) => s.l > 0);
}

function endOf(segment: SparseSegment): number {
  return segment.o + segment.l;
}

/** Where the cut is in the file, and the piece being gathered across body buffers. */
class Cutter implements ByteSink {
  readonly #segments: SparseSegment[];
  readonly #size: number;
  readonly #chunkSize: number;
  readonly #sink: ChunkSink;
  /** A piece straddling two body buffers is gathered here (used again for the next). */
  readonly #carry: Buffer;
  #carried = 0;
  /** Index of the segment being cut (`#segments.length`: all done). */
  #segment = 0;
  /** Logical position of the next byte of the body. */
  #pos = 0;
  #segmentEnd = 0;
  /** The sink's promise for the last piece, if it returned one: wait before settling. */
  #pending: void | Promise<void> = undefined;
  /** The last piece ended its segment: the next one starts once it settled. */
  #ended = false;

  constructor(segments: SparseSegment[], size: number, chunkSize: number, sink: ChunkSink) {
    this.#segments = segments;
    this.#size = size;
    this.#chunkSize = chunkSize;
    this.#sink = sink;
    this.#carry = Buffer.allocUnsafe(chunkSize);
    this.#enter(0);
  }

  write(buffer: Buffer): void | Promise<void> {
    return this.#cutFrom(buffer, 0);
  }

  #cutFrom(buffer: Buffer, from: number): void | Promise<void> {
    let at = from;
    while (at < buffer.length) {
      at = this.#cut(buffer, at);
      const pending = this.#pending;
      if (pending) {
        return pending.then(() => {
          this.#settle();
          return this.#cutFrom(buffer, at);
        });
      }
      this.#settle();
    }
  }

  end(): void {
    const missing = this.#missing();
    if (missing > 0) throw new RangeError(`the file ended ${missing} bytes early`);
    const last = this.#segments[this.#segments.length - 1];
    const end = last ? endOf(last) : 0;
    if (this.#size > end) this.#sink.hole(this.#size - end);
  }

  /** Moves to segment `i`, telling the hole before it. */
  #enter(i: number): void {
    const from = i === 0 ? 0 : this.#segmentEnd;
    this.#segment = i;
    const next = this.#segments[i];
    if (!next) return;
    if (next.o > from) this.#sink.hole(next.o - from);
    this.#pos = next.o;
    this.#segmentEnd = endOf(next);
  }

  /**
   * Cuts from `at` of `buffer` up to the end of the next piece (or of the buffer); hands a
   * complete piece to the sink, its promise (if any) kept until it settles.
   *
   * @returns where the cut ended
   */
  #cut(buffer: Buffer, at: number): number {
    if (this.#segment >= this.#segments.length) {
      throw new RangeError('the file has more bytes than its segments');
    }
    const edge = Math.min(
      this.#segmentEnd,
      (Math.floor(this.#pos / this.#chunkSize) + 1) * this.#chunkSize,
    );
    const want = edge - this.#pos - this.#carried;
    let piece: Buffer;
    if (this.#carried === 0 && buffer.length - at >= want) {
      piece = buffer.subarray(at, at + want);
      at += want;
    } else {
      const take = Math.min(want, buffer.length - at);
      buffer.copy(this.#carry, this.#carried, at, at + take);
      this.#carried += take;
      at += take;
      if (this.#carried < edge - this.#pos) return at;
      piece = this.#carry.subarray(0, this.#carried);
      this.#carried = 0;
    }
    this.#pos = edge;
    this.#ended = edge === this.#segmentEnd;
    this.#pending = this.#sink.chunk(piece);
    return at;
  }

  /** After the last piece is taken: moves to the next segment if it ended one. */
  #settle(): void {
    this.#pending = undefined;
    if (!this.#ended) return;
    this.#ended = false;
    this.#enter(this.#segment + 1);
  }

  /** Body bytes the segments still expect. */
  #missing(): number {
    let missing = 0;
    const current = this.#segments[this.#segment];
    if (current) missing += this.#segmentEnd - this.#pos - this.#carried;
    for (const s of this.#segments.slice(this.#segment + 1)) missing += s.l;
    return missing;
  }
}
