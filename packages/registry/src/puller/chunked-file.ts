import { constants, createReadStream } from 'node:fs';
import { chmod, copyFile, type FileHandle, open } from 'node:fs/promises';
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
import { ChunkVerificationError } from '../client/incremental/read-chunked.js';
import type { Limiter } from './limiter.js';

/** Where a chunk's bytes already are on this node: a materialized file of a cached artifact. */
export interface LocalChunk {
  path: string;
  /** Offset in that file (a materialized file holds its data segments back to back). */
  offset: number;
}

/**
 * Chunks the cache holds, by sha256 (base64), so a new version takes what an older one (of any
 * repository) already brought. Built from the cached indexes of materialized artifacts.
 */
export type LocalChunks = Map<string, LocalChunk>;

/** The key of a chunk in {@link LocalChunks}. */
export const chunkKey = (sha256: Uint8Array): string => Buffer.from(sha256).toString('base64');

/**
 * Adds the data chunks of one materialized file to `table`: walks its (cached, verified) index
 * and records where each chunk sits in the file, which holds the non-hole records in order.
 */
export async function addLocalChunks(
  table: LocalChunks,
  indexPath: string,
  filePath: string,
): Promise<void> {
  const { records } = await openChunkIndex(createReadStream(indexPath));
  let at = 0;
  for await (const r of records) {
    if (r.kind === 'hole') continue;
    if (r.kind === 'data') {
      const key = chunkKey(r.sha256);
      if (!table.has(key)) table.set(key, { path: filePath, offset: at });
    }
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
   * A cached file of the same name from an earlier version, and its index: copied whole first
   * (by the kernel, or a reflink), so only the chunks that differ at the same place are written.
   */
  base?: { path: string; indexPath: string };
  limiter: Limiter;
  /** Largest span of one ranged GET or local copy. */
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
  sha256: Uint8Array;
}

/** Neighbouring chunks of one source (a pack or a cached file), each with its own place in the target. */
interface Run {
  /** A pack (fetched) or a cached file (copied). */
  from: { pack: Digest } | { path: string };
  start: number;
  end: number;
  chunks: Chunk[];
}

/**
 * Writes one file of an incremental snapshot into the cache from its chunk index: each data
 * chunk the node already holds ({@link LocalChunks}) is copied from the cached file, the rest
 * are fetched with ranged GETs into their packs (neighbours coalesced, several in flight under
 * the puller's limiter), every fetched chunk checked against its sha256 before it is written.
 * Zero runs stay unwritten (the file is created at full length, so they read as zeros) and
 * holes are not stored, as in a one-blob-per-file snapshot's layer.
 */
export async function materializeChunkedFile(job: ChunkedFileJob): Promise<ChunkedFileResult> {
  const { header, records } = await openChunkIndex(createReadStream(job.indexPath), job.indexSize);
  checkIndexPacks(header.packs, job.layout);
  const stored = header.fileSize - header.holeBytes;
  const base = job.base ? await BaseCursor.open(job.base.indexPath) : undefined;
  const out = await openTarget(job);
  const result: ChunkedFileResult = {
    stored,
    segments: [],
    logicalSize: header.fileSize,
    holeBytes: header.holeBytes,
    transferred: 0,
    reused: 0,
  };
  const runs = new RunQueue((run) => copyRun(job, out, run, result), job.rangeBytes);
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
    if (job.base) await chmod(job.target, 0o444).catch(() => {});
  }
}

/** The target, new, or a copy of the base file to write the differences into. */
async function openTarget(job: ChunkedFileJob): Promise<FileHandle> {
  if (!job.base) return open(job.target, 'wx', 0o444);
  await copyFile(job.base.path, job.target, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  await chmod(job.target, 0o644);
  return open(job.target, 'r+');
}

interface Placing {
  job: ChunkedFileJob;
  packs: readonly { digest: Digest }[];
  base: BaseCursor | undefined;
  out: FileHandle;
  runs: RunQueue;
  result: ChunkedFileResult;
}

/** Puts a zero or data record at `at` of the target: already there, zeros, copied or fetched. */
async function placeRecord(p: Placing, r: ChunkRecord, at: number): Promise<void> {
  if (await p.base?.same(at, r)) {
    if (r.kind === 'data') p.result.reused += r.length;
    return;
  }
  if (r.kind !== 'data') {
    // Unwritten zeros read as zeros in a new file, not over a copied one.
    if (p.base) await writeZeros(p.out, at, r.length);
    return;
  }
  const chunk = { length: r.length, at, sha256: r.sha256 };
  const local = p.job.local.get(chunkKey(r.sha256));
  if (local) p.runs.add({ path: local.path }, local.offset, chunk);
  else p.runs.add({ pack: p.packs[r.pack]?.digest as Digest }, r.offset, chunk);
  await p.runs.backpressure();
}

const ZEROS = Buffer.alloc(1024 * 1024);

async function writeZeros(out: FileHandle, at: number, length: number): Promise<void> {
  for (let done = 0; done < length; done += ZEROS.length) {
    const n = Math.min(ZEROS.length, length - done);
    await out.write(ZEROS, 0, n, at + done);
  }
}

/**
 * Walks the index of a base file alongside the new one, by position in the stored file: says
 * whether the base holds the same record (same kind and length, and for data the same sha256)
 * at the same place, i.e. whether the copied bytes there are already right.
 */
class BaseCursor {
  readonly #records: AsyncGenerator<ChunkRecord>;
  #current: ChunkRecord | undefined;
  #at = 0;
  #done = false;

  private constructor(records: AsyncGenerator<ChunkRecord>) {
    this.#records = records;
  }

  static async open(indexPath: string): Promise<BaseCursor> {
    return new BaseCursor((await openChunkIndex(createReadStream(indexPath))).records);
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
  readonly #limit: number;
  readonly #inFlight = new Set<Promise<void>>();
  #cached: Run | undefined;
  #remote: Run | undefined;
  #failure: unknown;
  failed = false;

  constructor(copy: (run: Run) => Promise<void>, limit: number) {
    this.#copy = copy;
    this.#limit = limit;
  }

  add(from: Run['from'], offset: number, chunk: Chunk): void {
    const open = 'path' in from ? this.#cached : this.#remote;
    if (extend(open, from, offset, chunk, this.#limit)) return;
    if (open) this.#start(open);
    const run = newRun(from, offset, chunk);
    if ('path' in from) this.#cached = run;
    else this.#remote = run;
  }

  /** Waits while too many copies are in flight: a file of GiBs queues only a few runs. */
  async backpressure(): Promise<void> {
    while (this.#inFlight.size >= 16 && !this.failed) await Promise.race(this.#inFlight);
  }

  /** Starts the open runs, waits for every copy, and throws the first failure. */
  async finish(): Promise<void> {
    for (const run of [this.#cached, this.#remote]) if (run && !this.failed) this.#start(run);
    this.#cached = this.#remote = undefined;
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

function newRun(from: Run['from'], offset: number, chunk: Chunk): Run {
  return { from, start: offset, end: offset + chunk.length, chunks: [chunk] };
}

/**
 * Adds `chunk` to `run` if it follows on in the source. Its place in the target may be anywhere:
 * a version's new chunks sit side by side in its packs but scattered over the file (single
 * rewritten pages), and fetching them one ranged GET each would cost a round trip per 8 KiB.
 */
function extend(
  run: Run | undefined,
  from: Run['from'],
  offset: number,
  chunk: Chunk,
  limit: number,
): boolean {
  if (!run || run.end !== offset || run.end - run.start + chunk.length > limit) return false;
  const same =
    'pack' in from
      ? 'pack' in run.from && run.from.pack === from.pack
      : 'path' in run.from && run.from.path === from.path;
  if (!same) return false;
  run.end += chunk.length;
  run.chunks.push(chunk);
  return true;
}

/** Brings one run's bytes into the target, under one slot of the limiter. */
async function copyRun(job: ChunkedFileJob, out: FileHandle, run: Run, result: ChunkedFileResult) {
  const release = await job.limiter.acquire(job.signal);
  try {
    const bytes =
      'path' in run.from ? await readLocal(run.from.path, run) : await fetchRun(job, run);
    await writeChunks(out, bytes, run.chunks);
    if ('path' in run.from) result.reused += bytes.length;
    else result.transferred += bytes.length;
  } finally {
    release();
  }
}

/** Writes a run's bytes chunk by chunk at their places, neighbours in one write. */
async function writeChunks(out: FileHandle, bytes: Buffer, chunks: readonly Chunk[]) {
  let from = 0;
  let i = 0;
  while (i < chunks.length) {
    const first = chunks[i] as Chunk;
    let length = first.length;
    let j = i + 1;
    for (; j < chunks.length; j++) {
      const next = chunks[j] as Chunk;
      if (next.at !== first.at + length) break;
      length += next.length;
    }
    await out.write(bytes, from, length, first.at);
    from += length;
    i = j;
  }
}

async function readLocal(path: string, run: Run): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const bytes = Buffer.allocUnsafe(run.end - run.start);
    const { bytesRead } = await file.read(bytes, 0, bytes.length, run.start);
    if (bytesRead !== bytes.length) throw new Error(`${path}: cached file shorter than its index`);
    return bytes;
  } finally {
    await file.close();
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
  let offset = 0;
  for (const chunk of run.chunks) {
    const sha = chunkSha256(bytes.subarray(offset, offset + chunk.length));
    if (!sha.equals(chunk.sha256)) return { offset, at: chunk.at };
    offset += chunk.length;
  }
  return undefined;
}
