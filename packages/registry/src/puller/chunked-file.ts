import { constants, createReadStream } from 'node:fs';
import { chmod, copyFile, type FileHandle, open, rename, rm } from 'node:fs/promises';
import {
  type ChunkedSnapshotLayout,
  type ChunkRecordPage,
  checkIndexPacks,
  chunkSha256,
  type Digest,
  openChunkIndex,
  type SparseSegment,
} from '@epoch/oci';
import type { RegistryClient } from '../client/client.js';
import { ChunkTable } from '../client/incremental/chunk-table.js';
import { ChunkVerificationError } from '../client/incremental/read-chunked.js';
import type { Limiter } from './limiter.js';

/**
 * Chunks the cache holds that a new version needs, so it takes what an older one (of any
 * repository) already brought: by sha256, the materialized file of a cached artifact (a
 * location's `source` is its number in `files`) and the offset there.
 */
export interface LocalChunks {
  table: ChunkTable;
  files: string[];
}

/** An empty {@link LocalChunks}. */
export function localChunks(): LocalChunks {
  return { table: new ChunkTable(), files: [] };
}

/** A file's index and, if the cache has an earlier version of it, that version's file and index. */
export interface IndexedFile {
  indexPath: string;
  base?: BaseFile;
}

/** An earlier version of a file, cached, and its index. */
export interface BaseFile {
  path: string;
  indexPath: string;
  /**
   * The file is the new version's to take over (its artifact has left the cache): it is renamed
   * to the target and only the places where the versions differ are written.
   */
  inPlace?: boolean;
}

/**
 * Adds to `wanted` the data chunks of a file that its base does not hold at the same place:
 * the only ones worth looking up in the cache (the rest are copied from the base in place).
 * Looking up only these keeps the work of a pull in proportion to what changed, not to how
 * many versions the cache holds.
 */
export async function addWantedChunks(wanted: ChunkTable, file: IndexedFile): Promise<void> {
  const { pages } = await openChunkIndex(createReadStream(file.indexPath));
  const base = file.base ? await BaseCursor.open(file.base) : undefined;
  try {
    const walk = { at: 0 };
    for await (const page of pages) await addWantedPage(wanted, page, base, walk);
  } finally {
    await base?.close();
  }
}

async function addWantedPage(
  wanted: ChunkTable,
  page: ChunkRecordPage,
  base: BaseCursor | undefined,
  walk: { at: number },
): Promise<void> {
  for (let i = 0; i < page.count; i++) {
    const kind = page.kindOf(i);
    if (kind === 'hole') continue;
    const { at } = walk;
    if (kind === 'data') {
      if (base && !base.covers(at)) await base.advanceTo(at);
      if (!base?.same(at, page, i))
        wanted.add(page.sha256Of(i), { source: 0, offset: 0, length: 1 });
    }
    walk.at += page.lengthOf(i);
  }
}

/**
 * Adds the chunks of one materialized file that `wanted` lists: walks its (cached, verified)
 * index and records where each sits in the file, which holds the non-hole records in order. A
 * chunk already found keeps its first place.
 */
export async function addLocalChunks(
  local: LocalChunks,
  wanted: ChunkTable,
  indexPath: string,
  filePath: string,
): Promise<void> {
  const { pages } = await openChunkIndex(createReadStream(indexPath));
  let source: number | undefined;
  let at = 0;
  for await (const page of pages) {
    for (let i = 0; i < page.count; i++) {
      const kind = page.kindOf(i);
      if (kind === 'hole') continue;
      const length = page.lengthOf(i);
      const sha256 = kind === 'data' ? page.sha256Of(i) : undefined;
      if (sha256 && wanted.has(sha256)) {
        source ??= local.files.push(filePath) - 1;
        local.table.add(sha256, { source, offset: at, length });
      }
      at += length;
    }
  }
}

/** What {@link materializeChunkedFile} needs. */
export interface ChunkedFileJob {
  client: RegistryClient;
  repository: string;
  layout: ChunkedSnapshotLayout;
  /** The file's index, complete and verified in the cache. */
  indexPath: string;
  indexSize: number;
  title: string;
  /** The file to write: its data segments back to back (zero runs left unwritten). */
  target: string;
  local: LocalChunks;
  /**
   * A cached file of the same name from an earlier version, and its index: where a record
   * matches the base's at the same place, its bytes are copied from there, so unchanged memory
   * comes over in long runs without a lookup, side by side with the fetches of what changed;
   * or, where the target starts as the base (taken `inPlace`, or a clone of it), stays where it
   * is and is not written at all.
   */
  base?: BaseFile;
  limiter: Limiter;
  /** Largest span of one ranged GET. */
  rangeBytes: number;
  /** Fetches of a group whose bytes do not match before giving up. */
  attempts: number;
  signal: AbortSignal;
  onBytes: (n: number) => void;
  onRejected: (attempt: number, error: Error) => void;
}

/** What a file cost: bytes fetched over the network and bytes copied from the cache. */
export interface ChunkedFileResult {
  /** Bytes of the materialized file (the logical size less its holes). */
  stored: number;
  /** The data segments (everything but holes), for cocoon's sparse map. */
  segments: SparseSegment[];
  logicalSize: number;
  holeBytes: number;
  transferred: number;
  reused: number;
}

interface Chunk {
  length: number;
  /** Where the chunk goes in the target. */
  at: number;
  /** Where the chunk is in its source (a pack or a cached file). */
  source: number;
  sha256: Uint8Array;
}

/**
 * Chunks close together in one source (a pack or a cached file), read with one request, each
 * with its own place in the target. Small gaps between them are read and dropped.
 */
interface Run {
  /** A pack (fetched), a cached file (copied) or zeros (written over a base taken in place). */
  from: { pack: Digest } | { path: string } | { zeros: true };
  start: number;
  end: number;
  /** Bytes of the run's chunks (the rest of `end - start` is gaps). */
  useful: number;
  /**
   * The chunks and their places; none for a mirror run (a stretch of the base file, or of
   * zeros, that goes to the same place of the target, whole: most of a new version's memory
   * file).
   */
  chunks: Chunk[];
  mirror: boolean;
}

/** Largest span of one copy from a cached file (a pooled buffer each). */
const LOCAL_RUN_BYTES = 1024 * 1024;
/** Copies and fetches in flight per file. */
const MAX_IN_FLIGHT = 16;
/** What a zero run writes (runs are at most {@link LOCAL_RUN_BYTES}). */
const ZEROS = Buffer.alloc(LOCAL_RUN_BYTES);

/**
 * Writes one file of an incremental snapshot into the cache from its chunk index: each data
 * chunk the node already holds (at the same place in the base file, or anywhere in
 * {@link LocalChunks}) is copied from the cached file, the rest are fetched with ranged GETs
 * into their packs (neighbours coalesced, several in flight under the puller's limiter), every
 * fetched chunk checked against its sha256 before it is written. Every place of the target is
 * written once, so copies and fetches run side by side in any order. Zero runs stay unwritten
 * (the file is created at full length, so they read as zeros) and holes are not stored, as in a
 * one-blob-per-file snapshot's layer.
 *
 * A base taken `inPlace` becomes the target: records equal to the base's at the same place are
 * not written, zero runs over its bytes are, and the rest as above. Its artifact has left the
 * cache first, so a crash or a failure leaves no half-written version under a complete name.
 * Where the file system clones files, a copying update starts the target as a clone of the base
 * and then goes the same way, the base left as it was.
 */
export async function materializeChunkedFile(job: ChunkedFileJob): Promise<ChunkedFileResult> {
  const { header, pages } = await openChunkIndex(createReadStream(job.indexPath), job.indexSize);
  checkIndexPacks(header.packs, job.layout);
  const stored = header.fileSize - header.holeBytes;
  const base = job.base ? await BaseCursor.open(job.base) : undefined;
  let out: FileHandle;
  let baseSize = 0;
  let inPlace = false;
  try {
    ({ out, baseSize, inPlace } = await openTarget(job));
  } catch (err) {
    await base?.close();
    throw err;
  }
  const sources = new SourceFiles();
  const result: ChunkedFileResult = {
    stored,
    segments: [],
    logicalSize: header.fileSize,
    holeBytes: header.holeBytes,
    transferred: 0,
    reused: 0,
  };
  const flusher = new WriteBehind(out);
  const runs = new RunQueue(
    (run) => copyRun(job, sources, out, run, result).then(() => flusher.wrote(run.useful)),
    job.rangeBytes,
  );
  const place: Placing = {
    job,
    packs: header.packs,
    base,
    inPlace,
    baseSize,
    runs,
    result,
    pos: 0,
    at: 0,
  };
  try {
    await out.truncate(stored);
    for await (const page of pages) {
      if (runs.failed) break;
      job.signal.throwIfAborted();
      await placePage(place, page);
    }
    await runs.finish();
    await flusher.finish();
    if (inPlace) await out.chmod(0o444);
    await out.sync();
    return result;
  } finally {
    await runs.settled();
    await flusher.settled();
    await out.close();
    await base?.close();
    await sources.close();
  }
}

/**
 * The target: the base renamed to it (taken in place), a clone of the base where the filesystem
 * shares blocks between files (XFS, btrfs: nothing is copied and the base stays cached), or a
 * new file. `inPlace`: the target holds the base's bytes (`baseSize` of them), so what matches
 * is not written; it is made writable for the patch (cached files are read-only).
 */
async function openTarget(
  job: ChunkedFileJob,
): Promise<{ out: FileHandle; baseSize: number; inPlace: boolean }> {
  const base = job.base;
  if (base?.inPlace) await rename(base.path, job.target);
  else if (!base || !(await cloned(base.path, job.target))) {
    return { out: await open(job.target, 'wx', 0o444), baseSize: 0, inPlace: false };
  }
  await chmod(job.target, 0o644);
  const out = await open(job.target, 'r+');
  try {
    return { out, baseSize: (await out.stat()).size, inPlace: true };
  } catch (err) {
    await out.close();
    throw err;
  }
}

/** Errors of a clone the filesystem (or kernel) cannot make: the copy is made instead. */
const NO_CLONE = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY', 'EPERM']);

/** Makes `to` a clone of `from` (a reflink: shared blocks, copied on write); false if it cannot. */
async function cloned(from: string, to: string): Promise<boolean> {
  try {
    await copyFile(from, to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch (err) {
    if (!NO_CLONE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    // libuv removes what it created on failure; this makes sure before the file is made anew.
    await rm(to, { force: true });
    return false;
  }
}

interface Placing {
  job: ChunkedFileJob;
  packs: readonly { digest: Digest }[];
  base: BaseCursor | undefined;
  /** The target holds the base's bytes (taken over, or cloned): what matches is not written. */
  inPlace: boolean;
  /** Bytes the target held before (taken over or cloned); past them it reads as zeros. */
  baseSize: number;
  runs: RunQueue;
  result: ChunkedFileResult;
  /** Logical position of the next record. */
  pos: number;
  /** Its place in the target (holes take none). */
  at: number;
}

/**
 * Places a page of records, with no await per record unless the copies in flight are at their
 * limit or the base's index must be read further: a memory file has hundreds of thousands.
 */
async function placePage(p: Placing, page: ChunkRecordPage): Promise<void> {
  for (let i = 0; i < page.count; i++) {
    const kind = page.kindOf(i);
    const length = page.lengthOf(i);
    if (kind === 'hole') {
      p.pos += length;
      continue;
    }
    addSegment(p.result.segments, p.pos, length);
    if (kind === 'data' || zerosToWrite(p)) {
      if (p.base && !p.base.covers(p.at)) await p.base.advanceTo(p.at);
      placeRecord(p, page, i, p.at);
      if (p.runs.busy) await p.runs.backpressure();
    }
    p.at += length;
    p.pos += length;
  }
}

/**
 * Whether a zero record at the current place may need writing: zeros are left unwritten where
 * the target reads as zeros already (a new file, or past the end of a base taken over).
 */
function zerosToWrite(p: Placing): boolean {
  return p.inPlace && p.at < p.baseSize;
}

/** Where a chunk is in the cache, if anywhere. */
function cachedChunk(local: LocalChunks, sha256: Uint8Array) {
  const found = local.table.get(sha256);
  return found && { path: local.files[found.source] as string, offset: found.offset };
}

/**
 * Puts record `i` of `page` (data, or zeros over a base taken in place) at `at` of the target:
 * left as it is, copied from the same place of the base file, from another cached file, or
 * fetched.
 */
function placeRecord(p: Placing, page: ChunkRecordPage, i: number, at: number): void {
  const length = page.lengthOf(i);
  if (p.base?.same(at, page, i)) {
    if (p.inPlace) p.result.reused += length;
    else p.runs.mirror({ path: p.base.path }, at, length);
    return;
  }
  if (page.kindOf(i) === 'zero') {
    p.runs.mirror({ zeros: true }, at, length);
    return;
  }
  // The run may outlive the page's buffer being read on: the sha256 is copied.
  const sha256 = Buffer.from(page.sha256Of(i));
  const local = cachedChunk(p.job.local, sha256);
  const chunk = { length, at, sha256 };
  if (local) p.runs.add({ path: local.path }, { ...chunk, source: local.offset });
  else {
    const pack = p.packs[page.packOf(i)]?.digest as Digest;
    p.runs.add({ pack }, { ...chunk, source: page.offsetOf(i) });
  }
}

/**
 * Walks the index of a base file alongside the new one, by position in the stored file: says
 * whether the base holds the same record (same kind and length, and for data the same sha256)
 * at the same place, i.e. whether the base's bytes there are already right.
 */
class BaseCursor {
  readonly path: string;
  readonly #pages: AsyncGenerator<ChunkRecordPage>;
  #page: ChunkRecordPage | undefined;
  #i = 0;
  /** Stored position of record `#i` of `#page`. */
  #at = 0;
  #done = false;

  private constructor(path: string, pages: AsyncGenerator<ChunkRecordPage>) {
    this.path = path;
    this.#pages = pages;
  }

  static async open(base: { path: string; indexPath: string }): Promise<BaseCursor> {
    const { pages } = await openChunkIndex(createReadStream(base.indexPath));
    return new BaseCursor(base.path, pages);
  }

  /** Whether the cursor can answer for `at` without reading the base's index further. */
  covers(at: number): boolean {
    this.#skipTo(at);
    return this.#done || this.#page !== undefined;
  }

  /** Reads the base's index on until the record at `at` (or the end). */
  async advanceTo(at: number): Promise<void> {
    while (!this.covers(at)) {
      const next = await this.#pages.next();
      if (next.done) this.#done = true;
      else {
        this.#page = next.value;
        this.#i = 0;
      }
    }
  }

  /** Whether the base's record at `at` is record `i` of `page` (after {@link advanceTo}). */
  same(at: number, page: ChunkRecordPage, i: number): boolean {
    this.#skipTo(at);
    const b = this.#page;
    return b !== undefined && this.#at === at && b.same(this.#i, page, i);
  }

  /** Moves past the base records that end at or before `at` (holes take no room). */
  #skipTo(at: number): void {
    let page = this.#page;
    while (page) {
      for (; this.#i < page.count; this.#i++) {
        const stored = page.kindOf(this.#i) === 'hole' ? 0 : page.lengthOf(this.#i);
        if (this.#at + stored > at) return;
        this.#at += stored;
      }
      this.#page = page = undefined;
    }
  }

  async close(): Promise<void> {
    await this.#pages.return(undefined);
  }
}

/** Bytes written between two background flushes of a file being materialized. */
const WRITE_BEHIND_BYTES = 64 * 1024 * 1024;

/**
 * Flushes a file's written pages to disk in the background while more are written, one flush at
 * a time: the final sync then waits for the last stretch only, not for every byte of a
 * multi-GiB file (the kernel's own write-back starts only at a tenth of memory dirty, so without
 * this nearly all of it waited for the end).
 */
class WriteBehind {
  readonly #file: FileHandle;
  #pending = 0;
  #flushing: Promise<void> | undefined;
  #failure: unknown;

  constructor(file: FileHandle) {
    this.#file = file;
  }

  wrote(bytes: number): void {
    this.#pending += bytes;
    if (this.#pending < WRITE_BEHIND_BYTES || this.#flushing) return;
    this.#pending = 0;
    this.#flushing = this.#file
      .datasync()
      .catch((err: unknown) => {
        this.#failure ??= err;
      })
      .finally(() => {
        this.#flushing = undefined;
      });
  }

  /** Waits for the flush in flight; throws if any failed. */
  async finish(): Promise<void> {
    await this.settled();
    if (this.#failure !== undefined) throw this.#failure;
  }

  async settled(): Promise<void> {
    await this.#flushing;
  }
}

/** Extends the last data segment, or starts one at `pos`. */
function addSegment(segments: SparseSegment[], pos: number, length: number): void {
  const last = segments[segments.length - 1];
  if (last && last.o + last.l === pos) last.l += length;
  else segments.push({ o: pos, l: length });
}

/**
 * The open runs (one from the cache, one from the network) and the copies in flight: a chunk
 * joins its source's open run when it follows on, else that run starts copying and a new one
 * opens. The first failure stops everything that has not started.
 */
class RunQueue {
  readonly #copy: (run: Run) => Promise<void>;
  readonly #remoteLimit: number;
  readonly #inFlight = new Set<Promise<void>>();
  /** The open run of each source (a pack or a cached file). */
  readonly #open = new Map<string, Run>();
  #failure: unknown;
  failed = false;

  /** @param remoteLimit - largest span of a fetched run (local ones: {@link LOCAL_RUN_BYTES}) */
  constructor(copy: (run: Run) => Promise<void>, remoteLimit: number) {
    this.#copy = copy;
    this.#remoteLimit = remoteLimit;
  }

  /**
   * Adds `length` bytes at `at` of the base file (or zeros), bound for the same place of the
   * target: a run of such stretches needs no chunk list and is one write.
   */
  mirror(from: { path: string } | { zeros: true }, at: number, length: number): void {
    const key = 'path' in from ? `mirror:${from.path}` : 'zeros';
    const open = this.#open.get(key);
    if (open && open.end === at && open.end + length - open.start <= LOCAL_RUN_BYTES) {
      open.end += length;
      open.useful += length;
      return;
    }
    if (open) this.#start(open);
    const run = { from, start: at, end: at + length, useful: length, chunks: [] };
    this.#open.set(key, { ...run, mirror: true });
  }

  add(from: { pack: Digest } | { path: string }, chunk: Chunk): void {
    // One open run per source: a later version's file takes its old chunks from the older
    // packs and its new ones from its own, in turns, and each source's run must go on across
    // the turns of the others.
    const key = 'path' in from ? `file:${from.path}` : `pack:${from.pack}`;
    const open = this.#open.get(key);
    if (extend(open, chunk, 'path' in from ? LOCAL_RUN_BYTES : this.#remoteLimit)) return;
    if (open) this.#start(open);
    this.#open.set(key, newRun(from, chunk));
  }

  /** Whether {@link backpressure} would wait. */
  get busy(): boolean {
    return this.#inFlight.size >= MAX_IN_FLIGHT && !this.failed;
  }

  /** Waits while too many copies are in flight: a file of GiBs queues only a few runs. */
  async backpressure(): Promise<void> {
    while (this.busy) await Promise.race(this.#inFlight);
  }

  /** Starts the open runs, waits for every copy, and throws the first failure. */
  async finish(): Promise<void> {
    for (const run of this.#open.values()) if (!this.failed) this.#start(run);
    this.#open.clear();
    await this.settled();
    if (this.failed) throw this.#failure;
  }

  async settled(): Promise<void> {
    await Promise.all(this.#inFlight);
  }

  #start(run: Run): void {
    const task = this.#copy(run).catch((err: unknown) => {
      if (!this.failed) this.#failure = err;
      this.failed = true;
    });
    this.#inFlight.add(task);
    task.finally(() => this.#inFlight.delete(task));
  }
}

function newRun(from: { pack: Digest } | { path: string }, chunk: Chunk): Run {
  const end = chunk.source + chunk.length;
  return { from, start: chunk.source, end, useful: chunk.length, chunks: [chunk], mirror: false };
}

/** Largest gap read through between two chunks of one run. */
const MAX_GAP = 64 * 1024;

/**
 * Adds `chunk` to `run` (of the same source) if it follows on, after a gap of at most
 * {@link MAX_GAP}, and the run stays at least half chunks. Its place in the target may be
 * anywhere: a version's new chunks sit side by side in its packs but scattered over the file
 * (single rewritten pages), and a version's old chunks sit in the older packs with the chunks it
 * replaced between them; one request per chunk, or per stretch between two changes, would cost
 * tens of thousands of round trips for a memory file.
 */
function extend(run: Run | undefined, chunk: Chunk, limit: number): boolean {
  if (!run) return false;
  const end = chunk.source + chunk.length;
  const gap = chunk.source - run.end;
  if (gap < 0 || gap > MAX_GAP || end - run.start > limit) return false;
  if (end - run.start > 2 * (run.useful + chunk.length)) return false;
  run.end = end;
  run.useful += chunk.length;
  run.chunks.push(chunk);
  return true;
}

/** Brings one run's bytes into the target; a fetch holds one slot of the puller's limiter. */
async function copyRun(
  job: ChunkedFileJob,
  sources: SourceFiles,
  out: FileHandle,
  run: Run,
  result: ChunkedFileResult,
) {
  if ('zeros' in run.from) {
    await out.write(ZEROS, 0, run.end - run.start, run.start);
    return;
  }
  if ('path' in run.from) {
    const bytes = await sources.read(run.from.path, run.start, run.end - run.start);
    try {
      if (run.mirror) await out.write(bytes, 0, bytes.length, run.start);
      else await writeChunks(out, bytes, run.start, run.chunks);
    } finally {
      sources.release(bytes);
    }
    result.reused += run.useful;
    return;
  }
  const release = await job.limiter.acquire(job.signal);
  try {
    const bytes = await fetchRun(job, run);
    await writeChunks(out, bytes, run.start, run.chunks);
    result.transferred += bytes.length;
  } finally {
    release();
  }
}

/**
 * Writes a run's chunks (`bytes` from the run's `start`) at their places, chunks that are
 * neighbours both in the source and in the target in one write.
 */
async function writeChunks(
  out: FileHandle,
  bytes: Buffer,
  start: number,
  chunks: readonly Chunk[],
) {
  let i = 0;
  while (i < chunks.length) {
    const first = chunks[i] as Chunk;
    let length = first.length;
    let j = i + 1;
    for (; j < chunks.length; j++) {
      const next = chunks[j] as Chunk;
      if (next.at !== first.at + length || next.source !== first.source + length) break;
      length += next.length;
    }
    await out.write(bytes, first.source - start, length, first.at);
    i = j;
  }
}

/**
 * The cached files a target copies from, each opened once, read into buffers used again and
 * again (a fresh 1 MiB buffer per run cost a collection every few hundred runs, and on a VM
 * whose host takes freed pages back, faulting every page in anew).
 */
class SourceFiles {
  readonly #open = new Map<string, Promise<FileHandle>>();
  readonly #free: Buffer[] = [];

  /** `length` bytes at `start` of `path`, in a buffer to give back with {@link release}. */
  async read(path: string, start: number, length: number): Promise<Buffer> {
    let file = this.#open.get(path);
    if (!file) {
      file = open(path, 'r');
      this.#open.set(path, file);
    }
    const bytes = (this.#free.pop() ?? Buffer.allocUnsafeSlow(LOCAL_RUN_BYTES)).subarray(0, length);
    const { bytesRead } = await (await file).read(bytes, 0, length, start);
    if (bytesRead !== length) throw new Error(`${path}: cached file shorter than its index`);
    return bytes;
  }

  release(bytes: Buffer): void {
    this.#free.push(Buffer.from(bytes.buffer, bytes.byteOffset, LOCAL_RUN_BYTES));
  }

  async close(): Promise<void> {
    const files = await Promise.allSettled(this.#open.values());
    for (const f of files) if (f.status === 'fulfilled') await f.value.close();
  }
}

/** A run from its pack, every chunk verified; a mismatch is fetched again, up to `attempts`. */
async function fetchRun(job: ChunkedFileJob, run: Run): Promise<Buffer> {
  const pack = (run.from as { pack: Digest }).pack;
  for (let attempt = 1; ; attempt++) {
    const parts: Buffer[] = [];
    for await (const c of job.client.getBlob(job.repository, pack, {
      range: { start: run.start, end: run.end - 1 },
      signal: job.signal,
    })) {
      parts.push(c as Buffer);
      job.onBytes((c as Buffer).length);
    }
    const bytes = Buffer.concat(parts);
    const bad = badChunk(bytes, run);
    if (bad === undefined) return bytes;
    const error = new ChunkVerificationError(pack, run.start + bad.offset, job.title, bad.at);
    job.onRejected(attempt, error);
    if (attempt >= job.attempts) throw error;
  }
}

/** The first chunk of `run` whose bytes in `bytes` do not hash to its sha256, if any. */
function badChunk(bytes: Buffer, run: Run): { offset: number; at: number } | undefined {
  if (bytes.length !== run.end - run.start) return { offset: 0, at: run.chunks[0]?.at ?? 0 };
  for (const chunk of run.chunks) {
    const offset = chunk.source - run.start;
    const sha = chunkSha256(bytes.subarray(offset, offset + chunk.length));
    if (!sha.equals(chunk.sha256)) return { offset, at: chunk.at };
  }
  return undefined;
}
