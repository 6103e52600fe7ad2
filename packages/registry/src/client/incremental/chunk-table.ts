/**
 * Where a known chunk lives: a byte range of a source, a number its owner gives meaning to (the
 * push: a pack of its {@link PackList}; the puller: a cached file).
 */
export interface ChunkLocation {
  source: number;
  /** Below 2^48. */
  offset: number;
  length: number;
}

// 32 sha256 + u32 source+1 + u32 offset (low) + u32 length + u16 offset (high) + 2 spare
const SLOT = 48;
const SHARDS = 256; // by the sha256's first byte
const MIN_SHARD_SLOTS = 16;

/** One open-addressed buffer of slots (linear probing), for the chunks whose sha256 starts alike. */
interface Shard {
  slots: Buffer;
  /** Number of slots. */
  size: number;
  count: number;
}

/**
 * sha256 → where the chunk is, in open-addressed buffers instead of a Map of strings: 48 bytes a
 * chunk instead of ~200, so the chunks of several versions of a multi-GiB memory file fit the
 * client's budget. The table is cut into 256 shards by the sha256's first byte, each growing on
 * its own: one buffer growing would need its old and new copies at once (24 MiB more at a
 * million slots) at the moment memory is fullest. Growth stops at `maxBytes`; a full shard
 * refuses new entries (`add` returns false), which costs deduplication, never correctness.
 */
export class ChunkTable {
  readonly #maxShardSlots: number;
  readonly #shards: Shard[];
  #count = 0;

  /** @param maxBytes - memory the table may take (default 96 MiB, ~1.5 million chunks) */
  constructor(maxBytes = 96 * 1024 * 1024) {
    this.#maxShardSlots = Math.max(MIN_SHARD_SLOTS, Math.floor(maxBytes / (SLOT * SHARDS)));
    this.#shards = Array.from({ length: SHARDS }, () => ({
      slots: Buffer.alloc(MIN_SHARD_SLOTS * SLOT),
      size: MIN_SHARD_SLOTS,
      count: 0,
    }));
  }

  /** Number of chunks held. */
  get size(): number {
    return this.#count;
  }

  /** Where the chunk with this sha256 is, if known. */
  get(sha256: Uint8Array): ChunkLocation | undefined {
    const out = { source: 0, offset: 0, length: 0 };
    return this.lookup(sha256, out) ? out : undefined;
  }

  /**
   * Like {@link get}, into `out` (whether it is known): no object per lookup, for a push that
   * looks up every chunk of a multi-GiB file.
   */
  lookup(sha256: Uint8Array, out: ChunkLocation): boolean {
    const shard = this.#shard(sha256);
    const at = find(shard.slots, shard.size, sha256);
    const sourcePlusOne = shard.slots.readUInt32LE(at + 32);
    if (sourcePlusOne === 0) return false;
    out.source = sourcePlusOne - 1;
    out.offset = shard.slots.readUInt16LE(at + 44) * 2 ** 32 + shard.slots.readUInt32LE(at + 36);
    out.length = shard.slots.readUInt32LE(at + 40);
    return true;
  }

  /** Whether the chunk with this sha256 is known. */
  has(sha256: Uint8Array): boolean {
    const shard = this.#shard(sha256);
    return shard.slots.readUInt32LE(find(shard.slots, shard.size, sha256) + 32) !== 0;
  }

  /** Adds a chunk unless known; false when the table is full (the chunk is then not recorded). */
  add(sha256: Uint8Array, location: ChunkLocation): boolean {
    const shard = this.#shard(sha256);
    if (!(location.offset < 2 ** 48)) throw new RangeError('a chunk offset must be below 2^48');
    // Grown by half at 80% full (doubling would leave a table just past a power of two half
    // empty: 24 MiB more at the bench's 470,000 chunks); full at 90% of `maxBytes`.
    if ((shard.count + 1) * 10 > shard.size * 8) {
      if (shard.size < this.#maxShardSlots) grow(shard, this.#maxShardSlots);
      else if ((shard.count + 1) * 10 > shard.size * 9) return false;
    }
    const at = find(shard.slots, shard.size, sha256);
    if (shard.slots.readUInt32LE(at + 32) !== 0) return true;
    shard.slots.set(sha256, at);
    shard.slots.writeUInt32LE(location.source + 1, at + 32);
    shard.slots.writeUInt32LE(location.offset % 2 ** 32, at + 36);
    shard.slots.writeUInt32LE(location.length, at + 40);
    shard.slots.writeUInt16LE(Math.floor(location.offset / 2 ** 32), at + 44);
    shard.count++;
    this.#count++;
    return true;
  }

  #shard(sha256: Uint8Array): Shard {
    if (sha256.length !== 32) throw new RangeError('a chunk table key is a 32-byte sha256');
    return this.#shards[sha256[0] as number] as Shard;
  }
}

/** The slot holding `sha256`, or the empty slot where it would go. */
function find(slots: Buffer, size: number, sha256: Uint8Array): number {
  // sha256 is uniform: bytes 1–4 (the first picked the shard) are as good a hash as any.
  let i =
    (((sha256[1] as number) |
      ((sha256[2] as number) << 8) |
      ((sha256[3] as number) << 16) |
      ((sha256[4] as number) << 24)) >>>
      0) %
    size;
  for (;;) {
    const at = i * SLOT;
    if (slots.readUInt32LE(at + 32) === 0) return at;
    if (slots.compare(sha256, 0, 32, at, at + 32) === 0) return at;
    i = i + 1 === size ? 0 : i + 1;
  }
}

function grow(shard: Shard, max: number): void {
  const size = Math.min(max, Math.ceil(shard.size * 1.5));
  const slots = Buffer.alloc(size * SLOT);
  for (let at = 0; at < shard.slots.length; at += SLOT) {
    if (shard.slots.readUInt32LE(at + 32) === 0) continue;
    const to = find(slots, size, shard.slots.subarray(at, at + 32));
    shard.slots.copy(slots, to, at, at + SLOT);
  }
  shard.slots = slots;
  shard.size = size;
}
