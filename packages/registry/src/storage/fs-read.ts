import { close as fsClose, read as fsRead } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { StorageError } from './errors.js';

/** Read chunk size when the stream is consumed as a stream: 1 MiB keeps per-chunk cost small. */
const READ_HIGH_WATER_MARK = 1024 * 1024;
/** Buffer size and count for `sendTo`: one buffer is read while the other drains to the socket. */
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;
const SEND_IN_FLIGHT = 2;
/** Send buffers kept for reuse between responses (32 MiB at most). */
const POOL_LIMIT = 8;

const pool: Buffer[] = [];

/**
 * Exactly `count` bytes of an open file from `start`, read positionally. A file that turns out
 * shorter errors the stream instead of ending it: one stream, no extra length-check hop.
 *
 * Consumed as a stream it reads 1 MiB chunks. `sendTo` is the fast way to a socket: see there.
 */
export class FileRangeStream extends Readable {
  #position: number;
  #remaining: number;

  constructor(
    private readonly fd: number,
    start: number,
    count: number,
    private readonly key: string,
    private readonly path: string,
    private readonly toError: (err: unknown) => Error,
  ) {
    super({ highWaterMark: READ_HIGH_WATER_MARK });
    this.#position = start;
    this.#remaining = count;
  }

  /** Whether `sendTo` may still be used: nothing has been read through the stream interface. */
  get canSend(): boolean {
    return this.readableFlowing === null && !this.readableDidRead && !this.destroyed;
  }

  /**
   * Writes the remaining bytes into `destination` (an HTTP response, say), ends it and resolves
   * once it has finished; closes the file either way. Reads go into a few large buffers reused
   * from a pool, each taken back only when the destination's write callback says the socket is
   * done with it: no allocation and no garbage per chunk, which is most of what a stream costs
   * at GB/s. Rejects, leaving `destination` to the caller, when the destination errors or closes
   * early or the file is shorter than promised.
   */
  sendTo(destination: Writable): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let reading = false;
      let inFlight = 0;
      let done = false;
      let ending = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        destination.off('error', onError);
        destination.off('close', onClose);
        destination.off('finish', onFinish);
        this.destroy();
        if (err) reject(err);
        else resolve();
      };
      const onError = (err: Error): void => finish(err);
      const onClose = (): void => {
        if (!destination.writableFinished) finish(new StorageError('destination closed early'));
      };
      const onFinish = (): void => finish();
      destination.on('error', onError);
      destination.on('close', onClose);
      destination.on('finish', onFinish);

      const pump = (): void => {
        if (done || reading || ending) return;
        if (this.#remaining === 0) {
          ending = true;
          destination.end();
          return;
        }
        if (inFlight >= SEND_IN_FLIGHT) return;
        reading = true;
        const buffer = pool.pop() ?? Buffer.allocUnsafeSlow(SEND_BUFFER_BYTES);
        const size = Math.min(SEND_BUFFER_BYTES, this.#remaining);
        fsRead(this.fd, buffer, 0, size, this.#position, (err, bytesRead) => {
          reading = false;
          if (done) {
            giveBack(buffer);
            return;
          }
          if (err) {
            giveBack(buffer);
            finish(this.toError(err));
            return;
          }
          if (bytesRead === 0) {
            giveBack(buffer);
            finish(this.shortRead());
            return;
          }
          this.#position += bytesRead;
          this.#remaining -= bytesRead;
          inFlight++;
          destination.write(buffer.subarray(0, bytesRead), (writeErr) => {
            inFlight--;
            // After a failed write the socket may not be done with the buffer: let GC have it.
            if (writeErr) {
              finish(writeErr);
              return;
            }
            giveBack(buffer);
            pump();
          });
          pump();
        });
      };
      pump();
    });
  }

  override _read(): void {
    const size = Math.min(READ_HIGH_WATER_MARK, this.#remaining);
    const buffer = Buffer.allocUnsafe(size);
    fsRead(this.fd, buffer, 0, size, this.#position, (err, bytesRead) => {
      if (err) {
        this.destroy(this.toError(err));
        return;
      }
      if (bytesRead === 0) {
        this.destroy(this.shortRead());
        return;
      }
      this.#position += bytesRead;
      this.#remaining -= bytesRead;
      this.push(bytesRead === size ? buffer : buffer.subarray(0, bytesRead));
      if (this.#remaining === 0) this.push(null);
    });
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    fsClose(this.fd, () => callback(err));
  }

  private shortRead(): StorageError {
    return new StorageError(
      `read of ${this.key} (${this.path}) ended ${this.#remaining} bytes early`,
    );
  }
}

function giveBack(buffer: Buffer): void {
  if (pool.length < POOL_LIMIT) pool.push(buffer);
}
