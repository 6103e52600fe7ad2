import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ByteSink } from '../src/byte-sink.js';
import { tarStream } from '../src/tar.js';
import { TarFormatError, type TarHeader, TarReader } from '../src/tar-reader.js';

interface Read {
  header: TarHeader;
  body: Buffer;
  ended: boolean;
}

/** Reads `tar` written in pieces of `step` bytes (a reused buffer, as a socket read would be). */
async function read(tar: Buffer, step: number, skip = (_: TarHeader) => false): Promise<Read[]> {
  const entries: Read[] = [];
  const reader = new TarReader((header) => {
    const entry: Read = { header, body: Buffer.alloc(0), ended: false };
    entries.push(entry);
    if (skip(header)) return undefined;
    return {
      write: (bytes) => {
        expect(entry.ended).toBe(false);
        entry.body = Buffer.concat([entry.body, bytes]);
      },
      end: () => {
        entry.ended = true;
      },
    };
  });
  const reused = Buffer.alloc(step);
  for (let at = 0; at < tar.length; at += step) {
    const n = tar.copy(reused, 0, at, at + step);
    const pending = reader.write(reused.subarray(0, n));
    if (pending) await pending;
    reused.fill(0xee);
  }
  reader.end();
  return entries;
}

const STEPS = [1, 7, 511, 512, 513, 4096, 1 << 20];

let dir: string;
const big = randomBytes(70_001);
const longName = `${'d'.repeat(60)}/${'f'.repeat(90)}.bin`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'epoch-tar-reader-'));
  await mkdir(join(dir, 'src', 'd'.repeat(60)), { recursive: true });
  await writeFile(join(dir, 'src', 'small.txt'), 'hello\n');
  await writeFile(join(dir, 'src', 'empty'), '');
  await writeFile(join(dir, 'src', 'big.bin'), big);
  await writeFile(join(dir, 'src', longName), 'long');
  await symlink('small.txt', join(dir, 'src', 'link'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function gnuTar(format: string, ...extra: string[]): Buffer {
  return execFileSync(
    'tar',
    ['-c', `--format=${format}`, '--sort=name', '-C', join(dir, 'src'), ...extra, '.'],
    { maxBuffer: 1 << 24 },
  );
}

describe('TarReader', () => {
  for (const format of ['pax', 'gnu', 'ustar']) {
    it(`reads what GNU tar writes (${format}), split anywhere`, async () => {
      const tar = gnuTar(format);
      for (const step of STEPS) {
        const entries = await read(tar, step);
        const files = Object.fromEntries(
          entries.filter((e) => e.header.type === 'file').map((e) => [e.header.name, e.body]),
        );
        expect(files['./small.txt']?.toString()).toBe('hello\n');
        expect(files['./empty']?.length).toBe(0);
        expect(files['./big.bin']?.equals(big)).toBe(true);
        expect(files[`./${longName}`]?.toString()).toBe('long');
        const types = Object.fromEntries(entries.map((e) => [e.header.name, e.header.type]));
        expect(types['./link']).toBe('2');
        expect(types[`./${'d'.repeat(60)}/`]).toBe('5');
        expect(entries.every((e) => e.ended)).toBe(true);
        expect(entries.find((e) => e.header.name === './big.bin')?.header.mode).toBe(0o644);
      }
    });
  }

  it('hands on PAX records, global ones merged under the entry’s own', async () => {
    const tar = gnuTar(
      'pax',
      '--pax-option=globexthdr.name=g,COCOON.sparse.map:=0:5,COCOON.test:=1',
      'small.txt',
    );
    // GNU tar writes `:=` records into every entry's own header.
    const [entry] = (await read(tar, 100)).filter((e) => e.header.name === 'small.txt');
    expect(entry?.header.pax?.['COCOON.sparse.map']).toBe('0:5');
    expect(entry?.header.pax?.['COCOON.test']).toBe('1');
  });

  it('reads what @epoch/oci tarStream writes: long names and records in PAX', async () => {
    const parts: Uint8Array[] = [];
    const entries = [
      { name: 'a'.repeat(150), size: 3, mode: 0o600, pax: { 'COCOON.x': 'y=z' }, body: 'abc' },
      { name: 'b', size: 0, mode: 0o644, body: '' },
    ];
    const stream = tarStream(
      entries.map((e) => ({ ...e, open: () => [Buffer.from(e.body)] })),
      new Date(0),
    );
    for await (const part of stream) parts.push(part);
    const got = await read(Buffer.concat(parts), 333);
    expect(got.map((e) => [e.header.name, e.header.mode, e.body.toString()])).toEqual([
      ['a'.repeat(150), 0o600, 'abc'],
      ['b', 0o644, ''],
    ]);
    expect(got[0]?.header.pax?.['COCOON.x']).toBe('y=z');
  });

  it('skips the body of an entry it has no sink for', async () => {
    const entries = await read(gnuTar('pax'), 4096, (h) => h.name === './big.bin');
    expect(entries.find((e) => e.header.name === './big.bin')?.body.length).toBe(0);
    expect(entries.find((e) => e.header.name === './small.txt')?.body.toString()).toBe('hello\n');
  });

  it('stops at a promise from a sink and goes on where it stopped', async () => {
    const tar = gnuTar('pax');
    let waiting = false;
    const bodies = new Map<string, Buffer>();
    const reader = new TarReader((header) => {
      expect(waiting).toBe(false);
      bodies.set(header.name, Buffer.alloc(0));
      const sink: ByteSink = {
        write(bytes) {
          expect(waiting).toBe(false);
          bodies.set(header.name, Buffer.concat([bodies.get(header.name) as Buffer, bytes]));
          waiting = true;
          return new Promise((resolve) =>
            setImmediate(() => {
              waiting = false;
              resolve();
            }),
          );
        },
        end: () => {
          expect(waiting).toBe(false);
          waiting = true;
          return new Promise((resolve) =>
            setTimeout(() => {
              waiting = false;
              resolve();
            }, 1),
          );
        },
      };
      return sink;
    });
    const pending = reader.write(tar);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    reader.end();
    expect(bodies.get('./big.bin')?.equals(big)).toBe(true);
    expect(bodies.get('./small.txt')?.toString()).toBe('hello\n');
  });

  it('reads a base-256 size (GNU, for files of 8 GiB and more)', () => {
    const tar = gnuTar('ustar', 'small.txt');
    const header = Buffer.from(tar.subarray(0, 512));
    header.fill(0, 124, 136);
    header[124] = 0x80;
    header.writeUIntBE(9 * 2 ** 30, 130, 6);
    header.write('        ', 148, 'latin1');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
    const sizes: number[] = [];
    const reader = new TarReader((h) => {
      sizes.push(h.size);
      return undefined;
    });
    reader.write(header);
    expect(sizes).toEqual([9 * 2 ** 30]);
    expect(() => reader.end()).toThrow(/9663676416 bytes missing/);
  });

  it('refuses a bad checksum, a gzipped stream, an unknown format and a cut stream', async () => {
    const tar = gnuTar('pax');
    const bad = Buffer.from(tar);
    bad[3] = (bad[3] as number) ^ 1;
    await expect(read(bad, 512)).rejects.toThrow(/bad checksum/);
    const gz = execFileSync('gzip', ['-c'], { input: tar });
    await expect(read(gz, 512)).rejects.toThrow(/gzipped/);
    const v7 = Buffer.from(tar.subarray(0, 512));
    v7.fill(0, 257, 265);
    let sum = 0;
    v7.write('        ', 148, 'latin1');
    for (const byte of v7) sum += byte;
    v7.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
    await expect(read(v7, 512)).rejects.toThrow(/neither ustar nor GNU/);
    // Cut after the last entry, before the end-of-archive blocks: not a shorter archive.
    const end = tar.length - 1024;
    let cut = end;
    while (cut > 0 && tar.subarray(cut - 512, cut).every((b) => b === 0)) cut -= 512;
    await expect(read(tar.subarray(0, cut), 4096)).rejects.toThrow(TarFormatError);
    await expect(read(tar.subarray(0, cut), 4096)).rejects.toThrow(/end-of-archive/);
    // Two archives back to back: the second is not dropped without a word.
    await expect(read(Buffer.concat([tar, gnuTar('ustar', 'small.txt')]), 4096)).rejects.toThrow(
      /goes on after its end-of-archive block/,
    );
    const inBig = tar.indexOf(big.subarray(0, 64)) + 1000;
    await expect(read(tar.subarray(0, inBig), 4096)).rejects.toThrow(/69001 bytes missing/);
  });

  it('refuses a PAX header larger than it holds, before reading it', () => {
    const header = Buffer.alloc(512);
    header.write('PaxHeaders/x', 0);
    header.write('0000644\u0000', 100, 'latin1');
    header.write(`${(5 * 2 ** 20).toString(8).padStart(11, '0')}\u0000`, 124, 'latin1');
    header.write('x', 156);
    header.write('ustar\u000000', 257, 'latin1');
    header.write('        ', 148, 'latin1');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
    const reader = new TarReader(() => undefined);
    expect(() => reader.write(header)).toThrow(/too large/);
  });
});
