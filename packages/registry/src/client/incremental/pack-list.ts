import type { Digest } from '@epoch/oci';

/** A pack a push's chunks may point into, and the repository it can be read from. */
export interface KnownPack {
  /** Digest, or `undefined` while the pack is still being filled by this push. */
  digest: Digest | undefined;
  size: number;
  /** Repository the pack is linked to (the push target, or a base to mount from). */
  repository: string;
}

/**
 * The packs a push knows, numbered for its {@link ChunkTable} (a location's `source`): those of
 * earlier versions and bases, once each by digest, and those the push fills.
 */
export class PackList {
  readonly packs: KnownPack[] = [];
  readonly #ids = new Map<string, number>();

  /** The number of a pack, registering it the first time (`digest` undefined: not sealed yet). */
  pack(digest: Digest | undefined, size: number, repository: string): number {
    if (digest !== undefined) {
      const known = this.#ids.get(digest);
      if (known !== undefined) return known;
      this.#ids.set(digest, this.packs.length);
    }
    this.packs.push({ digest, size, repository });
    return this.packs.length - 1;
  }

  /** Records the digest and size of a pack registered while it was being filled. */
  seal(pack: number, digest: Digest, size: number): void {
    const p = this.packs[pack];
    if (!p) throw new RangeError(`no pack ${pack}`);
    p.digest = digest;
    p.size = size;
    if (!this.#ids.has(digest)) this.#ids.set(digest, pack);
  }
}
