import type { ByteSink } from './byte-sink.js';

/** A tar entry's header as {@link TarReader} reads it, long names and PAX records applied. */
export interface TarHeader {
  name: string;
  /** Bytes of the entry's body. */
  size: number;
  mode: number;
  /** `file` for a regular file (typeflag `0`, NUL or `7`), else the typeflag character. */
  type: string;
  /** The entry's PAX records (global ones first), when there are any. */
  pax?: Record<string, string>;
}

/** A tar stream that is not one: bad checksum, unknown format, truncated. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

const BLOCK = 512;
/** PAX and GNU long-name headers are held whole: a bound on what a stream can make us hold. */
const MAX_LONG_HEADER = 4 * 1024 * 1024;
const USTAR = Buffer.from('ustar\u0000', 'binary');
const GNU = Buffer.from('ustar  \u0000', 'binary');

enum State {
  Header,
  Long,
  Body,
  Padding,
  Ended,
}

/**
 * Reads a tar stream (ustar, pax and GNU headers) written to it in pieces of any size, and
 * hands each entry's body to the sink `onEntry` returns for it (nothing: the body is skipped).
 * Synchronous: the body reaches the sink as views of the written bytes, with no copy, buffer or
 * promise per piece, so a stream read into one reused buffer allocates nothing as it flows.
 * A promise from a sink pauses the reader until it settles, and {@link write} returns a promise
 * for the rest of its bytes. The stream must end with the end-of-archive block: a stream cut
 * between entries is refused, not taken for a shorter archive.
 */
export class TarReader implements ByteSink {
  readonly #onEntry: (header: TarHeader) => ByteSink | undefined;
  #state = State.Header;
  /** A header gathered across writes. */
  readonly #block = Buffer.alloc(BLOCK);
  #blockFill = 0;
  /** The body of a PAX or GNU long-name header being gathered, and its typeflag. */
  #long: Buffer | undefined;
  #longType = '';
  #longFill = 0;
  #sink: ByteSink | undefined;
  /** A sink's promise the reader waits for. */
  #pending: void | Promise<void> = undefined;
  /** Body (or padding) bytes left in the current entry. */
  #left = 0;
  #padding = 0;
  #pax: Record<string, string> | undefined;
  #globalPax: Record<string, string> | undefined;
  #longName: string | undefined;

  /** @param onEntry - called per entry, in order; returns where its body goes */
  constructor(onEntry: (header: TarHeader) => ByteSink | undefined) {
    this.#onEntry = onEntry;
  }

  /** @throws {TarFormatError} at the first byte that is not a valid tar */
  write(bytes: Buffer): void | Promise<void> {
    return this.#consume(bytes, 0);
  }

  /** @throws {TarFormatError} when the stream ended before its end-of-archive block */
  end(): void {
    if (this.#state === State.Ended) return;
    if (this.#state === State.Body) {
      throw new TarFormatError(`the tar ends inside an entry (${this.#left} bytes missing)`);
    }
    throw new TarFormatError('the tar ends without its end-of-archive block');
  }

  #consume(bytes: Buffer, from: number): void | Promise<void> {
    let at = from;
    while (at < bytes.length) {
      if (this.#state === State.Ended) return trailing(bytes, at);
      if (this.#state !== State.Body) {
        at = this.#step(bytes, at);
        continue;
      }
      at = this.#body(bytes, at);
      const pending = this.#pending;
      if (pending) {
        this.#pending = undefined;
        return this.#after(pending, bytes, at);
      }
    }
    if (this.#state === State.Body && this.#left === 0) return this.#endBody();
  }

  /** Passes body bytes on from `at`, ending the body when it is complete. */
  #body(bytes: Buffer, at: number): number {
    if (this.#left > 0) {
      const take = Math.min(this.#left, bytes.length - at);
      const piece = bytes.subarray(at, at + take);
      this.#left -= take;
      const pending = this.#sink?.write(piece);
      if (pending || this.#left > 0) {
        this.#pending = pending;
        return at + take;
      }
      at += take;
    }
    this.#pending = this.#endBody();
    return at;
  }

  /** Reads header, long-header or padding bytes from `at`. */
  #step(bytes: Buffer, at: number): number {
    if (this.#state === State.Header) return this.#header(bytes, at);
    if (this.#state === State.Long) return this.#gatherLong(bytes, at);
    const take = Math.min(this.#padding, bytes.length - at);
    this.#padding -= take;
    if (this.#padding === 0) this.#state = State.Header;
    return at + take;
  }

  #after(pending: Promise<void>, bytes: Buffer, at: number): Promise<void> {
    return pending.then(() => this.#consume(bytes, at));
  }

  /** The body is complete: its sink is told, and the padding comes next. */
  #endBody(): void | Promise<void> {
    const sink = this.#sink;
    this.#sink = undefined;
    this.#state = this.#padding === 0 ? State.Header : State.Padding;
    return sink?.end();
  }

  /** Reads a header block from `at`, whole or across writes; returns where reading stopped. */
  #header(bytes: Buffer, at: number): number {
    let block: Buffer;
    if (this.#blockFill === 0 && bytes.length - at >= BLOCK) {
      block = bytes.subarray(at, at + BLOCK);
      at += BLOCK;
    } else {
      const take = Math.min(BLOCK - this.#blockFill, bytes.length - at);
      bytes.copy(this.#block, this.#blockFill, at, at + take);
      this.#blockFill += take;
      at += take;
      if (this.#blockFill < BLOCK) return at;
      this.#blockFill = 0;
      block = this.#block;
    }
    this.#onHeader(block);
    return at;
  }

  #onHeader(block: Buffer): void {
    if (isZero(block)) {
      this.#state = State.Ended;
      return;
    }
    const header = decodeHeader(block);
    const { type } = header;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (header.size > MAX_LONG_HEADER) {
        throw new TarFormatError(`a ${type} header of ${header.size} bytes is too large`);
      }
      this.#long = Buffer.alloc(header.size);
      this.#longType = type;
      this.#longFill = 0;
      this.#state = State.Long;
      if (header.size === 0) this.#longDone();
      return;
    }
    if (this.#longName !== undefined) header.name = this.#longName;
    if (this.#globalPax || this.#pax) applyPax(header, { ...this.#globalPax, ...this.#pax });
    this.#longName = undefined;
    this.#pax = undefined;
    if (header.type === 'file' && header.name.endsWith('/')) header.type = '5';
    this.#sink = this.#onEntry(header);
    this.#left = header.size;
    this.#padding = padding(header.size);
    this.#state = State.Body;
  }

  #gatherLong(bytes: Buffer, at: number): number {
    const long = this.#long as Buffer;
    const take = Math.min(long.length - this.#longFill, bytes.length - at);
    bytes.copy(long, this.#longFill, at, at + take);
    this.#longFill += take;
    if (this.#longFill === long.length) this.#longDone();
    return at + take;
  }

  #longDone(): void {
    const long = this.#long as Buffer;
    this.#long = undefined;
    if (this.#longType === 'x') this.#pax = decodePax(long);
    else if (this.#longType === 'g') this.#globalPax = { ...this.#globalPax, ...decodePax(long) };
    else if (this.#longType === 'L') this.#longName = cString(long, 0, long.length);
    this.#padding = padding(long.length);
    this.#state = this.#padding === 0 ? State.Header : State.Padding;
  }
}

/** PAX records override the header's name and size. */
function applyPax(header: TarHeader, pax: Record<string, string>): void {
  if (pax.path !== undefined) header.name = pax.path;
  if (pax.size !== undefined) {
    if (!/^\d+$/.test(pax.size) || !Number.isSafeInteger(Number(pax.size))) {
      throw new TarFormatError(`${header.name}: PAX size "${pax.size}" is not a size`);
    }
    header.size = Number(pax.size);
  }
  header.pax = pax;
}

function decodeHeader(block: Buffer): TarHeader {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i] as number;
  for (let i = 156; i < BLOCK; i++) sum += block[i] as number;
  let stored = -1;
  try {
    stored = number(block, 148, 8);
  } catch {}
  if (sum !== stored) {
    throw new TarFormatError('a tar header has a bad checksum (not a tar, or a gzipped one?)');
  }
  const ustar = USTAR.compare(block, 257, 263) === 0;
  if (!ustar && GNU.compare(block, 257, 265) !== 0) {
    throw new TarFormatError('a tar header is neither ustar nor GNU');
  }
  let name = cString(block, 0, 100);
  if (ustar && block[345] !== 0) name = `${cString(block, 345, 155)}/${name}`;
  const flag = block[156] as number;
  const type = flag === 0 || flag === 0x30 || flag === 0x37 ? 'file' : String.fromCharCode(flag);
  const size = number(block, 124, 12);
  return { name, size, mode: number(block, 100, 8), type };
}

/** An octal field (NUL- or space-ended), or a GNU base-256 one (high bit set). */
function number(block: Buffer, offset: number, length: number): number {
  if ((block[offset] as number) & 0x80) return base256(block, offset, length);
  let value = 0;
  let i = offset;
  const end = offset + length;
  while (i < end && block[i] === 0x20) i++;
  for (; i < end; i++) {
    const c = block[i] as number;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new TarFormatError('a tar header number is not octal');
    value = value * 8 + (c - 0x30);
  }
  return value;
}

function base256(block: Buffer, offset: number, length: number): number {
  if (block[offset] !== 0x80) throw new TarFormatError('a tar header holds a negative number');
  let value = 0;
  for (let i = offset + 1; i < offset + length; i++) value = value * 256 + (block[i] as number);
  if (!Number.isSafeInteger(value)) throw new TarFormatError('a tar header number is too large');
  return value;
}

function cString(bytes: Buffer, offset: number, length: number): string {
  const nul = bytes.indexOf(0, offset);
  const end = nul === -1 || nul > offset + length ? offset + length : nul;
  return bytes.toString('utf8', offset, end);
}

/** PAX records: `"<len> <key>=<value>\n"`, `<len>` counting the whole record. */
function decodePax(bytes: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < bytes.length) {
    const space = bytes.indexOf(0x20, at);
    const length = space === -1 ? Number.NaN : Number(bytes.toString('latin1', at, space));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > bytes.length) {
      throw new TarFormatError('a PAX header has a malformed record');
    }
    const record = bytes.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq <= 0 || bytes[at + length - 1] !== 0x0a) {
      throw new TarFormatError('a PAX header has a malformed record');
    }
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if ((key === 'path' || key === 'linkpath') && value.includes('\u0000')) {
      throw new TarFormatError('a PAX path holds a NUL byte');
    }
    records[key] = value;
    at += length;
  }
  return records;
}

/**
 * After the end-of-archive block only zeros may follow (record padding): a second archive
 * appended (`cat a.tar b.tar`) would otherwise be dropped without a word.
 */
function trailing(bytes: Buffer, at: number): void {
  for (let i = at; i < bytes.length; i++) {
    if (bytes[i] !== 0) throw new TarFormatError('the tar goes on after its end-of-archive block');
  }
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function padding(size: number): number {
  const over = size % BLOCK;
  return over === 0 ? 0 : BLOCK - over;
}
