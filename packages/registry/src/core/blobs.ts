import type { Readable } from 'node:stream';
import type { Digest } from '@epoch/oci';
import { BlobUnknownError } from '../errors.js';
import { ObjectNotFoundError } from '../storage/errors.js';
import type { ByteRange, ObjectStore } from '../storage/object-store.js';
import { Layout } from './layout.js';
import type { Links } from './links.js';
import { readAll } from './streams.js';

/** A blob as one repository may see it. */
export interface BlobInfo {
  digest: string;
  size: number;
}

/**
 * Content-addressed blobs, stored once for every repository and read only through one gate.
 *
 * Blobs are shared, so "the blob exists" must never be taken for "this repository may read it":
 * every read (`stat`, `read`, `readSmall`, `presign`) names the repository it is made for and is
 * answered only when the blob is linked there (pushed to it or mounted into it, see `Links`).
 * A blob that exists only for other repositories is indistinguishable from one that does not
 * exist. No other code path in the registry hands out blob bytes, so a route, a download or a
 * detail page cannot forget the check: it has no way to read without it.
 *
 * Storage maintenance (reconcile, GC) uses {@link storedSize} and {@link delete}, which serve
 * no client.
 */
export class Blobs {
  readonly #store: ObjectStore;
  readonly #links: Links;

  constructor(store: ObjectStore, links: Links) {
    this.#store = store;
    this.#links = links;
  }

  /**
   * The blob as `repository` sees it: its size when it is linked there and stored, `undefined`
   * otherwise (unknown, not linked, or linked but gone).
   */
  async stat(repository: string, digest: Digest | string): Promise<BlobInfo | undefined> {
    if (!(await this.#links.has(repository, digest))) return undefined;
    return this.#statStored(digest);
  }

  /**
   * The blob's bytes, or `range` of them, for `repository`. Throws `BlobUnknownError` when the
   * blob is not linked to `repository` or not stored.
   */
  async read(repository: string, digest: Digest | string, range?: ByteRange): Promise<Readable> {
    if (!(await this.#links.has(repository, digest))) throw new BlobUnknownError(digest);
    try {
      return await this.#store.read(Layout.blob(digest), range);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BlobUnknownError(digest);
      throw err;
    }
  }

  /**
   * A small blob (a config document) whole, for `repository`, refusing more than `maxBytes`:
   * only for blobs whose size the caller bounds, never for layers.
   */
  async readSmall(
    repository: string,
    digest: Digest | string,
    maxBytes: number,
  ): Promise<Uint8Array> {
    return readAll(await this.read(repository, digest), maxBytes);
  }

  /**
   * A presigned URL for the blob where the backend has them (S3), for redirecting a client of
   * `repository`; `undefined` when the backend has none. Throws `BlobUnknownError` like `read`.
   */
  async presign(
    repository: string,
    digest: Digest | string,
    expiresInSeconds: number,
  ): Promise<string | undefined> {
    if (!(await this.#links.has(repository, digest))) throw new BlobUnknownError(digest);
    return this.#store.presignGet(Layout.blob(digest), expiresInSeconds);
  }

  /**
   * The stored size of a blob whatever links it, or `undefined`: for storage maintenance only
   * (reconcile, GC), never to answer a client.
   */
  storedSize(digest: Digest | string): Promise<number | undefined> {
    return this.#statStored(digest).then((info) => info?.size);
  }

  /** Deletes the blob from storage. Deleting a missing blob is not an error. */
  async delete(digest: Digest | string): Promise<void> {
    await this.#store.delete(Layout.blob(digest));
  }

  async #statStored(digest: Digest | string): Promise<BlobInfo | undefined> {
    const info = await this.#store.stat(Layout.blob(digest));
    return info && { digest, size: info.size };
  }
}
