import { createHash } from 'node:crypto';
import type { Digest } from '@epoch/oci';
import type { RegistryClient } from '../client.js';
import type { PackList } from './pack-list.js';

/** What happened to the packs of a push. */
export interface PackStats {
  /** Packs uploaded by this push. */
  uploaded: number;
  /** Packs the registry had already (a retried push): not sent. */
  existing: number;
  /** Bytes of the uploaded packs. */
  bytesSent: number;
  /** Bytes of new chunks (in uploaded and existing packs). */
  newChunkBytes: number;
}

/** Where a new chunk went: a pack (its number in the {@link PackList}) and the offset there. */
export interface PackPlace {
  pack: number;
  offset: number;
}

/**
 * Groups a push's new chunks into packs of `packBytes` and uploads each sealed pack while the
 * next one fills (two buffers). A pack's digest is computed before it is sent, so the registry
 * is asked first and a pack it holds (from an interrupted earlier attempt) is not sent again.
 */
export class PackWriter {
  readonly stats: PackStats = { uploaded: 0, existing: 0, bytesSent: 0, newChunkBytes: 0 };
  readonly #client: RegistryClient;
  readonly #repository: string;
  readonly #list: PackList;
  readonly #packBytes: number;
  readonly #onPack: ((digest: Digest, how: string) => void) | undefined;
  #spare: Buffer | undefined;
  #buffer: Buffer | undefined;
  #used = 0;
  #pack = -1;
  #inflight: Promise<void> = Promise.resolve();

  constructor(
    client: RegistryClient,
    repository: string,
    list: PackList,
    packBytes: number,
    onPack?: (digest: Digest, how: string) => void,
  ) {
    this.#client = client;
    this.#repository = repository;
    this.#list = list;
    this.#packBytes = packBytes;
    this.#onPack = onPack;
  }

  /**
   * Stores a new chunk (copied); returns the pack number (in the list) and offset it got, or a
   * promise of them when the pack is full and must be sent first (backpressure). Synchronous
   * otherwise: a first push stores hundreds of thousands of chunks.
   */
  add(bytes: Buffer): PackPlace | Promise<PackPlace> {
    if (this.#buffer && this.#used + bytes.length > this.#packBytes) {
      return this.#seal().then(() => this.#put(bytes));
    }
    return this.#put(bytes);
  }

  #put(bytes: Buffer): PackPlace {
    if (!this.#buffer) {
      this.#buffer = this.#spare ?? Buffer.allocUnsafe(this.#packBytes);
      this.#spare = undefined;
      this.#used = 0;
      this.#pack = this.#list.pack(undefined, 0, this.#repository);
    }
    const offset = this.#used;
    bytes.copy(this.#buffer, offset);
    this.#used += bytes.length;
    this.stats.newChunkBytes += bytes.length;
    return { pack: this.#pack, offset };
  }

  /** Seals and uploads the last pack and waits for every upload. */
  async finish(): Promise<void> {
    if (this.#buffer && this.#used > 0) await this.#seal();
    await this.#inflight;
  }

  async #seal(): Promise<void> {
    const buffer = this.#buffer as Buffer;
    const bytes = buffer.subarray(0, this.#used);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
    this.#list.seal(this.#pack, digest, bytes.length);
    this.#buffer = undefined;
    // One upload in flight: the buffer being sent becomes the spare only once it is sent.
    await this.#inflight;
    this.#inflight = (async () => {
      const pushed = await this.#client.pushBlob(this.#repository, bytes, { digest });
      if (pushed.how === 'uploaded') {
        this.stats.uploaded++;
        this.stats.bytesSent += bytes.length;
      } else {
        this.stats.existing++;
      }
      this.#onPack?.(digest, pushed.how);
      this.#spare = buffer;
    })();
    // Surfaced by the next seal or finish; never an unhandled rejection meanwhile.
    this.#inflight.catch(() => {});
  }
}
