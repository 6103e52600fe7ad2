import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import {
  type ChunkedSnapshotLayout,
  type ChunkRecord,
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
 * Chunks the cache holds, so a new version takes what an older one (of any repository) already
 * brought: by sha256, the materialized file of a cached artifact (a location's `source` is its
 * number in `files`) and the offset there. Built from the cached indexes of those artifacts.
 */
export interface LocalChunks {
  table: ChunkTable;
  files: string[];
}

/** An empty {@link LocalChunks}. */
export function localChunks(): LocalChunks {
  return { table: new ChunkTable(), files: [] };
}

/**
 * Adds the data chunks of one materialized file: walks its (cached, verified) index and records
 * where each chunk sits in the file, which holds the non-hole records in order. A chunk already
 * known keeps its first place.
 */
export async function addLocalChunks(
  local: LocalChunks,
  indexPath: string,
  filePath: string,
): Promise<void> {
  const { records } = await openChunkIndex(createReadStream(indexPath));
  const source = local.files.push(filePath) - 1;
  let at = 0;
  for await (const r of records) {
    if (r.kind === 'hole') continue;
    if (r.kind === 'data') local.table.add(r.sha256, { source, offset: at, length: r.length });
    at += r.length;
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
   * comes over in long runs without a lookup, side by side with the fetches of what changed.
   */
  base?: { path: string; indexPath: string };
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
  /** A pack (fetched) or a cached file (copied). */
  from: { pack: Digest } | { path: string };
  start: number;
  end: number;
  /** Bytes of the run's chunks (the rest of `end - start` is gaps). */
  useful: number;
  chunks: Chunk[];
}

/** Largest span of one copy from a cached file (a buffer each, up to 16 in flight). */
const LOCAL_RUN_BYTES = 1024 * 1024;

/**
 * Writes one file of an incremental snapshot into the cache from its chunk index: each data
 * chunk the node already holds (at the same place in the base file, or anywhere in
 * {@link LocalChunks}) is copied from the cached file, the rest are fetched with ranged GETs
 * into their packs (neighbours coalesced, several in flight under the puller's limiter), every
 * fetched chunk checked against its sha256 before it is written. Every place of the target is
 * written once, so copies and fetches run side by side in any order. Zero runs stay unwritten
 * (the file is created at full length, so they read as zeros) and holes are not stored, as in a
 * one-blob-per-file snapshot's layer.
 */
export async function materializeChunkedFile(job: ChunkedFileJob): Promise<ChunkedFileResult> {
  const { header, records } = await openChunkIndex(createReadStream(job.indexPath), job.indexSize);
  checkIndexPacks(header.packs, job.layout);
  const stored = header.fileSize - header.holeBytes;
  const base = job.base ? await BaseCursor.open(job.base) : undefined;
  const out = await open(job.target, 'wx', 0o444);
  const sources = new SourceFiles();
  const result: ChunkedFileResult = {
    stored,
    segments: [],
    logicalSize: header.fileSize,
    holeBytes: header.holeBytes,
    transferred: 0,
    reused: 0,
  };
  const runs = new RunQueue((run) => copyRun(job, sources, out, run, result), job.rangeBytes);
  const place = { job, packs: header.packs, base, out, runs, result };
  try {
    await out.truncate(stored);
    let pos = 0;
    let at = 0;
    for await (const r of records) {
      if (runs.failed) break;
      job.signal.throwIfAborted();
      if (r.kind !== 'hole') {
        addSegment(result.segments, pos, r.length);
        await placeRecord(place, r, at);
        at += r.length;
      }
      pos += r.length;
    }
    await runs.finish();
    await out.sync();
    return result;
  } finally {
    await runs.settled();
    await out.close();
    await base?.close();
    await sources.close();
  }
}

interface Placing {
  job: ChunkedFileJob;
  packs: readonly { digest: Digest }[];
  base: BaseCursor | undefined;
  out: FileHandle;
  runs: RunQueue;
  result: ChunkedFileResult;
}

/** Where a chunk is in the cache, if anywhere. */
function cachedChunk(local: LocalChunks, sha256: Uint8Array) {
  const found = local.table.get(sha256);
  return found && { path: local.files[found.source] as string, offset: found.offset };
}

/** Puts a data record at `at` of the target: copied from the base or another cached file, or fetched. */
async function placeRecord(p: Placing, r: ChunkRecord, at: number): Promise<void> {
  // Zeros are left unwritten: the target is a new file.
  if (r.kind !== 'data') return;
  const local = (await p.base?.same(at, r))
    ? { path: p.base?.path as string, offset: at }
    : cachedChunk(p.job.local, r.sha256);
  const chunk = { length: r.length, at, sha256: r.sha256 };
  if (local) p.runs.add({ path: local.path }, { ...chunk, source: local.offset });
  else p.runs.add({ pack: p.packs[r.pack]?.digest as Digest }, { ...chunk, source: r.offset });
  await p.runs.backpressure();
}

/**
 * Walks the index of a base file alongside the new one, by position in the stored file: says
 * whether the base holds the same record (same kind and length, and for data the same sha256)
 * at the same place, i.e. whether the copied bytes there are already right.
 */
class BaseCursor {
  readonly path: string;
  readonly #records: AsyncGenerator<ChunkRecord>;
  #current: ChunkRecord | undefined;
  #at = 0;
  #done = false;

  private constructor(path: string, records: AsyncGenerator<ChunkRecord>) {
    this.path = path;
    this.#records = records;
  }

  static async open(base: { path: string; indexPath: string }): Promise<BaseCursor> {
    const { records } = await openChunkIndex(createReadStream(base.indexPath));
    return new BaseCursor(base.path, records);
  }

  async same(at: number, r: ChunkRecord): Promise<boolean> {
    // Skip base records that end at or before `at` (holes take no room in the stored file).
    while (!this.#done && (!this.#current || this.#at + this.#stored(this.#current) <= at)) {
      if (this.#current) this.#at += this.#stored(this.#current);
      const next = await this.#records.next();
      if (next.done) {
        this.#done = true;
        this.#current = undefined;
      } else this.#current = next.value;
    }
    const b = this.#current;
    if (!b || this.#at !== at || b.kind !== r.kind || b.length !== r.length) return false;
    return b.kind !== 'data' || r.kind !== 'data' || Buffer.from(b.sha256).equals(r.sha256);
  }

  #stored(r: ChunkRecord): number {
    return r.kind === 'hole' ? 0 : r.length;
  }

  async close(): Promise<void> {
    await this.#records.return(undefined);
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

  add(from: Run['from'], chunk: Chunk): void {
    // One open run per source: a later version's file takes its old chunks from the older
    // packs and its new ones from its own, in turns, and each source's run must go on across
    // the turns of the others.
    const key = 'path' in from ? `file:${from.path}` : `pack:${from.pack}`;
    const open = this.#open.get(key);
    if (extend(open, chunk, 'path' in from ? LOCAL_RUN_BYTES : this.#remoteLimit)) return;
    if (open) this.#start(open);
    this.#open.set(key, newRun(from, chunk));
  }

  /** Waits while too many copies are in flight: a file of GiBs queues only a few runs. */
  async backpressure(): Promise<void> {
    while (this.#inFlight.size >= 16 && !this.failed) await Promise.race(this.#inFlight);
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

function newRun(from: Run['from'], chunk: Chunk): Run {
  const end = chunk.source + chunk.length;
  return { from, start: chunk.source, end, useful: chunk.length, chunks: [chunk] };
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
  if ('path' in run.from) {
    const bytes = await sources.read(run.from.path, run.start, run.end - run.start);
    await writeChunks(out, bytes, run.start, run.chunks);
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

/** The cached files a target copies from, each opened once. */
class SourceFiles {
  readonly #open = new Map<string, Promise<FileHandle>>();

  async read(path: string, start: number, length: number): Promise<Buffer> {
    let file = this.#open.get(path);
    if (!file) {
      file = open(path, 'r');
      this.#open.set(path, file);
    }
    const bytes = Buffer.allocUnsafe(length);
    const { bytesRead } = await (await file).read(bytes, 0, length, start);
    if (bytesRead !== length) throw new Error(`${path}: cached file shorter than its index`);
    return bytes;
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
