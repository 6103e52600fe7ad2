import { StorageError } from '../errors.js';
import { MAX_PARTS, partSizeFor } from './parts.js';
import type { Part } from './staged-state.js';

/**
 * Cuts a stream into parts and uploads up to `concurrency` of them at once. Each part is one
 * buffer of `partSizeFor(partNumber)` bytes, so memory is bounded by `concurrency + 1` parts.
 */
export class PartWriter {
  /** Parts uploaded so far, in part-number order after `finish`. */
  readonly parts: Part[] = [];
  nextPart: number;
  private buffer: Buffer | undefined;
  private filled = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  /**
   * Part buffers whose upload has finished, for reuse: allocating a fresh 10–80 MiB buffer per
   * part leaves the freed ones to the garbage collector's timing and lets RSS climb far above the
   * `concurrency + 1` buffers actually in use.
   */
  private readonly spare: Buffer[] = [];
  private readonly owned = new WeakSet<Buffer>();

  constructor(
    private readonly upload: (partNumber: number, bytes: Buffer) => Promise<string>,
    firstPart: number,
    private readonly concurrency: number,
  ) {
    this.nextPart = firstPart;
  }

  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      if (this.buffer === undefined) {
        this.buffer = this.allocate(partSizeFor(this.nextPart));
        this.filled = 0;
      }
      const n = Math.min(chunk.byteLength - offset, this.buffer.length - this.filled);
      this.buffer.set(chunk.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.buffer.length) {
        const full = this.buffer;
        this.buffer = undefined;
        await this.dispatch(full);
      }
    }
  }

  /** Starts uploading `bytes` as the next part once a slot is free. */
  async dispatch(bytes: Buffer): Promise<void> {
    this.throwIfFailed();
    while (this.inFlight.size >= this.concurrency) {
      await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
    const partNumber = this.nextPart++;
    if (partNumber > MAX_PARTS) {
      throw new StorageError(`object needs more than S3's ${MAX_PARTS} parts`);
    }
    const task: Promise<void> = this.upload(partNumber, bytes)
      .then(
        (etag) => {
          this.parts.push({ partNumber, etag, size: bytes.byteLength });
        },
        (error: unknown) => {
          this.failure ??= { error };
        },
      )
      .finally(() => {
        // The request is over (retries included), so nothing reads the buffer any more.
        if (this.owned.has(bytes)) this.spare.push(bytes);
      });
    const tracked = task.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private allocate(size: number): Buffer {
    const i = this.spare.findIndex((b) => b.length === size);
    if (i >= 0) return this.spare.splice(i, 1)[0] ?? Buffer.allocUnsafe(size);
    const buffer = Buffer.allocUnsafe(size);
    this.owned.add(buffer);
    return buffer;
  }

  /** Waits for the parts in flight and returns the bytes not yet uploaded (under one part). */
  async finish(): Promise<Buffer> {
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    const rest = this.buffer ? this.buffer.subarray(0, this.filled) : Buffer.alloc(0);
    this.buffer = undefined;
    this.filled = 0;
    this.parts.sort((a, b) => a.partNumber - b.partNumber);
    return rest;
  }

  /** Waits for the parts in flight, ignoring failures: the error path's cleanup. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    this.buffer = undefined;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
