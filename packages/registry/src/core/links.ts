import type { ObjectStore } from '../storage/object-store.js';
import { Layout } from './layout.js';

/**
 * Which blobs each repository may serve (design invariant 6). Blobs are stored once for all
 * repositories, so "the blob exists" must never be taken for "this repository may read it": a
 * blob is linked when it was pushed to or mounted into the repository. The link is an empty
 * marker object beside the repository's manifests, so the bucket alone is enough to rebuild it.
 */
export class Links {
  readonly #store: ObjectStore;

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  async add(repository: string, digest: string): Promise<void> {
    await this.#store.put(Layout.link(repository, digest), '', { ifAbsent: true });
  }

  async has(repository: string, digest: string): Promise<boolean> {
    return (await this.#store.stat(Layout.link(repository, digest))) !== undefined;
  }

  async remove(repository: string, digest: string): Promise<void> {
    await this.#store.delete(Layout.link(repository, digest));
  }
}
