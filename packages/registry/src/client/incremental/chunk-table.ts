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

// A slot is 12 little-endian u32 words: the sha256 (8), source+1 (0: empty), offset's low 32
// bits, length, offset's high 16 bits. Keys are compared word by word in JS: a probe that
// meets another chunk's slot almost always differs at the first word, and a call into C++ per
// probe (Buffer.compare) cost more than the hashing of a lookup.
const WORDS = 12;
const SOURCE = 8;
const OFFSET_LOW = 9;
const LENGTH = 10;
const OFFSET_HIGH = 11;
const SHARDS = 256; // by the sha256's first byte
const MIN_SHARD_SLOTS = 16;
/** Grown (or reserved) to stay at most this full. */
const LOAD = 0.8;

const SLOT_BYTES = WORDS * 4;

/** The buffer a reservation moved shards into, held as long as one of them is still there. */
interface Slab {
  bytes: number;
  members: number;
}

/** One open-addressed array of slots (linear probing), for the chunks whose sha256 starts alike. */
interface Shard {
  slots: Uint32Array;
  /** Number of slots. */
  size: number;
  count: number;
  /** The reservation's buffer `slots` is part of; none when the shard has an array of its own. */
  slab: Slab | undefined;
}

/**
 * sha256 → where the chunk is, in open-addressed typed arrays instead of a Map of strings: 48
 * bytes a chunk instead of ~200, so the chunks of several versions of a multi-GiB memory file
 * fit the client's budget. The table is cut into 256 shards by the sha256's first byte, each
 * growing on its own: one array growing would need its old and new copies at once (24 MiB more
 * at a million slots) at the moment memory is fullest. The arrays it holds (a reservation's
 * buffer counted whole while any shard is in it) stay within `maxBytes`; a shard that may not
 * grow refuses new entries once 90% full (`add` returns false), which costs deduplication,
 * never correctness.
 *
 * Every method takes its key as 32 bytes at `at` of a buffer (default 0), so a reader can pass
 * a record of an index page in place.
 */
export class ChunkTable {
  readonly #maxBytes: number;
  readonly #maxShardSlots: number;
  readonly #shards: Shard[];
  #count = 0;
  /** Bytes of the arrays the shards are in. */
  #bytes = SHARDS * MIN_SHARD_SLOTS * SLOT_BYTES;
  /** The key being looked up or added, as words (no allocation per call). */
  readonly #key = new Uint32Array(8);

  /** @param maxBytes - memory the table may take (default 96 MiB, ~1.5 million chunks) */
  constructor(maxBytes = 96 * 1024 * 1024) {
    this.#maxBytes = Math.max(maxBytes, this.#bytes);
    this.#maxShardSlots = Math.max(MIN_SHARD_SLOTS, Math.floor(maxBytes / (SLOT_BYTES * SHARDS)));
    this.#shards = Array.from({ length: SHARDS }, () => ({
      slots: new Uint32Array(MIN_SHARD_SLOTS * WORDS),
      size: MIN_SHARD_SLOTS,
      count: 0,
      slab: undefined,
    }));
  }

  /** Number of chunks held. */
  get size(): number {
    return this.#count;
  }

  /** Bytes of the arrays the table holds (at most `maxBytes`). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Makes room for `more` chunks beyond those held at once, instead of growing a step at a time
   * while they are added: an index announces how many records it has. The shards that must
   * grow by half or more move into one new buffer: V8 answered a few hundred separate buffers
   * of ~100 KiB, made after start-up, with a full collection every ~25 MiB that a stream read
   * (a hundred on a memory image; one buffer of the same size, none). A shard that later
   * outgrows its part moves out on its own. Nothing is reserved when the new buffer, counted
   * beside everything held, would pass `maxBytes` (or cannot be had): the table then grows as
   * chunks come.
   */
  reserve(more: number): void {
    const perShard = (this.#count + Math.max(0, more)) / SHARDS;
    // sha256 spreads keys evenly, but not exactly: 10% and a few slots of slack per shard.
    const want = Math.min(this.#maxShardSlots, Math.ceil((perShard * 1.1 + 8) / LOAD));
    const growing = this.#shards.filter((shard) => shard.size * 1.5 <= want);
    if (growing.length === 0) return;
    const bytes = growing.length * want * SLOT_BYTES;
    // The arrays left behind are freed only after the moves: count them until then.
    if (this.#bytes + bytes > this.#maxBytes) return;
    let buffer: Uint32Array;
    try {
      buffer = new Uint32Array(bytes / 4);
    } catch {
      return;
    }
    const slab: Slab = { bytes, members: 0 };
    this.#bytes += bytes;
    growing.forEach((shard, i) => {
      this.#leave(shard);
      rehash(shard, buffer.subarray(i * want * WORDS, (i + 1) * want * WORDS), want);
      shard.slab = slab;
      slab.members++;
    });
  }

  /** Where the chunk with this sha256 is, if known. */
  get(sha256: Uint8Array, at = 0): ChunkLocation | undefined {
    const out = { source: 0, offset: 0, length: 0 };
    return this.lookup(sha256, out, at) ? out : undefined;
  }

  /**
   * Like {@link get}, into `out` (whether it is known): no object per lookup, for a push that
   * looks up every chunk of a multi-GiB file.
   */
  lookup(sha256: Uint8Array, out: ChunkLocation, at = 0): boolean {
    const shard = this.#shard(sha256, at);
    const slot = find(shard.slots, shard.size, this.#key);
    const { slots } = shard;
    const sourcePlusOne = slots[slot + SOURCE] as number;
    if (sourcePlusOne === 0) return false;
    out.source = sourcePlusOne - 1;
    out.offset =
      (slots[slot + OFFSET_HIGH] as number) * 2 ** 32 + (slots[slot + OFFSET_LOW] as number);
    out.length = slots[slot + LENGTH] as number;
    return true;
  }

  /** Whether the chunk with this sha256 is known. */
  has(sha256: Uint8Array, at = 0): boolean {
    const shard = this.#shard(sha256, at);
    return shard.slots[find(shard.slots, shard.size, this.#key) + SOURCE] !== 0;
  }

  /** Adds a chunk unless known; false when the table is full (the chunk is then not recorded). */
  add(sha256: Uint8Array, location: ChunkLocation, at = 0): boolean {
    const { source, offset, length } = location;
    if (!(Number.isInteger(offset) && offset >= 0 && offset < 2 ** 48)) {
      throw new RangeError('a chunk offset must be an integer from 0 to below 2^48');
    }
    if (!(Number.isInteger(source) && source >= 0 && source < 2 ** 32 - 1)) {
      throw new RangeError('a chunk source must be an integer from 0 to below 2^32 - 1');
    }
    if (!(Number.isInteger(length) && length >= 0 && length < 2 ** 32)) {
      throw new RangeError('a chunk length must be an integer from 0 to below 2^32');
    }
    const shard = this.#shard(sha256, at);
    // Grown by half at 80% full (doubling would leave a table just past a power of two half
    // empty: 24 MiB more at the bench's 470,000 chunks); full at 90% once it may not grow.
    if (shard.count + 1 > shard.size * LOAD && !this.#grow(shard)) {
      if ((shard.count + 1) * 10 > shard.size * 9) return false;
    }
    const { slots } = shard;
    const slot = find(slots, shard.size, this.#key);
    if (slots[slot + SOURCE] !== 0) return true;
    slots.set(this.#key, slot);
    slots[slot + SOURCE] = source + 1;
    slots[slot + OFFSET_LOW] = offset % 2 ** 32;
    slots[slot + LENGTH] = length;
    slots[slot + OFFSET_HIGH] = Math.floor(offset / 2 ** 32);
    shard.count++;
    this.#count++;
    return true;
  }

  /** Grows a shard by half, into an array of its own, if its cap and `maxBytes` allow. */
  #grow(shard: Shard): boolean {
    const size = Math.min(this.#maxShardSlots, Math.ceil(shard.size * 1.5));
    if (size <= shard.size) return false;
    const own = shard.slab ? 0 : shard.size * SLOT_BYTES;
    if (this.#bytes - own + size * SLOT_BYTES > this.#maxBytes) return false;
    this.#bytes += size * SLOT_BYTES;
    this.#leave(shard);
    rehash(shard, new Uint32Array(size * WORDS), size);
    return true;
  }

  /** Stops counting the array a shard is about to leave (a slab once its last shard left). */
  #leave(shard: Shard): void {
    const { slab } = shard;
    if (!slab) {
      this.#bytes -= shard.size * SLOT_BYTES;
      return;
    }
    shard.slab = undefined;
    slab.members--;
    if (slab.members === 0) this.#bytes -= slab.bytes;
  }

  /** The key's shard, its words read into {@link #key}. */
  #shard(sha256: Uint8Array, at: number): Shard {
    if (!(Number.isInteger(at) && at >= 0 && at + 32 <= sha256.length)) {
      throw new RangeError('a chunk table key is a 32-byte sha256');
    }
    const key = this.#key;
    for (let w = 0; w < 8; w++) {
      const b = at + w * 4;
      key[w] =
        ((sha256[b] as number) |
          ((sha256[b + 1] as number) << 8) |
          ((sha256[b + 2] as number) << 16) |
          ((sha256[b + 3] as number) << 24)) >>>
        0;
    }
    return this.#shards[sha256[at] as number] as Shard;
  }
}

/** The first word of the slot holding `key`, or of the empty slot where it would go. */
function find(slots: Uint32Array, size: number, key: Uint32Array): number {
  // sha256 is uniform: its second word is as good a hash as any (the first picked the shard).
  const k0 = key[0] as number;
  const k1 = key[1] as number;
  let i = k1 % size;
  for (;;) {
    const slot = i * WORDS;
    if (slots[slot + SOURCE] === 0) return slot;
    if (slots[slot] === k0 && slots[slot + 1] === k1 && sameTail(slots, slot, key)) return slot;
    i = i + 1 === size ? 0 : i + 1;
  }
}

function sameTail(slots: Uint32Array, slot: number, key: Uint32Array): boolean {
  for (let w = 2; w < 8; w++) if (slots[slot + w] !== key[w]) return false;
  return true;
}

/** Moves a shard's chunks into `slots` (empty, `size` slots). */
function rehash(shard: Shard, slots: Uint32Array, size: number): void {
  const old = shard.slots;
  const key = new Uint32Array(8);
  for (let from = 0; from < old.length; from += WORDS) {
    if (old[from + SOURCE] === 0) continue;
    for (let w = 0; w < 8; w++) key[w] = old[from + w] as number;
    const to = find(slots, size, key);
    for (let w = 0; w < WORDS; w++) slots[to + w] = old[from + w] as number;
  }
  shard.slots = slots;
  shard.size = size;
}
