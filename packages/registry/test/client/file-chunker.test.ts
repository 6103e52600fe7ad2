import { randomBytes } from 'node:crypto';
import type { SparseSegment } from '@epoch/oci';
import { describe, expect, it } from 'vitest';
import { type ChunkSink, chunkFile } from '../../src/client/incremental/file-chunker.js';

type Piece = { hole: number } | { chunk: string };

/** The pieces the chunking rule says a file has, cut the obvious way from the whole file. */
function expected(
  data: Buffer,
  segments: SparseSegment[],
  size: number,
  chunkSize: number,
): Piece[] {
  const out: Piece[] = [];
  let pos = 0;
  let at = 0;
  for (const { o, l } of segments) {
    if (l === 0) continue;
    if (o > pos) out.push({ hole: o - pos });
    for (let p = o; p < o + l; ) {
      const next = Math.min(o + l, (Math.floor(p / chunkSize) + 1) * chunkSize);
      out.push({ chunk: data.subarray(at, at + next - p).toString('hex') });
      at += next - p;
      p = next;
    }
    pos = o + l;
  }
  if (size > pos) out.push({ hole: size - pos });
  return out;
}

/** `data` as a stream of buffers of the given sizes (the last takes the rest). */
async function* split(data: Buffer, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const n of sizes) {
    if (at >= data.length) break;
    yield new Uint8Array(data.buffer, data.byteOffset + at, Math.min(n, data.length - at));
    at += n;
  }
  if (at < data.length) yield data.subarray(at);
}

/** A sink that records what it gets; every other chunk answers with a promise (a full pack). */
function recorder(asyncEvery = 0): { sink: ChunkSink; pieces: Piece[] } {
  const pieces: Piece[] = [];
  let n = 0;
  return {
    pieces,
    sink: {
      hole: (length) => {
        pieces.push({ hole: length });
      },
      chunk: (bytes) => {
        n++;
        if (asyncEvery === 0 || n % asyncEvery !== 0) {
          pieces.push({ chunk: bytes.toString('hex') });
          return;
        }
        // The bytes must stay as they are until the promise settles.
        return new Promise<void>((resolve) => setTimeout(resolve, 1)).then(() => {
          pieces.push({ chunk: bytes.toString('hex') });
        });
      },
    },
  };
}

const layouts: { name: string; size: number; segments: SparseSegment[] }[] = [
  { name: 'a whole file', size: 100_000, segments: [{ o: 0, l: 100_000 }] },
  {
    name: 'unaligned segments with holes before, between and after',
    size: 120_000,
    segments: [
      { o: 3000, l: 10_000 },
      { o: 13_000, l: 0 },
      { o: 20_001, l: 16_385 },
      { o: 50_000, l: 8192 },
      { o: 70_000, l: 1 },
    ],
  },
  {
    name: 'segments that touch',
    size: 40_000,
    segments: [
      { o: 0, l: 5000 },
      { o: 5000, l: 20_000 },
    ],
  },
  { name: 'a file of holes only', size: 50_000, segments: [] },
  { name: 'an empty file', size: 0, segments: [] },
];

describe('chunkFile', () => {
  for (const layout of layouts) {
    it(`cuts ${layout.name} at chunk multiples and segment edges, however the body is split`, async () => {
      const total = layout.segments.reduce((n, s) => n + s.l, 0);
      const data = randomBytes(total);
      const want = expected(data, layout.segments, layout.size, 8192);
      for (const sizes of [[65_536], [1, 2, 3, 8191, 8192, 8193], [100_003], [7000, 1]]) {
        for (const asyncEvery of [0, 2]) {
          const { sink, pieces } = recorder(asyncEvery);
          const body = split(
            data,
            Array.from({ length: 200 }, (_, i) => sizes[i % sizes.length] as number),
          );
          await chunkFile(body, layout.segments, layout.size, 8192, sink);
          expect(pieces).toEqual(want);
        }
      }
    });
  }

  it('refuses a body shorter or longer than its segments', async () => {
    const segments = [{ o: 100, l: 20_000 }];
    const short = randomBytes(19_999);
    await expect(
      chunkFile(split(short, [4096]), segments, 30_000, 8192, recorder().sink),
    ).rejects.toThrow(/ended 1 bytes early/);
    const long = randomBytes(20_001);
    await expect(
      chunkFile(split(long, [4096]), segments, 30_000, 8192, recorder().sink),
    ).rejects.toThrow(/more bytes than its segments/);
  });

  it('refuses overlapping segments or segments past the end before it reads or tells anything', async () => {
    let read = false;
    async function* body() {
      read = true;
      yield Buffer.alloc(10);
    }
    for (const segments of [
      [
        { o: 0, l: 10 },
        { o: 5, l: 10 },
      ],
      [
        { o: 0, l: 10 },
        { o: 95, l: 10 },
      ],
    ]) {
      const { sink, pieces } = recorder();
      await expect(chunkFile(body(), segments, 100, 8192, sink)).rejects.toThrow(/overlap or pass/);
      expect(pieces).toEqual([]);
    }
    expect(read).toBe(false);
  });
});
