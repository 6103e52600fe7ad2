import {
  CHUNK_INDEX_RECORD_BYTES,
  type ChunkIndexHeader,
  encodeChunkIndexHeader,
  encodeChunkRecord,
  type IndexedPack,
  MAX_RUN_BYTES,
} from '@epoch/oci';

const PAGE_RECORDS = 16384;

/**
 * The records of one file's chunk index, built while the file is chunked. Neighbouring zero or
 * hole runs are merged; data records name packs by table number, turned into the index's own
 * ordinals (first use first) here, so the pack table can be written once every pack is sealed.
 * Records are kept in 768 KiB pages: 48 bytes per 8 KiB of data (0.6%).
 */
export class IndexBuilder {
  readonly chunkSize: number;
  /** Table pack numbers, in ordinal order. */
  readonly packs: number[] = [];
  readonly #ordinals = new Map<number, number>();
  readonly #pages: Buffer[] = [];
  #used = PAGE_RECORDS;
  #count = 0;
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

  /**
   * The whole index: header with the packs' digests (all sealed by now), then the records.
   * Returned as buffers to send one after the other.
   */
  finish(packs: (pack: number) => IndexedPack): Buffer[] {
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
    const out = [encodeChunkIndexHeader(header)];
    this.#pages.forEach((page, i) => {
      const last = i === this.#pages.length - 1;
      out.push(last ? page.subarray(0, this.#used * CHUNK_INDEX_RECORD_BYTES) : page);
    });
    return out;
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
      this.#pages.push(Buffer.allocUnsafe(PAGE_RECORDS * CHUNK_INDEX_RECORD_BYTES));
      this.#used = 0;
    }
    return this.#pages[this.#pages.length - 1] as Buffer;
  }

  #at(): number {
    return this.#used * CHUNK_INDEX_RECORD_BYTES;
  }
}
