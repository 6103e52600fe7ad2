import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** The bytes of one tar entry. */
export type TarBody = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** One regular file of a tar stream. */
export interface TarEntry {
  name: string;
  size: number;
  mode: number;
  /** Extra PAX records (e.g. cocoon's `COCOON.sparse.map`). */
  pax?: Record<string, string>;
  /** The file's bytes, opened only when the stream reaches the entry; exactly `size` of them. */
  open: () => TarBody | Promise<TarBody>;
}

const BLOCK = 512;
/** Largest size the 11 octal digits of a ustar header hold; larger ones go in a PAX record. */
const USTAR_MAX_SIZE = 8 ** 11 - 1;

/**
 * The exact byte length of the stream {@link tarStream} writes for `entries`, so a download can
 * send `Content-Length` before the first byte and a short transfer is detectable. This writer
 * exists (rather than a tar library) because none tells its length up front.
 */
export function tarLength(entries: readonly Omit<TarEntry, 'open'>[]): number {
  let total = 2 * BLOCK;
  for (const entry of entries) {
    const pax = paxData(entry);
    if (pax) total += BLOCK + padded(pax.length);
    total += BLOCK + padded(entry.size);
  }
  return total;
}

/**
 * A POSIX (pax) tar stream of regular files, written block by block as the entries' bytes
 * arrive: never a whole file in memory, and the next entry is asked for only once the previous
 * one is written. Names longer than 100 bytes, sizes past 8 GiB and caller records go in a PAX
 * extended header before the entry. A body of the wrong length, or any failure, throws before
 * the end-of-archive blocks, so a consumer never sees a complete-looking truncated archive.
 */
export async function* tarStream(
  entries: AsyncIterable<TarEntry> | Iterable<TarEntry>,
  mtime = new Date(),
): AsyncGenerator<Uint8Array> {
  const seconds = Math.floor(mtime.getTime() / 1000);
  for await (const entry of entries) {
    const pax = paxData(entry);
    if (pax) {
      yield header(`PaxHeaders/${entry.name}`.slice(0, 100), pax.length, 0o644, seconds, 'x');
      yield pax;
      yield padding(pax.length);
    }
    yield header(
      entry.name.slice(0, 100),
      entry.size <= USTAR_MAX_SIZE ? entry.size : 0,
      entry.mode,
      seconds,
      '0',
    );
    let written = 0;
    for await (const chunk of await entry.open()) {
      written += chunk.length;
      if (written > entry.size) throw new Error(`${entry.name}: more than ${entry.size} bytes`);
      yield chunk;
    }
    if (written !== entry.size) throw new Error(`${entry.name}: ${written} of ${entry.size} bytes`);
    yield padding(entry.size);
  }
  yield Buffer.alloc(2 * BLOCK);
}

/**
 * Writes {@link tarStream} to `out`. On failure the promise rejects before the end-of-archive
 * blocks and `out` is neither ended nor destroyed: the caller kills whatever reads it (cocoon
 * import), so a truncated stream is never mistaken for a complete one.
 */
export async function writeTar(
  out: Writable,
  entries: AsyncIterable<TarEntry> | Iterable<TarEntry>,
): Promise<void> {
  for await (const chunk of tarStream(entries)) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
}

function paxData(entry: Omit<TarEntry, 'open'>): Buffer | undefined {
  const records: [string, string][] = Object.entries(entry.pax ?? {});
  if (Buffer.byteLength(entry.name) > 100) records.push(['path', entry.name]);
  if (entry.size > USTAR_MAX_SIZE) records.push(['size', String(entry.size)]);
  if (records.length === 0) return undefined;
  return Buffer.concat(records.map(([key, value]) => paxRecord(key, value)));
}

/** `"<len> <key>=<value>\n"`, where `<len>` counts the whole record including itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body);
  let length = bodyLength + 1;
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength;
  return Buffer.from(`${length}${body}`);
}

function header(name: string, size: number, mode: number, mtime: number, type: '0' | 'x'): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 7), 100);
  h.write(octal(0, 7), 108);
  h.write(octal(0, 7), 116);
  h.write(octal(size, 11), 124);
  h.write(octal(mtime, 11), 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\u000000', 257, 'binary');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'binary');
  return h;
}

function octal(value: number, digits: number): string {
  return `${value.toString(8).padStart(digits, '0')}\u0000`;
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

function padding(size: number): Buffer {
  return Buffer.alloc(padded(size) - size);
}
