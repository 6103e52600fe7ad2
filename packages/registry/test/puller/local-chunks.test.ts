import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChunkRecord, encodeChunkIndex } from '@epoch/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkTable } from '../../src/client/incremental/chunk-table.js';
import { addLocalChunks, addWantedChunks, localChunks } from '../../src/puller/chunked-file.js';

const KiB = 1024;
const sha = (s: string) => createHash('sha256').update(s).digest();
const pack = `sha256:${'a'.repeat(64)}` as const;

/** An index of 8 KiB data chunks named by `names` ('-' for a hole, '0' for a zero run). */
function index(names: string[]): Buffer {
  let offset = 0;
  const records: ChunkRecord[] = names.map((n) => {
    if (n === '-') return { kind: 'hole', length: 8 * KiB };
    if (n === '0') return { kind: 'zero', length: 8 * KiB };
    const r = { kind: 'data' as const, length: 8 * KiB, pack: 0, offset, sha256: sha(n) };
    offset += 8 * KiB;
    return r;
  });
  const bytes = (kind: string) =>
    records.filter((r) => r.kind === kind).reduce((s, r) => s + r.length, 0);
  return encodeChunkIndex({
    chunkSize: 8 * KiB,
    fileSize: records.length * 8 * KiB,
    packs: [{ digest: pack, size: Math.max(offset, 1) }],
    recordCount: records.length,
    dataBytes: bytes('data'),
    zeroBytes: bytes('zero'),
    holeBytes: bytes('hole'),
    records,
  });
}

describe('the chunks a pull looks up in the cache', () => {
  let dir: string;
  const write = async (name: string, names: string[]) => {
    const path = join(dir, name);
    await writeFile(path, index(names));
    return path;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'epoch-local-chunks-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('are only those the base does not hold at the same place, found in any cached file', async () => {
    // v1 as cached; v2 changes b (in place), swaps d and e, and adds f after a new hole
    const v1 = await write('v1.idx', ['a', 'b', '-', 'c', 'd', 'e', '0']);
    const v2 = await write('v2.idx', ['a', 'B', '-', 'c', 'e', 'd', '-', 'f']);
    const other = await write('other.idx', ['x', '-', 'f', 'B']);
    const wanted = new ChunkTable();
    await addWantedChunks(wanted, { indexPath: v2, base: { path: 'v1-file', indexPath: v1 } });
    const names = ['a', 'B', 'c', 'd', 'e', 'f'];
    expect(names.filter((n) => wanted.has(sha(n)))).toEqual(['B', 'd', 'e', 'f']);
    expect(wanted.size).toBe(4);

    const local = localChunks();
    await addLocalChunks(local, wanted, v1, 'v1-file');
    await addLocalChunks(local, wanted, other, 'other-file');
    // d and e from v1's file (stored positions: holes take none), B and f from the other's;
    // a, c and x are not wanted and not recorded
    const where = (n: string) => {
      const at = local.table.get(sha(n));
      return at && { file: local.files[at.source], offset: at.offset };
    };
    expect(where('d')).toEqual({ file: 'v1-file', offset: 3 * 8 * KiB });
    expect(where('e')).toEqual({ file: 'v1-file', offset: 4 * 8 * KiB });
    expect(where('f')).toEqual({ file: 'other-file', offset: 8 * KiB });
    expect(where('B')).toEqual({ file: 'other-file', offset: 2 * 8 * KiB });
    expect(local.table.size).toBe(4);
    expect(where('a')).toBeUndefined();

    // without a base every data chunk is wanted
    const all = new ChunkTable();
    await addWantedChunks(all, { indexPath: v2 });
    expect(all.size).toBe(6);
  });
});
