import type { Descriptor } from '@epoch/oci';
import type { ObjectStore } from '../storage/object-store.js';
import { Layout } from './layout.js';
import { readAll } from './streams.js';

const DESCRIPTOR_LIMIT = 1 << 20;

/**
 * The referrers of each subject digest, kept as one small descriptor object per referring
 * manifest (`_referrers/<subject>/<referrer>.json`), written when a manifest with a `subject` is
 * pushed and removed when it is deleted.
 */
export class Referrers {
  readonly #store: ObjectStore;

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  async add(repository: string, subject: string, descriptor: Descriptor): Promise<void> {
    await this.#store.put(
      Layout.referrer(repository, subject, descriptor.digest),
      JSON.stringify(descriptor),
      { contentType: 'application/json' },
    );
  }

  async remove(repository: string, subject: string, digest: string): Promise<void> {
    await this.#store.delete(Layout.referrer(repository, subject, digest));
  }

  /** Descriptors of every manifest in `repository` whose subject is `subject`. */
  async list(repository: string, subject: string): Promise<Descriptor[]> {
    const prefix = Layout.referrers(repository, subject);
    const descriptors: Descriptor[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#store.list(prefix, cursor ? { cursor } : {});
      for (const object of page.objects) {
        const bytes = await readAll(await this.#store.read(object.key), DESCRIPTOR_LIMIT).catch(
          () => undefined,
        );
        if (bytes) descriptors.push(JSON.parse(Buffer.from(bytes).toString('utf8')) as Descriptor);
      }
      cursor = page.cursor;
    } while (cursor);
    return descriptors;
  }
}
