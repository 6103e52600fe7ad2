import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHUNK_INDEX_RECORD_BYTES,
  type ChunkIndexHeader,
  encodeChunkIndexHeader,
  encodeChunkRecord,
  type IndexedPack,
  MAX_RUN_BYTES,
} from '@epoch/oci';

const PAGE_RECORDS = 16384;

/** The encoded index of one file: its header, then its records (in memory or spooled). */
export interface BuiltIndex {
  size: number;
  /** The index's bytes, from the start; callable again (an upload may be retried). */
  read: () => AsyncIterable<Uint8Array>;
}

/**
 * The records of one file's chunk index, built while the file is chunked. Neighbouring zero or
 * hole runs are merged; data records name packs by table number, turned into the index's own
 * ordinals (first use first) here, so the pack table can be written once every pack is sealed.
 * Records take 48 bytes per 8 KiB of data (0.6%): 384 MiB for a 64 GiB memory file, so each
 * full 768 KiB page goes to a temporary file and memory holds one page at any file size.
 * {@link dispose} removes the file.
 */
export class IndexBuilder {
  readonly chunkSize: number;
  /** Table pack numbers, in ordinal order. */
  readonly packs: number[] = [];
  readonly #ordinals = new Map<number, number>();
  #page: Buffer | undefined;
  #used = PAGE_RECORDS;
  #count = 0;
  #spool: { dir: string; path: string; fd: number; bytes: number } | undefined;
  #run: { kind: 'zero' | 'hole'; length: number } | undefined;
  fileSize = 0;
  dataBytes = 0;
  zeroBytes = 0;
  holeBytes = 0;

  /** @param chunkSize - the chunk size the file is cut with */
  constructor(chunkSize: number) {
    this.chunkSize = chunkSize;
  }

  /** Bytes the encoded records take. */
  get recordBytes(): number {
    return (
      (this.#count + (this.#run ? Math.ceil(this.#run.length / MAX_RUN_BYTES) : 0)) *
      CHUNK_INDEX_RECORD_BYTES
    );
  }

  /** Appends a zero or hole run. */
  run(kind: 'zero' | 'hole', length: number): void {
    if (this.#run?.kind === kind) this.#run.length += length;
    else {
      this.#flushRun();
      this.#run = { kind, length };
    }
    this.fileSize += length;
    if (kind === 'zero') this.zeroBytes += length;
    else this.holeBytes += length;
  }

  /** Appends a data record pointing at `offset` of table pack `pack`. */
  data(length: number, pack: number, offset: number, sha256: Uint8Array): void {
    this.#flushRun();
    let ordinal = this.#ordinals.get(pack);
    if (ordinal === undefined) {
      ordinal = this.packs.length;
      this.#ordinals.set(pack, ordinal);
      this.packs.push(pack);
    }
    encodeChunkRecord(
      { kind: 'data', length, pack: ordinal, offset, sha256 },
      this.#slot(),
      this.#at(),
    );
    this.#count++;
    this.#used++;
    this.fileSize += length;
    this.dataBytes += length;
  }

  /** The whole index: header with the packs' digests (all sealed by now), then the records. */
  finish(packs: (pack: number) => IndexedPack): BuiltIndex {
    this.#flushRun();
    const header: ChunkIndexHeader = {
      chunkSize: this.chunkSize,
      fileSize: this.fileSize,
      packs: this.packs.map(packs),
      recordCount: this.#count,
      dataBytes: this.dataBytes,
      zeroBytes: this.zeroBytes,
      holeBytes: this.holeBytes,
    };
    const head = encodeChunkIndexHeader(header);
    const tail = this.#page?.subarray(0, this.#used * CHUNK_INDEX_RECORD_BYTES) ?? Buffer.alloc(0);
    const spool = this.#spool;
    if (spool) closeSync(spool.fd);
    this.#spool = spool && { ...spool, fd: -1 };
    return {
      size: head.length + (spool?.bytes ?? 0) + tail.length,
      read: async function* () {
        yield head;
        if (spool) yield* createReadStream(spool.path);
        yield tail;
      },
    };
  }

  /** Removes the spooled records, if any. */
  dispose(): void {
    const spool = this.#spool;
    this.#spool = undefined;
    if (!spool) return;
    if (spool.fd >= 0) closeSync(spool.fd);
    rmSync(spool.dir, { recursive: true, force: true });
  }

  #flushRun(): void {
    const run = this.#run;
    if (!run) return;
    this.#run = undefined;
    let left = run.length;
    while (left > 0) {
      const length = Math.min(left, MAX_RUN_BYTES);
      encodeChunkRecord({ kind: run.kind, length }, this.#slot(), this.#at());
      this.#count++;
      this.#used++;
      left -= length;
    }
  }

  #slot(): Buffer {
    if (this.#used === PAGE_RECORDS) {
      if (this.#page) this.#spoolPage(this.#page);
      this.#page ??= Buffer.allocUnsafe(PAGE_RECORDS * CHUNK_INDEX_RECORD_BYTES);
      this.#used = 0;
    }
    return this.#page as Buffer;
  }

  #spoolPage(page: Buffer): void {
    if (!this.#spool) {
      const dir = mkdtempSync(join(tmpdir(), 'epoch-index-'));
      const path = join(dir, 'records');
      this.#spool = { dir, path, fd: openSync(path, 'wx', 0o600), bytes: 0 };
    }
    const spool = this.#spool;
    for (let done = 0; done < page.length; ) {
      done += writeSync(spool.fd, page, done, page.length - done);
    }
    spool.bytes += page.length;
  }

  #at(): number {
    return this.#used * CHUNK_INDEX_RECORD_BYTES;
  }
}
