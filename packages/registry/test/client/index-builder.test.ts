import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { type ChunkRecord, decodeChunkIndex, encodeChunkIndex } from '@epoch/oci';
import { describe, expect, it } from 'vitest';
import { IndexBuilder } from '../../src/client/incremental/index-builder.js';

const packs = [
  { digest: `sha256:${'a'.repeat(64)}` as const, size: 2 ** 30 },
  { digest: `sha256:${'b'.repeat(64)}` as const, size: 2 ** 30 },
];

async function bytesOf(read: () => AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of read()) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

const spools = async () =>
  (await readdir(tmpdir())).filter((name) => name.startsWith('epoch-index-')).length;

describe('IndexBuilder', () => {
  it('spools records past one page to a file and reads back the same index, twice', async () => {
    const before = await spools();
    const builder = new IndexBuilder(8192);
    const expected: ChunkRecord[] = [];
    // 40,000 data records: more than two 16,384-record pages, so two go to the spool file
    for (let i = 0; i < 40_000; i++) {
      if (i % 1000 === 0) {
        builder.run('hole', 8192);
        expected.push({ kind: 'hole', length: 8192 });
      }
      const sha256 = createHash('sha256').update(`chunk ${i}`).digest();
      const table = i % 2 === 0 ? 10 : 20;
      builder.data(8192, table, i * 8192, sha256);
      expected.push({ kind: 'data', length: 8192, pack: i % 2, offset: i * 8192, sha256 });
    }
    expect(await spools()).toBe(before + 1);
    const index = builder.finish((table) => (table === 10 ? packs[0] : packs[1]) as never);
    const first = await bytesOf(index.read);
    expect(first.length).toBe(index.size);
    const decoded = decodeChunkIndex(first);
    expect(decoded.packs).toEqual(packs);
    expect(decoded.records.length).toBe(expected.length);
    expect(
      decoded.records.map((r) => (r.kind === 'data' ? { ...r, sha256: Buffer.from(r.sha256) } : r)),
    ).toEqual(expected);
    expect(first.equals(encodeChunkIndex({ ...decoded }))).toBe(true);
    // an upload may be retried: the body is read again from the start
    expect((await bytesOf(index.read)).equals(first)).toBe(true);
    builder.dispose();
    expect(await spools()).toBe(before);
  });

  it('keeps a small index in memory and writes no file', async () => {
    const before = await spools();
    const builder = new IndexBuilder(8192);
    builder.run('zero', 8192);
    builder.data(8192, 10, 0, Buffer.alloc(32, 7));
    expect(await spools()).toBe(before);
    const index = builder.finish(() => packs[0] as never);
    const decoded = decodeChunkIndex(await bytesOf(index.read));
    expect(decoded.records.map((r) => r.kind)).toEqual(['zero', 'data']);
    expect(decoded.fileSize).toBe(16384);
    builder.dispose();
  });
});
