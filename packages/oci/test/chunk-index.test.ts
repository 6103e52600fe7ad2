import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHUNK_INDEX_HEADER_BYTES,
  CHUNK_INDEX_PACK_BYTES,
  CHUNK_INDEX_RECORD_BYTES,
  type ChunkIndex,
  ChunkIndexError,
  type ChunkRecord,
  decodeChunkIndex,
  encodeChunkIndex,
  openChunkIndex,
} from '../src/index.js';

const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const digest = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}` as const;

/** A small valid index: hole, two data chunks in two packs, zero run, short tail chunk. */
function sample(): ChunkIndex {
  const records: ChunkRecord[] = [
    { kind: 'hole', length: 8192 },
    { kind: 'data', length: 8192, pack: 0, offset: 0, sha256: sha('a') },
    { kind: 'data', length: 4096, pack: 1, offset: 100, sha256: sha('b') },
    { kind: 'zero', length: 4096 + 8192 },
    { kind: 'data', length: 10, pack: 0, offset: 8192, sha256: sha('c') },
  ];
  return {
    chunkSize: 8192,
    fileSize: 8192 + 8192 + 4096 + 12288 + 10,
    packs: [
      { digest: digest('p0'), size: 8202 },
      { digest: digest('p1'), size: 4196 },
    ],
    recordCount: records.length,
    dataBytes: 8192 + 4096 + 10,
    zeroBytes: 12288,
    holeBytes: 8192,
    records,
  };
}

async function* pieces(bytes: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const n = Math.max(1, sizes[i++ % sizes.length] ?? 1);
    yield bytes.subarray(at, at + n);
    at += n;
  }
}

async function streamDecode(bytes: Buffer, sizes = [7, 64, 1000], size?: number) {
  const opened = await openChunkIndex(pieces(bytes, sizes), size);
  const records: ChunkRecord[] = [];
  for await (const r of opened.records) records.push(r);
  return { ...opened.header, records };
}

const recordAt = (i: number) =>
  CHUNK_INDEX_HEADER_BYTES + 2 * CHUNK_INDEX_PACK_BYTES + i * CHUNK_INDEX_RECORD_BYTES;

describe('chunk index codec', () => {
  it('round-trips in memory and streamed in arbitrary pieces', async () => {
    const index = sample();
    const bytes = encodeChunkIndex(index);
    expect(bytes.length).toBe(64 + 2 * 40 + 5 * 48);
    expect(bytes.subarray(0, 8).toString()).toBe('EPOCHCIX');
    expect(decodeChunkIndex(bytes)).toEqual(index);
    for (const sizes of [[1], [3, 5], [48], [10_000]]) {
      expect(await streamDecode(bytes, sizes, bytes.length)).toEqual(index);
    }
  });

  it('pages give the same records, read in place, checked a page at a time', async () => {
    const index = sample();
    const bytes = encodeChunkIndex(index);
    for (const sizes of [[1], [50, 7], [10_000]]) {
      const opened = await openChunkIndex(pieces(bytes, sizes), bytes.length);
      const records: ChunkRecord[] = [];
      for await (const page of opened.pages) {
        for (let i = 0; i < page.count; i++) {
          const r = page.record(i);
          expect(page.kindOf(i)).toBe(r.kind);
          expect(page.lengthOf(i)).toBe(r.length);
          if (r.kind === 'data') {
            expect(page.packOf(i)).toBe(r.pack);
            expect(page.offsetOf(i)).toBe(r.offset);
            expect(new Uint8Array(page.sha256Of(i))).toEqual(r.sha256);
          }
          records.push(r);
        }
      }
      expect(records).toEqual(index.records);
    }
    // A bad record anywhere in a page refuses the page: nothing of it is handed out.
    const bad = Buffer.from(bytes);
    bad[recordAt(4) + 1] = 1;
    const opened = await openChunkIndex(pieces(bad, [10_000]), bad.length);
    let handed = 0;
    await expect(
      (async () => {
        for await (const page of opened.pages) handed += page.count;
      })(),
    ).rejects.toThrow(/reserved record field/);
    expect(handed).toBe(0);
  });

  it('gives its source back when it refuses the header', async () => {
    const bytes = encodeChunkIndex(sample());
    for (const bad of [bytes.subarray(0, 10), Buffer.concat([Buffer.from('X'), bytes])]) {
      let returned = false;
      const source: AsyncIterable<Uint8Array> = {
        [Symbol.asyncIterator]: () => {
          let sent = false;
          return {
            next: async () => {
              if (sent) return { done: true, value: undefined };
              sent = true;
              return { done: false, value: bad };
            },
            return: async () => {
              returned = true;
              return { done: true, value: undefined };
            },
          };
        },
      };
      await expect(openChunkIndex(source)).rejects.toThrow(ChunkIndexError);
      expect(returned).toBe(true);
    }
  });

  it('page.same compares what records describe, not where their bytes are', async () => {
    const other: ChunkIndex = {
      ...sample(),
      packs: [...sample().packs].reverse(),
      records: [
        { kind: 'hole', length: 8192 },
        // same chunk as the sample's record 1, found in another pack at another offset
        { kind: 'data', length: 8192, pack: 1, offset: 0, sha256: sha('a') },
        { kind: 'data', length: 4096, pack: 0, offset: 100, sha256: sha('B') },
        { kind: 'hole', length: 4096 + 8192 },
        { kind: 'data', length: 10, pack: 1, offset: 8192, sha256: sha('c') },
      ],
      zeroBytes: 0,
      holeBytes: 8192 + 12288,
    };
    other.packs = [
      { digest: digest('p1'), size: 8202 },
      { digest: digest('p0'), size: 8202 },
    ];
    const firstPage = async (index: ChunkIndex) => {
      const bytes = encodeChunkIndex(index);
      const opened = await openChunkIndex(pieces(bytes, [10_000]), bytes.length);
      const { value } = await opened.pages.next();
      if (!value) throw new Error('no page');
      return value;
    };
    const a = await firstPage(sample());
    const b = await firstPage(other);
    expect([0, 1, 2, 3, 4].map((i) => a.same(i, b, i))).toEqual([true, true, false, false, true]);
    expect(a.same(1, a, 4)).toBe(false);
  });

  it('round-trips random well-formed indexes (property)', async () => {
    const record = fc.oneof(
      fc.record({
        kind: fc.constant('hole' as const),
        length: fc.integer({ min: 1, max: 50_000 }),
      }),
      fc.record({
        kind: fc.constant('zero' as const),
        length: fc.integer({ min: 1, max: 50_000 }),
      }),
      fc.record({
        kind: fc.constant('data' as const),
        length: fc.integer({ min: 1, max: 4096 }),
        sha: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(record, { maxLength: 40 }), async (list) => {
        // lay records out so that data ones stay inside one 4 KiB chunk
        const records: ChunkRecord[] = [];
        let pos = 0;
        let packOffset = 0;
        const totals = { data: 0, zero: 0, hole: 0 };
        for (const r of list) {
          if (r.kind === 'data') {
            const room = 4096 - (pos % 4096);
            const length = Math.min(r.length, room);
            records.push({ kind: 'data', length, pack: 0, offset: packOffset, sha256: r.sha });
            packOffset += length;
            totals.data += length;
            pos += length;
          } else {
            records.push({ kind: r.kind, length: r.length });
            totals[r.kind] += r.length;
            pos += r.length;
          }
        }
        const index: ChunkIndex = {
          chunkSize: 4096,
          fileSize: pos,
          packs: packOffset > 0 ? [{ digest: digest('p'), size: packOffset }] : [],
          recordCount: records.length,
          dataBytes: totals.data,
          zeroBytes: totals.zero,
          holeBytes: totals.hole,
          records,
        };
        const bytes = encodeChunkIndex(index);
        expect(decodeChunkIndex(bytes)).toEqual(index);
        expect(await streamDecode(bytes, [13])).toEqual(index);
      }),
      { numRuns: 200 },
    );
  });

  const corruptions: [string, (b: Buffer) => void][] = [
    [
      'magic',
      (b) => {
        b[0] = 0x58;
      },
    ],
    ['version', (b) => b.writeUInt16LE(2, 8)],
    ['header flags', (b) => b.writeUInt16LE(1, 10)],
    ['chunk size not a power of two', (b) => b.writeUInt32LE(8191, 12)],
    ['chunk size too small', (b) => b.writeUInt32LE(2048, 12)],
    ['file size', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(16) + 1n, 16)],
    ['file size beyond 2^53', (b) => b.writeBigUInt64LE(2n ** 60n, 16)],
    ['pack count', (b) => b.writeUInt32LE(3, 24)],
    ['reserved header field', (b) => b.writeUInt32LE(1, 28)],
    ['record count', (b) => b.writeBigUInt64LE(4n, 32)],
    [
      'totals',
      (b) => {
        b.writeBigUInt64LE(b.readBigUInt64LE(40) + 1n, 40);
        b.writeBigUInt64LE(b.readBigUInt64LE(48) - 1n, 48);
      },
    ],
    ['pack listed twice', (b) => b.copy(b, 64 + 40, 64, 64 + 40)],
    ['pack of size 0', (b) => b.writeBigUInt64LE(0n, 64 + 32)],
    [
      'record kind',
      (b) => {
        b[recordAt(1)] = 9;
      },
    ],
    [
      'record flags',
      (b) => {
        b[recordAt(1) + 1] = 1;
      },
    ],
    ['record reserved', (b) => b.writeUInt16LE(1, recordAt(1) + 2)],
    ['empty record', (b) => b.writeUInt32LE(0, recordAt(2) + 4)],
    ['unknown pack ordinal', (b) => b.writeUInt32LE(2, recordAt(1) + 8)],
    ['chunk past the pack end', (b) => b.writeUInt32LE(8190, recordAt(1) + 12)],
    [
      'data crossing a chunk boundary',
      (b) => {
        b.writeUInt32LE(4096, recordAt(0) + 4);
        b.writeUInt32LE(4096 + 8192, recordAt(3) + 4);
      },
    ],
    ['run record with a pack', (b) => b.writeUInt32LE(1, recordAt(3) + 8)],
    [
      'run record with a hash',
      (b) => {
        b[recordAt(3) + 40] = 1;
      },
    ],
    [
      'record lengths not covering the file',
      (b) => {
        b.writeUInt32LE(8191, recordAt(0) + 4);
      },
    ],
    [
      'zero turned into a hole',
      (b) => {
        b[recordAt(3)] = 3;
      },
    ],
  ];

  for (const [what, corrupt] of corruptions) {
    it(`refuses an index with a wrong ${what}, in memory and streamed`, async () => {
      const bytes = encodeChunkIndex(sample());
      corrupt(bytes);
      expect(() => decodeChunkIndex(bytes)).toThrow(ChunkIndexError);
      await expect(streamDecode(bytes, [5], bytes.length)).rejects.toThrow(ChunkIndexError);
    });
  }

  it('refuses truncated and over-long indexes', async () => {
    const bytes = encodeChunkIndex(sample());
    for (const cut of [0, 10, 63, 64, 100, bytes.length - 48, bytes.length - 1]) {
      const short = bytes.subarray(0, cut);
      expect(() => decodeChunkIndex(short)).toThrow(ChunkIndexError);
      await expect(streamDecode(short, [9])).rejects.toThrow(ChunkIndexError);
    }
    const long = Buffer.concat([bytes, Buffer.alloc(48)]);
    expect(() => decodeChunkIndex(long)).toThrow(ChunkIndexError);
    await expect(streamDecode(long, [9])).rejects.toThrow(/more records/);
    // the descriptor's size is checked against the header before any record
    await expect(streamDecode(bytes, [9], bytes.length + 1)).rejects.toThrow(/announces/);
  });

  it('a header announcing huge counts costs nothing: refused before allocation', async () => {
    const bytes = encodeChunkIndex(sample());
    const big = Buffer.from(bytes.subarray(0, 64));
    big.writeUInt32LE(65536, 24);
    big.writeBigUInt64LE(2n ** 40n, 32);
    const before = process.memoryUsage().arrayBuffers;
    expect(() => decodeChunkIndex(big)).toThrow(/announces/);
    big.writeUInt32LE(65537, 24);
    expect(() => decodeChunkIndex(big)).toThrow(/65537 packs/);
    big.writeUInt32LE(1, 24);
    big.writeBigUInt64LE(2n ** 41n, 32);
    expect(() => decodeChunkIndex(big)).toThrow(/records/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('random bytes only ever raise ChunkIndexError (property)', () => {
    const valid = encodeChunkIndex(sample());
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 6,
        }),
        (noise, flips) => {
          for (const input of [Buffer.from(noise), Buffer.from(valid)]) {
            for (const [at, v] of flips)
              if (input === valid || at < input.length) input[at % input.length] = v;
            try {
              decodeChunkIndex(input);
            } catch (err) {
              expect(err).toBeInstanceOf(ChunkIndexError);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
