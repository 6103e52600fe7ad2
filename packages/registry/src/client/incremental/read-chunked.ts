import {
  type ChunkedSnapshotLayout,
  type ChunkIndexHeader,
  type ChunkRecord,
  checkIndexPacks,
  chunkSha256,
  type Descriptor,
  type OpenedChunkIndex,
  openChunkIndex,
  type SparseSegment,
} from '@epoch/oci';
import type { RegistryClient } from '../client.js';

/** Shared, never written: zero runs are slices of it. */
const ZERO = Buffer.alloc(1024 * 1024);

/** A chunk whose bytes in a pack do not hash to what the index says: the pack is corrupt. */
export class ChunkVerificationError extends Error {
  override readonly name = 'ChunkVerificationError';
  constructor(
    readonly pack: string,
    readonly offset: number,
    readonly title: string,
    readonly fileOffset: number,
  ) {
    super(
      `${title}: the chunk at file offset ${fileOffset} (pack ${pack}, offset ${offset}) does not match its sha256; the pack is corrupt`,
    );
  }
}

/**
 * Reads a blob of the snapshot's repository: whole (then `size` is its expected length, and the
 * stream must fail at its end unless the bytes hash to `digest`), or the inclusive byte range
 * `range` (checked by the caller, chunk by chunk). The client reads over `/v2/`
 * ({@link clientBlobs}); the server reads its own storage through the repository's gate.
 */
export type BlobReader = (
  digest: string,
  read: { size: number; range?: undefined } | { range: { start: number; end: number } },
) => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>;

/** A {@link BlobReader} that reads `repository` through a registry client. */
export function clientBlobs(client: RegistryClient, repository: string): BlobReader {
  return (digest, read) => client.getBlob(repository, digest, read);
}

/** Where a file's index and chunks are read from. */
export interface ChunkedFileSource {
  blobs: BlobReader;
  layout: ChunkedSnapshotLayout;
  /** The file's index layer. */
  index: Descriptor;
  title: string;
}

/** Opens a file's index (streamed, verified against its digest by the end of the records). */
async function open(source: ChunkedFileSource): Promise<OpenedChunkIndex> {
  const { index } = source;
  const opened = await openChunkIndex(
    await source.blobs(index.digest, { size: index.size }),
    index.size,
  );
  checkIndexPacks(opened.header.packs, source.layout);
  return opened;
}

/**
 * First pass over a file's index: its header and data segments (everything but hole records,
 * merged), i.e. the sparse map a tar entry needs before its body. Reads the index to its end, so
 * its digest is verified too.
 */
export async function chunkedFileMap(
  source: ChunkedFileSource,
): Promise<{ header: ChunkIndexHeader; segments: SparseSegment[] }> {
  const { header, records } = await open(source);
  const segments: SparseSegment[] = [];
  let pos = 0;
  for await (const r of records) {
    if (r.kind !== 'hole') {
      const last = segments[segments.length - 1];
      if (last && last.o + last.l === pos) last.l += r.length;
      else segments.push({ o: pos, l: r.length });
    }
    pos += r.length;
  }
  return { header, segments };
}

/** Options of {@link chunkedFileBytes}. */
export interface ChunkedReadOptions {
  /** Largest span of one ranged GET (default 8 MiB). */
  rangeBytes?: number;
  /** Ranged GETs in flight (default 8). */
  concurrency?: number;
  /** Called with the bytes produced so far. */
  onProgress?: (bytes: number) => void;
}

type Group =
  | { kind: 'zero'; length: number }
  | {
      kind: 'data';
      pack: number;
      start: number;
      end: number;
      records: { length: number; offset: number; sha256: Uint8Array; at: number }[];
    };

/**
 * The bytes of a file without its holes, in order: what a sparse tar entry holds. Neighbouring
 * chunks of one pack are fetched with one ranged GET (several in flight), every chunk is checked
 * against its sha256 ({@link ChunkVerificationError}), zero runs are produced locally. The index
 * is verified against its digest when its last record is read, before the last bytes are handed
 * out, so a consumer that stops at the first error never completes a wrong file.
 */
export async function* chunkedFileBytes(
  source: ChunkedFileSource,
  options: ChunkedReadOptions = {},
): AsyncGenerator<Buffer> {
  const { header, records } = await open(source);
  const rangeBytes = options.rangeBytes ?? 8 * 1024 * 1024;
  const concurrency = options.concurrency ?? 8;
  // Zero runs are produced when their turn comes (a run may be GiBs), fetches ahead of it.
  const queue: (Promise<Buffer[]> | number)[] = [];
  let produced = 0;

  const fetchGroup = async (g: Group & { kind: 'data' }): Promise<Buffer[]> => {
    const pack = header.packs[g.pack];
    if (!pack) throw new RangeError('unknown pack');
    const parts: Buffer[] = [];
    for await (const c of await source.blobs(pack.digest, {
      range: { start: g.start, end: g.end - 1 },
    })) {
      parts.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    }
    const bytes = Buffer.concat(parts);
    if (bytes.length !== g.end - g.start) {
      throw new ChunkVerificationError(pack.digest, g.start, source.title, g.records[0]?.at ?? 0);
    }
    return g.records.map((r) => {
      const chunk = bytes.subarray(r.offset - g.start, r.offset - g.start + r.length);
      const sha = chunkSha256(chunk);
      if (!sha.equals(r.sha256))
        throw new ChunkVerificationError(pack.digest, r.offset, source.title, r.at);
      return chunk;
    });
  };
  const enqueue = (g: Group) => {
    if (g.kind === 'zero') {
      queue.push(g.length);
      return;
    }
    const p = fetchGroup(g);
    p.catch(() => {});
    queue.push(p);
  };

  let current: Group | undefined;
  let pos = 0;
  const flush = () => {
    if (current) enqueue(current);
    current = undefined;
  };
  const drainReady = async function* (limit: number) {
    while (queue.length > limit) {
      const next = queue.shift() as Promise<Buffer[]> | number;
      if (typeof next === 'number') {
        for (let left = next; left > 0; left -= ZERO.length) {
          const b = ZERO.subarray(0, Math.min(left, ZERO.length));
          produced += b.length;
          yield b;
        }
      } else {
        for (const b of await next) {
          produced += b.length;
          yield b;
        }
      }
      options.onProgress?.(produced);
    }
  };
  for await (const r of records as AsyncGenerator<ChunkRecord>) {
    const at = pos;
    pos += r.length;
    if (r.kind !== 'data') {
      if (r.kind === 'zero') {
        flush();
        enqueue({ kind: 'zero', length: r.length });
      }
    } else if (
      current?.kind === 'data' &&
      current.pack === r.pack &&
      current.end === r.offset &&
      r.offset + r.length - current.start <= rangeBytes
    ) {
      current.end += r.length;
      current.records.push({ length: r.length, offset: r.offset, sha256: r.sha256, at });
    } else {
      flush();
      current = {
        kind: 'data',
        pack: r.pack,
        start: r.offset,
        end: r.offset + r.length,
        records: [{ length: r.length, offset: r.offset, sha256: r.sha256, at }],
      };
    }
    yield* drainReady(concurrency);
  }
  flush();
  yield* drainReady(0);
}
