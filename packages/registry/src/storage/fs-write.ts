import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { bodyChunks } from './body.js';
import type { Body } from './object-store.js';

/** Bytes gathered before one write: large writes are what makes the disk fast. */
const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Direct I/O needs file offsets, lengths and memory aligned to the logical block size; 4 KiB covers 512 too. */
const DIRECT_ALIGNMENT = 4096;
/** Aligned buffers for direct writes, two per body being written: 16 bodies at once. */
const ALIGNED_BUFFERS = 32;
/** Bytes written between background `fdatasync` calls while a long body streams in (buffered I/O). */
const WRITEBACK_BYTES = 32 * 1024 * 1024;
/** Plain buffers kept for reuse when the aligned ones are all taken or direct I/O is off. */
const PLAIN_POOL_LIMIT = 16;

// The one WebAssembly API used here; the DOM lib that would declare it is not in this package's.
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
};

interface WriteBuffer {
  bytes: Buffer;
  /** Whether `bytes` starts on a `DIRECT_ALIGNMENT` boundary in memory. */
  aligned: boolean;
}

/** The free aligned buffers; `null` once creating them failed (no WebAssembly, say). */
let alignedFree: WriteBuffer[] | null | undefined;
const plainFree: WriteBuffer[] = [];

/**
 * The aligned buffers, carved from one WebAssembly memory: the only memory JavaScript can allocate
 * with a known alignment (its base is page-aligned). Created on first use; its pages become
 * resident only as buffers are used, lowest first, since the free list is a stack. `undefined`
 * where that memory cannot be had (`node --jitless` has no WebAssembly; a `ulimit -v` below the
 * ~10 GiB it reserves): writes are then buffered.
 */
function alignedBuffers(): WriteBuffer[] | undefined {
  if (alignedFree === undefined) {
    try {
      const memory = new WebAssembly.Memory({
        initial: (ALIGNED_BUFFERS * WRITE_BUFFER_BYTES) / 65536,
        maximum: (ALIGNED_BUFFERS * WRITE_BUFFER_BYTES) / 65536,
      });
      alignedFree = [];
      for (let i = ALIGNED_BUFFERS - 1; i >= 0; i--) {
        const bytes = Buffer.from(memory.buffer, i * WRITE_BUFFER_BYTES, WRITE_BUFFER_BYTES);
        alignedFree.push({ bytes, aligned: true });
      }
    } catch {
      alignedFree = null;
    }
  }
  return alignedFree ?? undefined;
}

function takeBuffer(direct: FileHandle | undefined): WriteBuffer {
  const aligned = direct ? alignedBuffers()?.pop() : undefined;
  return (
    aligned ??
    plainFree.pop() ?? { bytes: Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES), aligned: false }
  );
}

function returnBuffer(buffer: WriteBuffer): void {
  if (buffer.aligned) alignedBuffers()?.push(buffer);
  else if (plainFree.length < PLAIN_POOL_LIMIT) plainFree.push(buffer);
}

/**
 * A second handle on `fh`'s file, opened with `O_DIRECT`, or `undefined` where direct I/O is not
 * available (a filesystem that refuses it, a platform without it, no `/proc`, no aligned
 * buffers): writes are then buffered.
 */
async function openDirect(fh: FileHandle): Promise<FileHandle | undefined> {
  if (constants.O_DIRECT === undefined || !alignedBuffers()) return undefined;
  try {
    // Through /proc/self/fd: the same inode as `fh` whatever has happened to its path since.
    return await open(`/proc/self/fd/${fh.fd}`, constants.O_WRONLY | constants.O_DIRECT);
  } catch {
    return undefined;
  }
}

/** What `writeAt` checks while the body streams in. */
export interface WriteOptions {
  /** More bytes than this fail with `onOverflow()` as soon as they are seen. */
  max: number | undefined;
  onOverflow: (seen: number) => Error;
  signal: AbortSignal | undefined;
  /** Whether to write with direct I/O where the filesystem allows it (the default). */
  directIo?: boolean;
}

/**
 * Writes every chunk of `body` into `fh` at `position` onwards and returns the byte count. The
 * caller fsyncs.
 *
 * Chunks are copied into one of two reused 1 MiB buffers; a full buffer is written with one
 * `write` while the other fills, so the disk and the source overlap, and socket chunks become
 * garbage at once instead of waiting for their batch (held longer, with several uploads at once
 * they reach V8's old space, which only full collections free).
 *
 * Where the filesystem supports it the body is written with `O_DIRECT`, straight from the buffer
 * to the disk; only a head up to the first 4 KiB boundary of the file and a tail after the last
 * one go through the page cache. A multi-GiB upload then neither fills memory with dirty pages
 * nor pays for a copy into the page cache, which on a VM whose host backs guest memory lazily
 * was measured at thirty times the CPU of the direct write (bench/README.md).
 */
export async function writeAt(
  fh: FileHandle,
  body: Body,
  position: number,
  options: WriteOptions,
): Promise<number> {
  const writer = new BlockWriter(fh, options.directIo === false ? undefined : await openDirect(fh));
  const head = position % DIRECT_ALIGNMENT;
  let total = 0;
  let offset = position;
  let filling = takeBuffer(writer.direct);
  let fill = 0;
  // With direct I/O the first buffer ends on a 4 KiB boundary of the file, so every later one
  // starts on one.
  let capacity = writer.direct && head !== 0 ? DIRECT_ALIGNMENT - head : WRITE_BUFFER_BYTES;
  // The buffer of the write in flight, free again once `pending` settles.
  let writing: WriteBuffer | undefined;
  let pending: Promise<void> = Promise.resolve();
  // Background writeback of buffered writes: without it the kernel holds a whole multi-GiB body as
  // dirty pages and the final fsync pays for all of it at once. One datasync in flight at a time
  // keeps the disk busy while the network is still delivering bytes; errors surface at the
  // caller's fsync.
  let syncing: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    await pending;
    const full = filling;
    const length = fill;
    const at = offset;
    offset += length;
    filling = writing ?? takeBuffer(writer.direct);
    writing = full;
    fill = 0;
    capacity = WRITE_BUFFER_BYTES;
    pending = writer.write(full, length, at);
    // Observed on the next flush or at the end; this keeps an early failure from being unhandled.
    pending.catch(() => {});
    if (writer.unsynced >= WRITEBACK_BYTES) {
      writer.unsynced = 0;
      const written = pending;
      syncing = syncing.then(() => written.then(() => fh.datasync())).catch(() => {});
    }
  };
  try {
    for await (const chunk of bodyChunks(body, options.signal)) {
      total += chunk.byteLength;
      if (options.max !== undefined && total > options.max) throw options.onOverflow(total);
      for (let from = 0; from < chunk.byteLength; ) {
        const n = Math.min(chunk.byteLength - from, capacity - fill);
        filling.bytes.set(chunk.subarray(from, from + n), fill);
        fill += n;
        from += n;
        if (fill === capacity) await flush();
      }
    }
    if (fill > 0) await flush();
    await pending;
  } finally {
    // Never leave a write in flight behind a failure (the caller truncates or deletes next), nor
    // hand a buffer back to the pool while the kernel may still read from it.
    await pending.catch(() => {});
    await syncing;
    returnBuffer(filling);
    if (writing) returnBuffer(writing);
    // Closing the second handle cannot lose data (the caller fsyncs through `fh`), so its failure
    // must not hide the write's own outcome.
    await writer.close().catch(() => {});
  }
  return total;
}

/** Writes buffers into one file, directly where it can and through the page cache otherwise. */
class BlockWriter {
  /** Bytes written through the page cache and not yet handed to a background `fdatasync`. */
  unsynced = 0;

  constructor(
    private readonly fh: FileHandle,
    /** An `O_DIRECT` handle on the same file; dropped after a direct write fails. */
    public direct: FileHandle | undefined,
  ) {}

  /**
   * Writes the first `length` bytes of `buffer` at `position`: the part up to the last 4 KiB
   * boundary directly when that is possible, the rest through the page cache.
   */
  async write(buffer: WriteBuffer, length: number, position: number): Promise<void> {
    let done = 0;
    const direct = this.direct;
    if (direct && buffer.aligned && position % DIRECT_ALIGNMENT === 0) {
      const aligned = length - (length % DIRECT_ALIGNMENT);
      try {
        done = await writeFully(direct, buffer.bytes, 0, aligned, position);
      } catch {
        // A filesystem that takes O_DIRECT at open but refuses the write (EINVAL from some FUSE
        // and network filesystems): the same bytes go through the page cache, and so does the
        // rest of the body. A real I/O error recurs there and surfaces.
        this.direct = undefined;
        await direct.close().catch(() => {});
      }
    }
    await writeFully(this.fh, buffer.bytes, done, length - done, position + done);
    this.unsynced += length - done;
  }

  async close(): Promise<void> {
    await this.direct?.close();
    this.direct = undefined;
  }
}

/** Writes `length` bytes of `bytes` from `from`, resuming after short writes; resolves to `length`. */
async function writeFully(
  fh: FileHandle,
  bytes: Buffer,
  from: number,
  length: number,
  position: number,
): Promise<number> {
  for (let done = 0; done < length; ) {
    const { bytesWritten } = await fh.write(bytes, from + done, length - done, position + done);
    if (bytesWritten === 0) throw new Error(`write at ${position + done} made no progress`);
    done += bytesWritten;
  }
  return length;
}
