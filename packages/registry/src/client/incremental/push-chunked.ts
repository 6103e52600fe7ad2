import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  Annotations,
  type ByteSink,
  ChunkedMediaTypes,
  chunkSha256,
  type Descriptor,
  type Digest,
  digestOf,
  MediaTypes,
  type SparseSegment,
  writeAll,
} from '@epoch/oci';
import type { RegistryClient } from '../client.js';
import { type ChunkLocation, ChunkTable } from './chunk-table.js';
import { type ChunkSink, fileChunker } from './file-chunker.js';
import { IndexBuilder } from './index-builder.js';
import { type ChunkSource, type KnownChunksReport, loadKnownChunks } from './known-chunks.js';
import { PackList } from './pack-list.js';
import { type PackPlace, type PackStats, PackWriter } from './pack-writer.js';

/** One file of a snapshot to push, its bytes aside. */
export interface ChunkedFileInfo {
  /** File name (the index layer's title). */
  title: string;
  mode: number;
  /** Logical size. */
  size: number;
  /** Data segments of a sparse file; the body holds only their bytes. Absent: `[0, size)`. */
  segments?: readonly SparseSegment[];
  /** cocoon's raw `COCOON.sparse.map`, kept in the config for display. */
  sparseMap?: string;
}

/** One file of a snapshot to push, with its bytes. */
export interface ChunkedFileInput extends ChunkedFileInfo {
  /** The file's bytes (the data segments' bytes for a sparse file), read once. */
  body: AsyncIterable<Uint8Array>;
}

/** Options of {@link ChunkedSnapshotPush.start}. */
export interface ChunkedPushOptions {
  client: RegistryClient;
  repository: string;
  tag: string;
  /** Extra manifest annotations (e.g. the base image). */
  annotations?: Record<string, string>;
  /** Other snapshots (same registry, readable by the caller) whose chunks may be reused. */
  bases?: readonly ChunkSource[];
  /** How many of the repository's newest incremental versions to reuse chunks from (default 3). */
  latest?: number;
  /** Chunk size (default 8 KiB, see the spec). */
  chunkSize?: number;
  /** Pack size (default 32 MiB). */
  packBytes?: number;
  /** Memory for the known-chunk table (default 96 MiB). */
  tableBytes?: number;
  /** Awaited before the manifest is put (e.g. the exporter's exit status). */
  beforeManifest?: () => Promise<void>;
  /** Called when a pack is sealed and sent (`uploaded`) or found (`exists`). */
  onPack?: (digest: Digest, how: string) => void;
  /** Called with the logical bytes of the current file chunked so far. */
  onProgress?: (title: string, bytes: number, size: number) => void;
}

/** Options of {@link pushChunkedSnapshot}. */
export interface PushChunkedOptions extends ChunkedPushOptions {
  /** Snapshot config fields (envelope fields, `envelope`, …); `files` and `createdAt` are added. */
  config: Record<string, unknown>;
}

/** What an incremental push did. */
export interface ChunkedPushResult {
  digest: Digest;
  manifest: Record<string, unknown>;
  /** Logical bytes of all files. */
  logicalBytes: number;
  /** Bytes of data chunks (stored in packs, new or reused). */
  dataBytes: number;
  zeroBytes: number;
  holeBytes: number;
  packs: PackStats & { mounted: number; total: number };
  /** Bytes of the indexes and config uploaded. */
  metadataBytesSent: number;
  known: KnownChunksReport;
}

const ZERO = Buffer.alloc(1024 * 1024);

/**
 * Pushes a snapshot in the incremental format (docs/incremental-snapshots.md): each file is
 * cut into 8 KiB chunks as it streams, zero chunks are recorded and dropped, chunks the
 * repository's newest versions (or `bases`) hold are referenced where they are, and only new
 * chunks are sent, in packs. Then the indexes, the config and the manifest listing every pack
 * and index. Memory: two packs, the known-chunk table and the indexes' records.
 */
export async function pushChunkedSnapshot(
  files: AsyncIterable<ChunkedFileInput>,
  options: PushChunkedOptions,
): Promise<ChunkedPushResult> {
  const push = await ChunkedSnapshotPush.start(options);
  try {
    for await (const file of files) await writeAll(file.body, push.file(file));
    return await push.finish(options.config);
  } finally {
    push.dispose();
  }
}

/** Bytes chunked between two progress reports. */
const PROGRESS_BYTES = 64 * 1024 * 1024;

/**
 * Takes one file's pieces as they are cut: zero chunks and holes recorded as runs, known chunks
 * referenced where they are, new ones stored in a pack; every data chunk recorded in the index.
 * Synchronous unless a full pack must be sent first.
 */
class FileSink implements ChunkSink {
  done = 0;
  #reported = 0;
  readonly #file: ChunkedFileInfo;
  readonly #index: IndexBuilder;
  readonly #table: ChunkTable;
  readonly #packs: PackWriter;
  readonly #onProgress: PushChunkedOptions['onProgress'];
  /** Where a known chunk is (filled by each lookup). */
  readonly #known: ChunkLocation = { source: 0, offset: 0, length: 0 };

  constructor(
    file: ChunkedFileInfo,
    index: IndexBuilder,
    table: ChunkTable,
    packs: PackWriter,
    onProgress: PushChunkedOptions['onProgress'],
  ) {
    this.#file = file;
    this.#index = index;
    this.#table = table;
    this.#packs = packs;
    this.#onProgress = onProgress;
  }

  hole(length: number): void {
    this.#index.run('hole', length);
    this.done += length;
  }

  chunk(bytes: Buffer): void | Promise<void> {
    const length = bytes.length;
    this.done += length;
    // Two byte reads settle most data chunks before a call into C++ compares the whole chunk.
    if (
      bytes[0] === 0 &&
      bytes[length - 1] === 0 &&
      ZERO.compare(bytes, 0, length, 0, length) === 0
    ) {
      this.#index.run('zero', length);
      return;
    }
    const sha256 = chunkSha256(bytes);
    const known = this.#known;
    if (this.#table.lookup(sha256, known)) {
      this.#record(length, known.source, known.offset, sha256);
      return;
    }
    const placed = this.#packs.add(bytes);
    if (placed instanceof Promise) return placed.then((p) => this.#stored(length, p, sha256));
    this.#stored(length, placed, sha256);
  }

  #stored(length: number, placed: PackPlace, sha256: Buffer): void {
    this.#table.add(sha256, { source: placed.pack, offset: placed.offset, length });
    this.#record(length, placed.pack, placed.offset, sha256);
  }

  #record(length: number, pack: number, offset: number, sha256: Buffer): void {
    this.#index.data(length, pack, offset, sha256);
    if (this.done - this.#reported >= PROGRESS_BYTES) {
      this.#reported = this.done;
      this.#onProgress?.(this.#file.title, this.done, this.#file.size);
    }
  }
}

/** A file chunked, and the index its chunks went into. */
interface Built {
  file: ChunkedFileInfo;
  index: IndexBuilder;
}

/**
 * An incremental push fed file by file, each file's bytes written to it as they arrive (the
 * push-driven form of {@link pushChunkedSnapshot}, for a reader that fills one buffer again and
 * again): {@link start} loads the chunks the registry holds, {@link file} takes each file in
 * order, {@link finish} sends the rest and the manifest, {@link dispose} always ends it.
 */
export class ChunkedSnapshotPush {
  readonly #options: ChunkedPushOptions;
  readonly #chunkSize: number;
  readonly #table: ChunkTable;
  readonly #list: PackList;
  readonly #packs: PackWriter;
  readonly #known: KnownChunksReport;
  readonly #built: Built[] = [];
  #open: ByteSink | undefined;

  private constructor(
    options: ChunkedPushOptions,
    table: ChunkTable,
    list: PackList,
    known: KnownChunksReport,
  ) {
    this.#options = options;
    this.#chunkSize = options.chunkSize ?? 8192;
    this.#table = table;
    this.#list = list;
    this.#known = known;
    this.#packs = new PackWriter(
      options.client,
      options.repository,
      list,
      options.packBytes ?? 32 * 1024 * 1024,
      options.onPack,
    );
  }

  /** Loads the chunks of the repository's newest versions and of `bases`. */
  static async start(options: ChunkedPushOptions): Promise<ChunkedSnapshotPush> {
    if ((options.chunkSize ?? 8192) > ZERO.length) throw new RangeError('chunk size above 1 MiB');
    const table = new ChunkTable(options.tableBytes);
    const list = new PackList();
    const known = await loadKnownChunks(
      options.client,
      { table, packs: list },
      options.repository,
      {
        ...(options.bases ? { bases: options.bases } : {}),
        ...(options.latest !== undefined ? { latest: options.latest } : {}),
      },
    );
    return new ChunkedSnapshotPush(options, table, list, known);
  }

  /**
   * The next file: its bytes (the data segments' bytes back to back, for a sparse file) are to
   * be written to the returned sink, which is ended before the next file starts.
   *
   * @throws {RangeError} when the segments overlap or pass the end of the file
   */
  file(file: ChunkedFileInfo): ByteSink {
    if (this.#open) throw new Error('the previous file was not ended');
    const index = new IndexBuilder(this.#chunkSize);
    this.#built.push({ file, index });
    const segments = file.segments ?? (file.size > 0 ? [{ o: 0, l: file.size }] : []);
    const onProgress = this.#options.onProgress;
    const sink = new FileSink(file, index, this.#table, this.#packs, onProgress);
    const cutter = fileChunker(segments, file.size, this.#chunkSize, sink);
    const open: ByteSink = {
      write: (bytes) => cutter.write(bytes),
      end: () => {
        cutter.end();
        this.#open = undefined;
        onProgress?.(file.title, sink.done, file.size);
      },
    };
    this.#open = open;
    return open;
  }

  /**
   * Sends the last pack, mounts packs of other repositories, then the indexes, the config
   * (`config` with `files` and `createdAt` added) and the manifest.
   */
  async finish(config: Record<string, unknown>): Promise<ChunkedPushResult> {
    if (this.#open) throw new Error('the last file was not ended');
    return finishPush(this.#options, config, {
      built: this.#built,
      list: this.#list,
      packs: this.#packs,
      known: this.#known,
    });
  }

  /** Frees the indexes' records. */
  dispose(): void {
    for (const { index } of this.#built) index.dispose();
  }
}

/** What a push gathered, for {@link finishPush}. */
interface Gathered {
  built: Built[];
  list: PackList;
  packs: PackWriter;
  known: KnownChunksReport;
}

async function finishPush(
  options: ChunkedPushOptions,
  configFields: Record<string, unknown>,
  { built, list, packs, known }: Gathered,
): Promise<ChunkedPushResult> {
  const { client, repository } = options;
  await packs.finish();

  // Packs of other repositories are mounted so that the manifest's layers are all readable here.
  const used: number[] = [];
  const seen = new Set<number>();
  for (const { index } of built) {
    for (const p of index.packs) {
      if (seen.has(p)) continue;
      seen.add(p);
      used.push(p);
    }
  }
  let mounted = 0;
  for (const p of used) {
    const pack = list.packs[p];
    if (!pack?.digest) throw new Error('a pack was never sealed');
    if (pack.repository === repository) continue;
    const { digest, size } = pack;
    const from = pack.repository;
    const res = await client.pushBlob(repository, () => client.getBlob(from, digest, { size }), {
      digest,
      size,
      mountFrom: from,
    });
    if (res.how !== 'exists') mounted++;
  }

  let metadataBytesSent = 0;
  const indexLayers: Descriptor[] = [];
  const configFiles: Record<string, Record<string, unknown>> = {};
  const totals = { logical: 0, data: 0, zero: 0, hole: 0 };
  for (const { file, index } of built) {
    const encoded = index.finish((p) => {
      const pack = list.packs[p];
      return { digest: pack?.digest as Digest, size: pack?.size ?? 0 };
    });
    const hash = createHash('sha256');
    for await (const part of encoded.read()) hash.update(part);
    const digest = `sha256:${hash.digest('hex')}` as Digest;
    const { size } = encoded;
    const pushed = await client.pushBlob(repository, () => Readable.from(encoded.read()), {
      digest,
      size,
      monolithic: true,
    });
    if (pushed.how === 'uploaded') metadataBytesSent += size;
    indexLayers.push({
      mediaType: ChunkedMediaTypes.chunkIndex,
      digest,
      size,
      annotations: { [Annotations.title]: file.title },
    });
    configFiles[file.title] = {
      mode: file.mode,
      size: file.size,
      ...(file.sparseMap !== undefined ? { sparseMap: file.sparseMap, sparseSize: file.size } : {}),
    };
    totals.logical += file.size;
    totals.data += index.dataBytes;
    totals.zero += index.zeroBytes;
    totals.hole += index.holeBytes;
  }

  const createdAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const config = { schemaVersion: 'v1', ...configFields, files: configFiles, createdAt };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = digestOf(configBytes);
  const configPush = await client.pushBlob(repository, configBytes, { digest: configDigest });
  if (configPush.how === 'uploaded') metadataBytesSent += configBytes.length;

  const packLayers: Descriptor[] = used.map((p) => {
    const pack = list.packs[p];
    return {
      mediaType: ChunkedMediaTypes.chunkPack,
      digest: pack?.digest as Digest,
      size: pack?.size ?? 0,
    };
  });
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: ChunkedMediaTypes.snapshotArtifact,
    config: {
      mediaType: ChunkedMediaTypes.snapshotConfig,
      digest: configDigest,
      size: configBytes.length,
    },
    layers: [...indexLayers, ...packLayers],
    annotations: { [Annotations.created]: createdAt, ...options.annotations },
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  await options.beforeManifest?.();
  const digest = await client.putManifest(
    repository,
    options.tag,
    manifestBytes,
    MediaTypes.ociManifest,
  );
  metadataBytesSent += manifestBytes.length;
  return {
    digest,
    manifest,
    logicalBytes: totals.logical,
    dataBytes: totals.data,
    zeroBytes: totals.zero,
    holeBytes: totals.hole,
    packs: { ...packs.stats, mounted, total: used.length },
    metadataBytesSent,
    known,
  };
}
