import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkTable } from '../../src/client/incremental/chunk-table.js';
import { PackList } from '../../src/client/incremental/pack-list.js';

const sha = (i: number) => createHash('sha256').update(`chunk ${i}`).digest();

describe('ChunkTable', () => {
  it('finds every chunk it was given, at its place, through many doublings of every shard', () => {
    const table = new ChunkTable();
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      expect(table.add(sha(i), { source: i % 7, offset: i * 8192, length: 8192 - (i % 3) })).toBe(
        true,
      );
    }
    expect(table.size).toBe(n);
    for (let i = 0; i < n; i += 97) {
      expect(table.get(sha(i))).toEqual({
        source: i % 7,
        offset: i * 8192,
        length: 8192 - (i % 3),
      });
    }
    expect(table.get(sha(n))).toBeUndefined();
    expect(table.has(sha(n - 1))).toBe(true);
    expect(table.has(sha(n))).toBe(false);
  });

  it('keeps the first location of a chunk added twice', () => {
    const table = new ChunkTable();
    table.add(sha(1), { source: 0, offset: 10, length: 5 });
    table.add(sha(1), { source: 3, offset: 99, length: 5 });
    expect(table.size).toBe(1);
    expect(table.get(sha(1))).toEqual({ source: 0, offset: 10, length: 5 });
  });

  it('refuses new chunks once its memory is spent, and still answers for those it holds', () => {
    // 256 shards of at most 16 slots (48 bytes each): full at 90% of 4,096 slots.
    const table = new ChunkTable(256 * 16 * 48);
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      if (!table.add(sha(i), { source: 1, offset: i, length: 1 })) refused++;
    }
    expect(refused).toBeGreaterThan(0);
    expect(table.size).toBe(5000 - refused);
    expect(table.size).toBeLessThanOrEqual(256 * 16);
    let found = 0;
    for (let i = 0; i < 5000; i++) {
      const at = table.get(sha(i));
      if (at) {
        expect(at).toEqual({ source: 1, offset: i, length: 1 });
        found++;
      }
    }
    expect(found).toBe(table.size);
  });

  it('keeps what it holds across a reservation, and grows past it as chunks keep coming', () => {
    const table = new ChunkTable();
    for (let i = 0; i < 1000; i++) table.add(sha(i), { source: 1, offset: i, length: 8 });
    table.reserve(20_000);
    const reserved = table.bytes;
    expect(reserved).toBeGreaterThan(20_000 * 48);
    // Past the reservation: shards outgrow their part of the shared buffer one by one.
    for (let i = 1000; i < 60_000; i++) table.add(sha(i), { source: 2, offset: i, length: 8 });
    expect(table.size).toBe(60_000);
    // Shards left the reservation's buffer; it is no longer counted once the last one left.
    expect(table.bytes).toBeLessThan(reserved + 60_000 * 48 * 2);
    for (let i = 0; i < 60_000; i += 13) {
      expect(table.get(sha(i))).toEqual({ source: i < 1000 ? 1 : 2, offset: i, length: 8 });
    }
    expect(table.has(sha(60_000))).toBe(false);
  });

  it('keeps its arrays within maxBytes, a reservation included, and then refuses chunks', () => {
    // 1 MiB: room for ~21,800 slots in all; a reservation for 30,000 chunks would pass it.
    const table = new ChunkTable(1024 * 1024);
    table.reserve(30_000);
    expect(table.bytes).toBeLessThanOrEqual(1024 * 1024);
    let refused = 0;
    for (let i = 0; i < 30_000; i++) {
      if (!table.add(sha(i), { source: 0, offset: i, length: 1 })) refused++;
      expect(table.bytes).toBeLessThanOrEqual(1024 * 1024);
    }
    expect(refused).toBeGreaterThan(0);
    // At most 90% of the slots that fit in 1 MiB (48 bytes each) hold a chunk.
    expect(table.size).toBeLessThanOrEqual(Math.floor(((1024 * 1024) / 48) * 0.9));
    expect(table.size).toBeGreaterThan(10_000);
    for (let i = 0; i < 30_000; i += 7) {
      const at = table.get(sha(i));
      if (at) expect(at).toEqual({ source: 0, offset: i, length: 1 });
    }
  });

  it('stops counting a reservation once every shard has grown out of it', () => {
    // 2 MiB: the reservation (~0.6 MiB) must be given back for the table to fill the rest.
    const table = new ChunkTable(2 * 1024 * 1024);
    table.reserve(8000);
    let accepted = 0;
    for (let i = 0; i < 35_000; i++) {
      if (table.add(sha(i), { source: 0, offset: i, length: 1 })) accepted++;
    }
    expect(table.bytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    // Counted forever, the reservation would leave room for ~27,000.
    expect(accepted).toBeGreaterThan(34_000);
  });

  it('refuses a location it cannot hold instead of storing a wrapped number', () => {
    const table = new ChunkTable();
    const bad = [
      { source: 2 ** 32 - 1, offset: 0, length: 1 },
      { source: -1, offset: 0, length: 1 },
      { source: 0, offset: -1, length: 1 },
      { source: 0, offset: 0.5, length: 1 },
      { source: 0, offset: 0, length: 2 ** 32 },
    ];
    for (const location of bad) expect(() => table.add(sha(1), location)).toThrow(RangeError);
    expect(() => table.add(sha(1), { source: 0, offset: 0, length: 1 }, 0.5)).toThrow(RangeError);
    expect(table.size).toBe(0);
  });

  it('takes its key at an offset of a larger buffer (an index record in place)', () => {
    const table = new ChunkTable();
    const records = Buffer.alloc(3 * 48);
    for (let r = 0; r < 3; r++) sha(r).copy(records, r * 48 + 16);
    for (let r = 0; r < 3; r++) {
      table.add(records, { source: r, offset: r * 100, length: 4096 }, r * 48 + 16);
    }
    expect(table.get(sha(2))).toEqual({ source: 2, offset: 200, length: 4096 });
    expect(table.has(records, 16)).toBe(true);
    const out = { source: 0, offset: 0, length: 0 };
    expect(table.lookup(records, out, 48 + 16)).toBe(true);
    expect(out).toEqual({ source: 1, offset: 100, length: 4096 });
    // A key running past the buffer's end is refused, not read short.
    expect(() => table.has(records, records.length - 16)).toThrow(RangeError);
  });

  it('refuses a key that is not a sha256', () => {
    const table = new ChunkTable();
    expect(() => table.add(Buffer.alloc(20), { source: 0, offset: 0, length: 1 })).toThrow(
      RangeError,
    );
  });

  it('holds offsets past 4 GiB (a cached memory file) and refuses one past 2^48', () => {
    const table = new ChunkTable();
    const far = 5 * 2 ** 40 + 12_345;
    table.add(sha(1), { source: 2, offset: far, length: 8192 });
    table.add(sha(2), { source: 3, offset: 2 ** 32 - 1, length: 4096 });
    expect(table.get(sha(1))).toEqual({ source: 2, offset: far, length: 8192 });
    expect(table.get(sha(2))).toEqual({ source: 3, offset: 2 ** 32 - 1, length: 4096 });
    expect(() => table.add(sha(3), { source: 0, offset: 2 ** 48, length: 1 })).toThrow(RangeError);
  });
});

describe('PackList', () => {
  it('numbers packs once by digest and seals a pack registered while it filled', () => {
    const list = new PackList();
    const a = list.pack(`sha256:${'a'.repeat(64)}`, 10, 'r/one');
    expect(list.pack(`sha256:${'a'.repeat(64)}`, 10, 'r/two')).toBe(a);
    const filling = list.pack(undefined, 0, 'r/one');
    expect(filling).not.toBe(a);
    list.seal(filling, `sha256:${'b'.repeat(64)}`, 42);
    expect(list.packs[filling]).toEqual({
      digest: `sha256:${'b'.repeat(64)}`,
      size: 42,
      repository: 'r/one',
    });
    expect(list.pack(`sha256:${'b'.repeat(64)}`, 42, 'r/two')).toBe(filling);
  });
});
