import { hash } from 'node:crypto';
import type { Digest } from './digest.js';

/**
 * The chunk index codec of incremental snapshots (docs/incremental-snapshots.md §5): a 64-byte
 * header, a table of packs, then fixed 48-byte records in file order, all little-endian. Every
 * decoder here checks sizes against the header before it allocates, so hostile bytes cost at
 * most their own length and end in a {@link ChunkIndexError}.
 */

/** Bytes of the index header. */
export const CHUNK_INDEX_HEADER_BYTES = 64;
/** Bytes of one pack table entry (sha256, u64 size). */
export const CHUNK_INDEX_PACK_BYTES = 40;
/** Bytes of one record. */
export const CHUNK_INDEX_RECORD_BYTES = 48;
/** Most packs one index may name. */
export const MAX_INDEX_PACKS = 65536;
/** Most records one index may hold (2^40: a petabyte of 1 KiB runs is already absurd). */
export const MAX_INDEX_RECORDS = 2 ** 40;
/** Longest zero or hole run one record can describe. */
export const MAX_RUN_BYTES = 0xffffffff;
/** Largest pack a record can point into (offsets are u32). */
export const MAX_PACK_BYTES = 0xffffffff;
/** Smallest and largest chunk sizes a reader accepts. */
export const MIN_CHUNK_SIZE = 4096;
export const MAX_CHUNK_SIZE = 1024 * 1024;

/**
 * A chunk's identity: the sha256 of its bytes, as a data record stores it. One call, no hash
 * object: a multi-GiB file is hundreds of thousands of chunks.
 */
export function chunkSha256(bytes: Uint8Array): Buffer {
  return hash('sha256', bytes, 'buffer');
}

const MAGIC = Buffer.from('EPOCHCIX', 'ascii');
const VERSION = 1;
const KIND_DATA = 1;
const KIND_ZERO = 2;
const KIND_HOLE = 3;

/** A pack named by an index: its digest and size. */
export interface IndexedPack {
  digest: Digest;
  size: number;
}

/** What an index header (and its pack table) says about a file. */
export interface ChunkIndexHeader {
  /** Chunk size the file was cut with (a power of two). */
  chunkSize: number;
  /** Logical size of the file. */
  fileSize: number;
  /** Packs the records point into, by ordinal. */
  packs: IndexedPack[];
  /** Number of records. */
  recordCount: number;
  /** Bytes of data records (stored in packs). */
  dataBytes: number;
  /** Bytes of zero records (all-zero content, never stored). */
  zeroBytes: number;
  /** Bytes of hole records (not allocated in the source file). */
  holeBytes: number;
}

/** `length` bytes of the file found at `offset` of pack number `pack`, hashing to `sha256`. */
export interface DataRecord {
  kind: 'data';
  length: number;
  pack: number;
  offset: number;
  /** sha256 of the chunk (32 bytes). */
  sha256: Uint8Array;
}

/** A run of `length` bytes that are zero (`zero`: allocated in the source; `hole`: not). */
export interface RunRecord {
  kind: 'zero' | 'hole';
  length: number;
}

/** One record of a chunk index. */
export type ChunkRecord = DataRecord | RunRecord;

/** A whole decoded index. */
export interface ChunkIndex extends ChunkIndexHeader {
  records: ChunkRecord[];
}

/** A chunk index that is malformed, truncated, or breaks one of the format's rules. */
export class ChunkIndexError extends Error {
  /** Distribution-spec code a server would answer with. */
  readonly code = 'MANIFEST_INVALID' as const;
  /** Byte offset in the index where the problem was found. */
  readonly offset: number;

  /**
   * @param message - what is wrong
   * @param offset - byte offset in the index
   */
  constructor(message: string, offset: number) {
    super(`chunk index: ${message} (at byte ${offset})`);
    this.name = 'ChunkIndexError';
    this.offset = offset;
  }
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function u64(buf: Buffer, at: number, what: string, base: number): number {
  const value = buf.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ChunkIndexError(`${what} ${value} is beyond 2^53-1`, base + at);
  }
  return Number(value);
}

/**
 * Encodes the header and pack table.
 *
 * @throws {RangeError} when the header breaks the format's limits (a writer bug)
 */
export function encodeChunkIndexHeader(header: ChunkIndexHeader): Buffer {
  const { chunkSize, fileSize, packs, recordCount } = header;
  if (!isPowerOfTwo(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunk size ${chunkSize} is not a power of two in 4 KiB … 1 MiB`);
  }
  if (packs.length > MAX_INDEX_PACKS) throw new RangeError(`${packs.length} packs in one index`);
  if (header.dataBytes + header.zeroBytes + header.holeBytes !== fileSize) {
    throw new RangeError('data, zero and hole bytes do not add up to the file size');
  }
  const out = Buffer.alloc(CHUNK_INDEX_HEADER_BYTES + packs.length * CHUNK_INDEX_PACK_BYTES);
  MAGIC.copy(out, 0);
  out.writeUInt16LE(VERSION, 8);
  out.writeUInt16LE(0, 10);
  out.writeUInt32LE(chunkSize, 12);
  out.writeBigUInt64LE(BigInt(fileSize), 16);
  out.writeUInt32LE(packs.length, 24);
  out.writeBigUInt64LE(BigInt(recordCount), 32);
  out.writeBigUInt64LE(BigInt(header.dataBytes), 40);
  out.writeBigUInt64LE(BigInt(header.zeroBytes), 48);
  out.writeBigUInt64LE(BigInt(header.holeBytes), 56);
  packs.forEach((pack, i) => {
    const at = CHUNK_INDEX_HEADER_BYTES + i * CHUNK_INDEX_PACK_BYTES;
    if (!/^sha256:[0-9a-f]{64}$/.test(pack.digest)) {
      throw new RangeError(`pack ${pack.digest} is not a sha256 digest`);
    }
    out.write(pack.digest.slice(7), at, 'hex');
    out.writeBigUInt64LE(BigInt(pack.size), at + 32);
  });
  return out;
}

/** Encodes one record into `out` at `at` (48 bytes), or into a new buffer. */
export function encodeChunkRecord(record: ChunkRecord, out?: Buffer, at = 0): Buffer {
  const buf = out ?? Buffer.alloc(CHUNK_INDEX_RECORD_BYTES);
  buf.fill(0, at, at + CHUNK_INDEX_RECORD_BYTES);
  if (record.kind === 'data') {
    buf.writeUInt8(KIND_DATA, at);
    buf.writeUInt32LE(record.length, at + 4);
    buf.writeUInt32LE(record.pack, at + 8);
    buf.writeUInt32LE(record.offset, at + 12);
    if (record.sha256.length !== 32) throw new RangeError('a chunk sha256 is 32 bytes');
    buf.set(record.sha256, at + 16);
  } else {
    buf.writeUInt8(record.kind === 'zero' ? KIND_ZERO : KIND_HOLE, at);
    buf.writeUInt32LE(record.length, at + 4);
  }
  return buf;
}

/** Encodes a whole index (header, pack table, records) in memory: for small files and tests. */
export function encodeChunkIndex(index: ChunkIndex): Buffer {
  const head = encodeChunkIndexHeader({ ...index, recordCount: index.records.length });
  const body = Buffer.alloc(index.records.length * CHUNK_INDEX_RECORD_BYTES);
  index.records.forEach((r, i) => {
    encodeChunkRecord(r, body, i * CHUNK_INDEX_RECORD_BYTES);
  });
  return Buffer.concat([head, body]);
}

/**
 * Decodes the 64-byte header (without the pack table). `available`, when given, is the whole
 * index's length, checked against the size equation before anything is allocated.
 *
 * @throws {ChunkIndexError} on any rule of the header broken
 */
export function decodeChunkIndexPrefix(
  bytes: Uint8Array,
  available?: number,
): Omit<ChunkIndexHeader, 'packs'> & { packCount: number; byteLength: number } {
  if (bytes.length < CHUNK_INDEX_HEADER_BYTES) {
    throw new ChunkIndexError(`truncated header (${bytes.length} bytes)`, bytes.length);
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, CHUNK_INDEX_HEADER_BYTES);
  if (!buf.subarray(0, 8).equals(MAGIC)) throw new ChunkIndexError('not a chunk index (magic)', 0);
  const version = buf.readUInt16LE(8);
  if (version !== VERSION) throw new ChunkIndexError(`unsupported version ${version}`, 8);
  if (buf.readUInt16LE(10) !== 0) throw new ChunkIndexError('unknown header flags', 10);
  const chunkSize = buf.readUInt32LE(12);
  if (!isPowerOfTwo(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new ChunkIndexError(`chunk size ${chunkSize} out of range`, 12);
  }
  const fileSize = u64(buf, 16, 'file size', 0);
  const packCount = buf.readUInt32LE(24);
  if (packCount > MAX_INDEX_PACKS) throw new ChunkIndexError(`${packCount} packs`, 24);
  if (buf.readUInt32LE(28) !== 0) throw new ChunkIndexError('reserved header field set', 28);
  const recordCount = u64(buf, 32, 'record count', 0);
  if (recordCount > MAX_INDEX_RECORDS) throw new ChunkIndexError(`${recordCount} records`, 32);
  const dataBytes = u64(buf, 40, 'data bytes', 0);
  const zeroBytes = u64(buf, 48, 'zero bytes', 0);
  const holeBytes = u64(buf, 56, 'hole bytes', 0);
  if (dataBytes + zeroBytes + holeBytes !== fileSize) {
    throw new ChunkIndexError('data, zero and hole bytes do not add up to the file size', 40);
  }
  if (recordCount === 0 && fileSize !== 0) throw new ChunkIndexError('no records', 32);
  const byteLength =
    CHUNK_INDEX_HEADER_BYTES +
    packCount * CHUNK_INDEX_PACK_BYTES +
    recordCount * CHUNK_INDEX_RECORD_BYTES;
  if (available !== undefined && available !== byteLength) {
    throw new ChunkIndexError(
      `the header announces ${byteLength} bytes, the index has ${available}`,
      0,
    );
  }
  return {
    chunkSize,
    fileSize,
    packCount,
    recordCount,
    dataBytes,
    zeroBytes,
    holeBytes,
    byteLength,
  };
}

/** Decodes `count` pack table entries from `bytes` (which starts at the table). */
function decodePackTable(bytes: Uint8Array, count: number): IndexedPack[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const packs: IndexedPack[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const at = i * CHUNK_INDEX_PACK_BYTES;
    const digest = `sha256:${buf.toString('hex', at, at + 32)}` as Digest;
    const size = u64(buf, at + 32, 'pack size', CHUNK_INDEX_HEADER_BYTES);
    const where = CHUNK_INDEX_HEADER_BYTES + at;
    if (seen.has(digest)) throw new ChunkIndexError(`pack ${digest} listed twice`, where);
    if (size === 0 || size > MAX_PACK_BYTES) {
      throw new ChunkIndexError(`pack ${digest} has size ${size}`, where + 32);
    }
    seen.add(digest);
    packs.push({ digest, size });
  }
  return packs;
}

/**
 * Checks records one at a time against the header: kinds, reserved bytes, lengths, chunk
 * alignment, pack bounds, and at the end the totals. Records are offered in file order.
 */
export class ChunkRecordValidator {
  readonly #header: ChunkIndexHeader;
  #position = 0;
  #count = 0;
  #data = 0;
  #zero = 0;
  #hole = 0;

  /** @param header - the decoded header the records must agree with */
  constructor(header: ChunkIndexHeader) {
    this.#header = header;
  }

  /** Logical offset where the next record starts. */
  get position(): number {
    return this.#position;
  }

  /**
   * Decodes and checks the record at `at` of `buf`.
   *
   * @param where - byte offset of the record in the whole index (for errors)
   * @throws {ChunkIndexError}
   */
  decode(buf: Buffer, at: number, where: number): ChunkRecord {
    const kind = this.check(buf, at, where);
    const length = buf.readUInt32LE(at + 4);
    if (kind !== KIND_DATA) return { kind: kind === KIND_ZERO ? 'zero' : 'hole', length };
    return {
      kind: 'data',
      length,
      pack: buf.readUInt32LE(at + 8),
      offset: buf.readUInt32LE(at + 12),
      sha256: new Uint8Array(buf.subarray(at + 16, at + 48)),
    };
  }

  /**
   * Checks the record at `at` of `buf` and counts it, without building an object; returns its
   * kind byte.
   *
   * @param where - byte offset of the record in the whole index (for errors)
   * @throws {ChunkIndexError}
   */
  check(buf: Buffer, at: number, where: number): number {
    const { chunkSize, fileSize, packs, recordCount } = this.#header;
    if (this.#count >= recordCount) throw new ChunkIndexError('more records than announced', where);
    const kind = buf.readUInt8(at);
    if (buf.readUInt8(at + 1) !== 0 || buf.readUInt16LE(at + 2) !== 0) {
      throw new ChunkIndexError('reserved record field set', where + 1);
    }
    const length = buf.readUInt32LE(at + 4);
    if (length === 0) throw new ChunkIndexError('empty record', where + 4);
    const start = this.#position;
    if (start + length > fileSize) {
      throw new ChunkIndexError('records run past the file size', where + 4);
    }
    if (kind === KIND_DATA) {
      if (
        length > chunkSize ||
        Math.floor(start / chunkSize) !== Math.floor((start + length - 1) / chunkSize)
      ) {
        throw new ChunkIndexError('a data record crosses a chunk boundary', where + 4);
      }
      const pack = buf.readUInt32LE(at + 8);
      const offset = buf.readUInt32LE(at + 12);
      const target = packs[pack];
      if (target === undefined)
        throw new ChunkIndexError(`pack ordinal ${pack} unknown`, where + 8);
      if (offset + length > target.size) {
        throw new ChunkIndexError(`chunk runs past the end of pack ${pack}`, where + 12);
      }
      this.#data += length;
    } else if (kind === KIND_ZERO || kind === KIND_HOLE) {
      for (let i = at + 8; i < at + CHUNK_INDEX_RECORD_BYTES; i++) {
        if (buf[i] !== 0)
          throw new ChunkIndexError('a run record has data fields set', where + i - at);
      }
      if (kind === KIND_ZERO) this.#zero += length;
      else this.#hole += length;
    } else {
      throw new ChunkIndexError(`unknown record kind ${kind}`, where);
    }
    this.#position += length;
    this.#count++;
    return kind;
  }

  /**
   * Checks that the records covered the whole file and add up to the header's totals.
   *
   * @throws {ChunkIndexError}
   */
  finish(where: number): void {
    const h = this.#header;
    if (this.#count !== h.recordCount)
      throw new ChunkIndexError('fewer records than announced', where);
    if (this.#position !== h.fileSize)
      throw new ChunkIndexError('records do not cover the file', where);
    if (this.#data !== h.dataBytes || this.#zero !== h.zeroBytes || this.#hole !== h.holeBytes) {
      throw new ChunkIndexError('record totals disagree with the header', where);
    }
  }
}

/**
 * Decodes a whole index held in memory.
 *
 * @throws {ChunkIndexError} when any rule of the format is broken
 */
export function decodeChunkIndex(bytes: Uint8Array): ChunkIndex {
  const prefix = decodeChunkIndexPrefix(bytes, bytes.length);
  const packs = decodePackTable(bytes.subarray(CHUNK_INDEX_HEADER_BYTES), prefix.packCount);
  const header: ChunkIndexHeader = { ...stripPrefix(prefix), packs };
  const validator = new ChunkRecordValidator(header);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = CHUNK_INDEX_HEADER_BYTES + packs.length * CHUNK_INDEX_PACK_BYTES;
  const records: ChunkRecord[] = [];
  for (let at = first; at < buf.length; at += CHUNK_INDEX_RECORD_BYTES) {
    records.push(validator.decode(buf, at, at));
  }
  validator.finish(buf.length);
  return { ...header, records };
}

function stripPrefix(
  prefix: ReturnType<typeof decodeChunkIndexPrefix>,
): Omit<ChunkIndexHeader, 'packs'> {
  const { packCount: _p, byteLength: _b, ...rest } = prefix;
  return rest;
}

/** The kind of a record, as {@link ChunkRecordPage.kindOf} gives it. */
export type ChunkRecordKind = ChunkRecord['kind'];

const KINDS: Record<number, ChunkRecordKind> = {
  [KIND_DATA]: 'data',
  [KIND_ZERO]: 'zero',
  [KIND_HOLE]: 'hole',
};

/**
 * Consecutive records of an index, already checked, read in place from the index's bytes: for
 * a reader that walks hundreds of thousands of records (a memory file's) without an object and
 * a copied sha256 per record, and without an await per record.
 */
export class ChunkRecordPage {
  readonly #buf: Buffer;
  /** Number of records. */
  readonly count: number;

  /** @internal Pages come from {@link OpenedChunkIndex.pages}. */
  constructor(buf: Buffer) {
    this.#buf = buf;
    this.count = buf.length / CHUNK_INDEX_RECORD_BYTES;
  }

  kindOf(i: number): ChunkRecordKind {
    return KINDS[this.#buf[i * CHUNK_INDEX_RECORD_BYTES] as number] as ChunkRecordKind;
  }

  lengthOf(i: number): number {
    return this.#buf.readUInt32LE(i * CHUNK_INDEX_RECORD_BYTES + 4);
  }

  /** Pack ordinal of a data record. */
  packOf(i: number): number {
    return this.#buf.readUInt32LE(i * CHUNK_INDEX_RECORD_BYTES + 8);
  }

  /** Offset in its pack of a data record. */
  offsetOf(i: number): number {
    return this.#buf.readUInt32LE(i * CHUNK_INDEX_RECORD_BYTES + 12);
  }

  /** A data record's sha256: a view into the page, valid as long as the page is. */
  sha256Of(i: number): Buffer {
    const at = this.sha256At(i);
    return this.#buf.subarray(at, at + 32);
  }

  /** The page's records, encoded: for a reader that takes a sha256 in place ({@link sha256At}). */
  get bytes(): Buffer {
    return this.#buf;
  }

  /** Where a data record's sha256 (32 bytes) starts in {@link bytes}. */
  sha256At(i: number): number {
    return i * CHUNK_INDEX_RECORD_BYTES + 16;
  }

  /**
   * Whether record `i` here and record `j` of `other` describe the same bytes: same kind and
   * length, and for data the same sha256 (where in which pack does not matter).
   */
  same(i: number, other: ChunkRecordPage, j: number): boolean {
    const a = i * CHUNK_INDEX_RECORD_BYTES;
    const b = j * CHUNK_INDEX_RECORD_BYTES;
    const x = this.#buf;
    const y = other.#buf;
    if (x[a] !== y[b] || x.readUInt32LE(a + 4) !== y.readUInt32LE(b + 4)) return false;
    return x[a] !== KIND_DATA || x.compare(y, b + 16, b + 48, a + 16, a + 48) === 0;
  }

  /** Record `i` as an object (what {@link OpenedChunkIndex.records} yields). */
  record(i: number): ChunkRecord {
    const kind = this.kindOf(i);
    const length = this.lengthOf(i);
    if (kind !== 'data') return { kind, length };
    const sha256 = new Uint8Array(this.sha256Of(i));
    return { kind, length, pack: this.packOf(i), offset: this.offsetOf(i), sha256 };
  }
}

/**
 * A streamed index: its header at once, its records as they arrive. Read the records through
 * one of `records` and `pages`, not both: they share the stream.
 */
export interface OpenedChunkIndex {
  header: ChunkIndexHeader;
  /** The records in file order; fails with {@link ChunkIndexError} at the first bad one. */
  records: AsyncGenerator<ChunkRecord>;
  /**
   * The same records a page at a time, each page checked whole before it is handed out; fails
   * with {@link ChunkIndexError} at the first page holding a bad record.
   */
  pages: AsyncGenerator<ChunkRecordPage>;
}

/**
 * Reads an index from a byte stream without holding it: the header and pack table first (at
 * most 2.6 MiB), then records as they arrive. `size` is the blob's length from its descriptor,
 * checked against the header. The caller verifies the stream's digest (e.g. with a verifying
 * download): a record handed out is provisional until the stream ended cleanly.
 *
 * @throws {ChunkIndexError} from the returned promise (header) or the record iterators
 */
export async function openChunkIndex(
  source: AsyncIterable<Uint8Array>,
  size?: number,
): Promise<OpenedChunkIndex> {
  const iterator = source[Symbol.asyncIterator]();
  let pending: Buffer = Buffer.alloc(0);
  let consumed = 0;
  const fill = async (want: number): Promise<boolean> => {
    const parts: Buffer[] = [pending];
    let have = pending.length;
    while (have < want) {
      const next = await iterator.next();
      if (next.done) break;
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      parts.push(chunk);
      have += chunk.length;
    }
    pending = parts.length === 1 ? pending : Buffer.concat(parts);
    return pending.length >= want;
  };
  let header: ChunkIndexHeader;
  try {
    if (!(await fill(CHUNK_INDEX_HEADER_BYTES))) {
      throw new ChunkIndexError(`truncated header (${pending.length} bytes)`, pending.length);
    }
    const prefix = decodeChunkIndexPrefix(pending, size);
    const tableBytes = prefix.packCount * CHUNK_INDEX_PACK_BYTES;
    if (!(await fill(CHUNK_INDEX_HEADER_BYTES + tableBytes))) {
      throw new ChunkIndexError('truncated pack table', pending.length);
    }
    const packs = decodePackTable(pending.subarray(CHUNK_INDEX_HEADER_BYTES), prefix.packCount);
    consumed = CHUNK_INDEX_HEADER_BYTES + tableBytes;
    pending = pending.subarray(consumed);
    header = { ...stripPrefix(prefix), packs };
  } catch (err) {
    // A refused header gives the source back (a file stream closes its descriptor now).
    await iterator.return?.();
    throw err;
  }
  const validator = new ChunkRecordValidator(header);

  async function* pages(): AsyncGenerator<ChunkRecordPage> {
    try {
      for (;;) {
        if (pending.length < CHUNK_INDEX_RECORD_BYTES) {
          const next = await iterator.next();
          if (next.done) break;
          const chunk = Buffer.from(
            next.value.buffer,
            next.value.byteOffset,
            next.value.byteLength,
          );
          pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
          continue;
        }
        const whole = pending.length - (pending.length % CHUNK_INDEX_RECORD_BYTES);
        for (let at = 0; at < whole; at += CHUNK_INDEX_RECORD_BYTES) {
          validator.check(pending, at, consumed + at);
        }
        const page = new ChunkRecordPage(pending.subarray(0, whole));
        consumed += whole;
        pending = pending.subarray(whole);
        yield page;
      }
      if (pending.length > 0) throw new ChunkIndexError('truncated record', consumed);
      validator.finish(consumed);
    } finally {
      await iterator.return?.();
    }
  }
  const paged = pages();
  async function* records(): AsyncGenerator<ChunkRecord> {
    for await (const page of paged) {
      for (let i = 0; i < page.count; i++) yield page.record(i);
    }
  }
  return { header, records: records(), pages: paged };
}
