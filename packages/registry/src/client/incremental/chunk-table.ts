import type { Digest } from '@epoch/oci';

/** Where a known chunk lives: a pack (by its number in the table) and a byte range of it. */
export interface ChunkLocation {
  pack: number;
  offset: number;
  length: number;
}

/** A pack a table entry points into, and the repository it can be read from. */
export interface KnownPack {
  /** Digest, or `undefined` while the pack is still being filled by this push. */
  digest: Digest | undefined;
  size: number;
  /** Repository the pack is linked to (the push target, or a base to mount from). */
  repository: string;
}

const SLOT = 48; // 32 sha256 + u32 pack+1 + u32 offset + u32 length + 4 spare
const MIN_SLOTS = 1 << 12;

/**
 * sha256 → chunk location, in one open-addressed buffer instead of a Map of strings: 48 bytes a
 * chunk instead of ~200, so the chunks of several versions of a multi-GiB memory file fit the
 * client's budget. It grows by doubling up to `maxBytes`; once full it refuses new entries
 * (`add` returns false), which costs deduplication, never correctness.
 */
export class ChunkTable {
  readonly #maxSlots: number;
  #slots: Buffer;
  #mask: number;
  #count = 0;
  readonly packs: KnownPack[] = [];
  readonly #packIds = new Map<string, number>();

  /** @param maxBytes - memory the table may take (default 96 MiB, ~1.5 million chunks) */
  constructor(maxBytes = 96 * 1024 * 1024) {
    let max = MIN_SLOTS;
    while (max * 2 * SLOT <= maxBytes) max *= 2;
    this.#maxSlots = max;
    this.#slots = Buffer.alloc(MIN_SLOTS * SLOT);
    this.#mask = MIN_SLOTS - 1;
  }

  /** Number of chunks held. */
  get size(): number {
    return this.#count;
  }

  /** The number of a pack, registering it the first time (`digest` undefined: not sealed yet). */
  pack(digest: Digest | undefined, size: number, repository: string): number {
    if (digest !== undefined) {
      const known = this.#packIds.get(digest);
      if (known !== undefined) return known;
      this.#packIds.set(digest, this.packs.length);
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
    if (!this.#packIds.has(digest)) this.#packIds.set(digest, pack);
  }

  /** Where the chunk with this sha256 is, if known. */
  get(sha256: Uint8Array): ChunkLocation | undefined {
    const at = this.#find(this.#slots, this.#mask, sha256);
    const packPlusOne = this.#slots.readUInt32LE(at + 32);
    if (packPlusOne === 0) return undefined;
    return {
      pack: packPlusOne - 1,
      offset: this.#slots.readUInt32LE(at + 36),
      length: this.#slots.readUInt32LE(at + 40),
    };
  }

  /** Adds a chunk unless known; false when the table is full (the chunk is then not recorded). */
  add(sha256: Uint8Array, location: ChunkLocation): boolean {
    if ((this.#count + 1) * 10 > (this.#mask + 1) * 7) {
      if (this.#mask + 1 >= this.#maxSlots) {
        if ((this.#count + 1) * 10 > (this.#mask + 1) * 9) return false;
      } else {
        this.#grow();
      }
    }
    const at = this.#find(this.#slots, this.#mask, sha256);
    if (this.#slots.readUInt32LE(at + 32) !== 0) return true;
    this.#slots.set(sha256, at);
    this.#slots.writeUInt32LE(location.pack + 1, at + 32);
    this.#slots.writeUInt32LE(location.offset, at + 36);
    this.#slots.writeUInt32LE(location.length, at + 40);
    this.#count++;
    return true;
  }

  #find(slots: Buffer, mask: number, sha256: Uint8Array): number {
    // sha256 is uniform: its first four bytes are as good a hash as any.
    let i =
      ((sha256[0] ?? 0) |
        ((sha256[1] ?? 0) << 8) |
        ((sha256[2] ?? 0) << 16) |
        ((sha256[3] ?? 0) << 24)) &
      mask;
    for (;;) {
      const at = i * SLOT;
      if (slots.readUInt32LE(at + 32) === 0) return at;
      if (slots.compare(sha256, 0, 32, at, at + 32) === 0) return at;
      i = (i + 1) & mask;
    }
  }

  #grow(): void {
    const slots = Buffer.alloc(this.#slots.length * 2);
    const mask = slots.length / SLOT - 1;
    for (let at = 0; at < this.#slots.length; at += SLOT) {
      if (this.#slots.readUInt32LE(at + 32) === 0) continue;
      const to = this.#find(slots, mask, this.#slots.subarray(at, at + 32));
      this.#slots.copy(slots, to, at, at + SLOT);
    }
    this.#slots = slots;
    this.#mask = mask;
  }
}
