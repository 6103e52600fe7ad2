import { execFileSync, spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdtemp, open, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAt } from '../../src/storage/fs-write.js';
import { MiB } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'epoch-fs-write-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `size` bytes that differ at every offset, so a byte written in the wrong place shows. */
function pattern(size: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed + (i >>> 12)) & 0xff;
  return bytes;
}

function chunked(bytes: Buffer, chunk: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.subarray(i, i + chunk));
  return Readable.from(parts);
}

/** Writes `body` at `position` into a file that already holds `position` bytes, via `writeAt`. */
async function writeInto(
  name: string,
  position: number,
  body: Buffer,
  chunk: number,
  directIo: boolean,
): Promise<{ path: string; written: number; before: Buffer }> {
  const path = join(dir, name);
  const before = Buffer.alloc(position, 0xee);
  await writeFile(path, before);
  const fh = await open(path, 'r+');
  try {
    const written = await writeAt(fh, chunked(body, chunk), position, {
      max: undefined,
      onOverflow: () => new Error('overflow'),
      signal: undefined,
      directIo,
    });
    await fh.datasync();
    return { path, written, before };
  } finally {
    await fh.close();
  }
}

/** Bytes of `path` resident in the page cache, from util-linux's `fincore`. */
function residentBytes(path: string): number {
  return Number(
    execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], {
      encoding: 'utf8',
    }).trim(),
  );
}

/** tmpfs takes O_DIRECT (Linux 6.6 and later) but keeps every byte in memory anyway. */
const TMPFS_MAGIC = 0x01021994;

async function directIoBypassesCacheIn(path: string): Promise<boolean> {
  if ((await statfs(path)).type === TMPFS_MAGIC) return false;
  try {
    const fh = await open(
      join(path, 'probe'),
      constants.O_CREAT | constants.O_WRONLY | constants.O_DIRECT,
    );
    await fh.close();
    return true;
  } catch {
    return false;
  }
}

describe('writeAt', () => {
  it('falls back to buffered writes where there is no WebAssembly for aligned buffers (node --jitless)', () => {
    // The built module in a child process, as a server started with --jitless would load it.
    const url = new URL('../../dist/storage/fs-write.js', import.meta.url).pathname;
    const path = join(dir, 'jitless');
    const script = `
      const { open, readFile, readdir } = await import('node:fs/promises');
      const { writeAt } = await import(${JSON.stringify(url)});
      const body = Buffer.alloc(3 * 1024 * 1024 + 5, 9);
      const before = (await readdir('/proc/self/fd')).length;
      for (let i = 0; i < 3; i++) {
        const fh = await open(${JSON.stringify(path)}, 'w+');
        await writeAt(fh, body, 0, { max: undefined, onOverflow: () => new Error('x'), signal: undefined });
        await fh.close();
      }
      const after = (await readdir('/proc/self/fd')).length;
      const ok = (await readFile(${JSON.stringify(path)})).equals(body);
      console.log(JSON.stringify({ ok, leaked: after - before }));
    `;
    const child = spawnSync(process.execPath, ['--jitless', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ ok: true, leaked: 0 });
  });

  // Positions on and off 4 KiB boundaries, sizes around the boundaries and the 1 MiB buffer size,
  // chunks smaller than a block, odd and larger than a buffer: every way a head, a direct middle
  // and a tail can fall.
  const positions = [0, 1, 4095, 4096, 5000, MiB + 3];
  const sizes = [0, 1, 4095, 4097, MiB, MiB + 4097, 3 * MiB + 123];
  const chunks = [1000, 65_543, 4 * MiB];
  for (const directIo of [true, false]) {
    it(`puts every byte where it belongs (${directIo ? 'direct I/O where possible' : 'buffered'})`, async () => {
      let n = 0;
      for (const position of positions) {
        for (const size of sizes) {
          for (const chunk of chunks) {
            const body = pattern(size, n);
            const name = `f${directIo}-${n++}`;
            const { path, written, before } = await writeInto(
              name,
              position,
              body,
              chunk,
              directIo,
            );
            expect(written, `${name}: position ${position}, size ${size}, chunk ${chunk}`).toBe(
              size,
            );
            const stored = await readFile(path);
            expect(stored.length).toBe(position + size);
            expect(stored.subarray(0, position).equals(before)).toBe(true);
            expect(stored.subarray(position).equals(body), `${name}: content`).toBe(true);
            await rm(path);
          }
        }
      }
    });
  }

  it('fails with the overflow error as soon as more than `max` bytes arrive', async () => {
    const path = join(dir, 'overflow');
    const fh = await open(path, 'w+');
    try {
      const write = writeAt(fh, chunked(pattern(3 * MiB, 1), 65_536), 0, {
        max: 2 * MiB,
        onOverflow: (seen) => new RangeError(`saw ${seen}`),
        signal: undefined,
      });
      await expect(write).rejects.toThrow(/saw 2162688/);
    } finally {
      await fh.close();
    }
  });

  it('writes the aligned part with O_DIRECT, past the page cache, and the rest buffered [needs a filesystem where O_DIRECT bypasses the page cache]', async (ctx) => {
    if (!(await directIoBypassesCacheIn(dir))) {
      // Only a filesystem whose O_DIRECT bypasses the page cache can show it (not tmpfs, not one
      // that refuses the flag); elsewhere the buffered path is all there is.
      ctx.skip();
    }
    const body = pattern(8 * MiB + 100, 7);
    const direct = await writeInto('direct', 0, body, 65_536, true);
    const buffered = await writeInto('buffered', 0, body, 65_536, false);
    // Direct: only the 100-byte tail's page went through the page cache.
    expect(residentBytes(direct.path)).toBeLessThanOrEqual(4096);
    expect(residentBytes(buffered.path)).toBeGreaterThanOrEqual(8 * MiB);
    expect((await readFile(direct.path)).equals(body)).toBe(true);
  });
});
