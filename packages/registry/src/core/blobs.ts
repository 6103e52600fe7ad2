import type { Readable } from 'node:stream';
import type { Digest } from '@epoch/oci';
import { BlobUnknownError } from '../errors.js';
import { ObjectNotFoundError } from '../storage/errors.js';
import type { ByteRange, ObjectStore } from '../storage/object-store.js';
import { Layout } from './layout.js';
import { readAll } from './streams.js';

/**
 * Content-addressed blobs, shared by every repository. Blobs are only ever created by a verified
 * upload (`Uploads`), never rewritten, and are read here. Which repository may see which blob is
 * decided above this layer (repository links in the index).
 */
export class Blobs {
  readonly #store: ObjectStore;

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  /** The blob's size, or `undefined` when no blob has this digest. */
  async stat(digest: Digest | string): Promise<{ digest: string; size: number } | undefined> {
    const info = await this.#store.stat(Layout.blob(digest));
    return info && { digest, size: info.size };
  }

  /** The blob's bytes, or `range` of them. Throws `BlobUnknownError` when there is no such blob. */
  async read(digest: Digest | string, range?: ByteRange): Promise<Readable> {
    try {
      return await this.#store.read(Layout.blob(digest), range);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BlobUnknownError(digest);
      throw err;
    }
  }

  /**
   * A small blob (a config document) whole, refusing more than `maxBytes`: only for blobs whose
   * size the caller bounds, never for layers.
   */
  async readSmall(digest: Digest | string, maxBytes: number): Promise<Uint8Array> {
    return readAll(await this.read(digest), maxBytes);
  }

  /** A presigned URL for the blob where the backend has them (S3), for redirecting clients. */
  presign(digest: Digest | string, expiresInSeconds: number): Promise<string | undefined> {
    return this.#store.presignGet(Layout.blob(digest), expiresInSeconds);
  }

  /** Deletes the blob from storage. Deleting a missing blob is not an error. */
  async delete(digest: Digest | string): Promise<void> {
    await this.#store.delete(Layout.blob(digest));
  }
}
