import { EventEmitter } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  chunkedSnapshotLayout,
  classify,
  cloudImageParts,
  DEFAULT_FILE_MODE,
  type Descriptor,
  type Digest,
  ENVELOPE_MODE,
  ENVELOPE_NAME,
  type ImageIndex,
  type ImageManifest,
  importEnvelope,
  OciValidationError,
  parseManifest,
  parseReference,
  parseSnapshotConfig,
  type SnapshotConfig,
  snapshotFiles,
} from '@epoch/oci';
import { RegistryClient } from '../client/client.js';
import { RegistryNetworkError } from '../client/errors.js';
import { ChunkTable } from '../client/incremental/chunk-table.js';
import { fetchBlob } from './blob-fetch.js';
import { type ArtifactRecord, Cache } from './cache.js';
import {
  addLocalChunks,
  addWantedChunks,
  type BaseFile,
  type IndexedFile,
  type LocalChunks,
  localChunks,
  materializeChunkedFile,
} from './chunked-file.js';
import { Limiter } from './limiter.js';
import { SingleFlight } from './single-flight.js';
import type {
  CallOptions,
  EnsureOptions,
  EnsureResult,
  PulledKind,
  PullerEvent,
  PullerOptions,
  PullerStats,
  RemoteEntry,
} from './types.js';

/** The artifact a reference names is not of the kind asked for (e.g. a container image). */
export class PullerKindError extends Error {
  override readonly name = 'PullerKindError';
}

/** {@link Puller.evict} of an artifact an in-flight ensure is using. */
export class PullerBusyError extends Error {
  override readonly name = 'PullerBusyError';
}

const CONFIG_LIMIT = 4 * 1024 * 1024;

/** What assembling one artifact works on: what is pulled, and the directory it is built in. */
interface Assembly {
  ref: string;
  repository: string;
  digest: Digest;
  manifest: ImageManifest;
  /** The cache's temporary directory the files are written to before the commit. */
  temp: string;
  signal: AbortSignal;
}

/** An artifact as its assembler made it, before #commit records it. */
type Assembled = Omit<ArtifactRecord, 'digest' | 'repository' | 'blobs'> & {
  blobs: readonly { digest: string }[];
};

/** A cached file a new version's file starts from, and the artifact it belongs to. */
interface Base {
  artifact: ArtifactRecord;
  file: BaseFile;
}

interface Fetched {
  record: ArtifactRecord;
  transferred: number;
  reused: number;
  config?: SnapshotConfig;
}

/**
 * Delivers snapshots and cloud images to a node on demand (see {@link newPuller}). Emits every
 * {@link PullerEvent} as `'event'`.
 */
export class Puller extends EventEmitter<{ event: [PullerEvent] }> {
  readonly #client: RegistryClient;
  readonly #ownsClient: boolean;
  readonly #cache: Cache;
  readonly #budget: number;
  readonly #limiter: Limiter;
  readonly #options: PullerOptions;
  readonly #artifacts = new SingleFlight<Fetched>();
  readonly #blobs = new SingleFlight<number>();
  /** Artifact and blob digests in use by in-flight ensures: never evicted. */
  readonly #pins = new Map<string, number>();
  readonly #ready: Promise<void>;
  #closed = false;
  readonly #counters = {
    hits: 0,
    misses: 0,
    offlineHits: 0,
    bytesTransferred: 0,
    evictions: 0,
  };

  constructor(options: PullerOptions) {
    super();
    this.#options = options;
    this.#ownsClient = typeof options.registry === 'string';
    this.#client =
      typeof options.registry === 'string'
        ? new RegistryClient({
            url: options.registry,
            retries: options.retries ?? 2,
            ...(options.credentials ? { credentials: options.credentials } : {}),
          })
        : options.registry;
    this.#cache = new Cache(options.cacheDir);
    this.#budget = options.cacheBytes ?? Number.POSITIVE_INFINITY;
    this.#limiter = new Limiter(options.concurrency ?? 8);
    this.#ready = this.#cache.open();
    this.#ready.catch(() => {});
  }

  /** Makes sure a snapshot is on this node; resolves with its materialized files. */
  ensureSnapshot(ref: string, options: EnsureOptions = {}): Promise<EnsureResult> {
    return this.#ensure(ref, 'snapshot', options);
  }

  /** Makes sure a cloud image is on this node; its disk is one file, reassembled from its parts. */
  ensureCloudImage(ref: string, options: EnsureOptions = {}): Promise<EnsureResult> {
    return this.#ensure(ref, 'cloud-image', options);
  }

  /**
   * Ensures several snapshots (or cloud images, `kind`) at once, ahead of need. Never rejects:
   * each reference settles on its own.
   */
  preWarm(
    refs: readonly string[],
    options: CallOptions & { kind?: PulledKind } = {},
  ): Promise<PromiseSettledResult<EnsureResult>[]> {
    const kind = options.kind ?? 'snapshot';
    return Promise.allSettled(refs.map((ref) => this.#ensure(ref, kind, options)));
  }

  /** Repositories of the registry (optionally those starting with `prefix`) with their tags. */
  async listRemote(prefix = '', options: CallOptions = {}): Promise<RemoteEntry[]> {
    const out: RemoteEntry[] = [];
    for (const repository of await this.#client.catalog()) {
      options.signal?.throwIfAborted();
      if (!repository.startsWith(prefix)) continue;
      out.push({ repository, tags: await this.#client.listTags(repository) });
    }
    return out;
  }

  /**
   * Removes an artifact (by manifest digest, or by a reference it was last resolved from) and
   * the blobs no other artifact uses. Refuses while an ensure uses it.
   *
   * @returns whether something was removed
   */
  async evict(refOrDigest: string, options: CallOptions = {}): Promise<boolean> {
    await this.#ready;
    options.signal?.throwIfAborted();
    const digest = refOrDigest.startsWith('sha256:')
      ? (refOrDigest as Digest)
      : this.#cache.resolvedDigest(keyOf(refOrDigest));
    if (!digest || !(await this.#cache.artifact(digest))) return false;
    if (this.#pins.has(digest)) throw new PullerBusyError(`${refOrDigest} is in use by an ensure`);
    await this.#removeArtifacts([digest]);
    await this.#cache.save();
    return true;
  }

  /** Cache and transfer counters. */
  async stats(): Promise<PullerStats> {
    await this.#ready;
    const { bytes, artifacts, blobs } = await this.#usage();
    return {
      ...this.#counters,
      cacheBytes: bytes,
      cacheBudget: this.#budget,
      artifacts: artifacts.length,
      blobs: blobs.size,
      inFlight: this.#artifacts.keys.length,
    };
  }

  /** Closes the client's connections if the puller made the client. */
  async close(): Promise<void> {
    if (!this.#ownsClient || this.#closed) return;
    this.#closed = true;
    await this.#client.close();
  }

  async #ensure(ref: string, kind: PulledKind, options: EnsureOptions): Promise<EnsureResult> {
    const started = performance.now();
    const signal = options.signal;
    await this.#ready;
    signal?.throwIfAborted();
    const parsed = parseReference(ref);
    const repository = parsed.name;
    const key = parsed.digest ? undefined : `${repository}:${parsed.tag ?? 'latest'}`;
    let digest: Digest;
    let offline = false;
    try {
      digest = parsed.digest ?? (await this.#resolve(repository, parsed.tag ?? 'latest'));
    } catch (err) {
      const cached = key ? this.#cache.resolvedDigest(key) : undefined;
      if (
        !(err instanceof RegistryNetworkError) ||
        !cached ||
        !(await this.#cache.artifact(cached))
      ) {
        throw err;
      }
      digest = cached;
      offline = true;
      this.#emit({ type: 'offline', ref, digest, error: err });
    }
    if (!offline) this.#emit({ type: 'resolved', ref, digest });
    signal?.throwIfAborted();
    const localName =
      options.localName ??
      (parsed.tag && parsed.tag !== 'latest' ? `${repository}:${parsed.tag}` : repository);

    this.#pin(digest);
    try {
      let record = await this.#cache.artifact(digest);
      let transferred = 0;
      let reused = 0;
      const cached = record !== undefined;
      let config: SnapshotConfig | undefined;
      if (!record) {
        const flight = this.#artifacts.run(digest, signal, (s) =>
          this.#fetchArtifact(ref, repository, digest, kind, options.platform, s),
        );
        const fetched = await flight.promise;
        record = fetched.record;
        config = fetched.config;
        if (!flight.joined) {
          transferred = fetched.transferred;
          reused = fetched.reused;
        } else {
          reused = fetched.transferred + fetched.reused;
        }
      } else {
        reused = record.files.reduce((sum, f) => sum + (f.digest ? f.size : 0), 0);
      }
      if (record.kind !== kind) {
        throw new PullerKindError(`${ref} is a ${record.kind}, not a ${kind}`);
      }
      let importName = this.#cache.importedAs(digest);
      if (this.#options.importer && importName === undefined) {
        importName = await this.#import(record, localName, config, signal);
      }
      await this.#cache.touch(digest, key, importName);
      if (cached) {
        if (offline) this.#counters.offlineHits++;
        else this.#counters.hits++;
      } else this.#counters.misses++;
      const dir = this.#cache.artifactDir(digest);
      const result: EnsureResult = {
        ref,
        repository,
        digest,
        kind,
        dir,
        files: record.files.map((f) => ({ ...f, path: join(dir, f.name) })),
        bytesTransferred: transferred,
        bytesReused: reused,
        cached,
        offline,
        durationMs: performance.now() - started,
        ...(importName !== undefined ? { importName } : {}),
      };
      await this.#enforceBudget();
      return result;
    } finally {
      this.#unpin(digest);
    }
  }

  /** Tag → digest, by HEAD (a GET only if the registry names no digest). */
  async #resolve(repository: string, tag: string): Promise<Digest> {
    const head = await this.#client.headManifest(repository, tag);
    if (head.digest) return head.digest;
    return (await this.#client.getManifest(repository, tag)).digest;
  }

  async #import(
    record: ArtifactRecord,
    name: string,
    config: SnapshotConfig | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const importer = this.#options.importer;
    if (!importer) return name;
    // One import per digest, shared like the transfer.
    const flight = this.#artifacts.run(`import:${record.digest}`, signal, async (s) => {
      const dir = this.#cache.artifactDir(record.digest);
      let snapshotConfig = config;
      if (record.kind === 'snapshot' && !snapshotConfig) {
        snapshotConfig = parseSnapshotConfig(await readSmall(join(dir, '.epoch-config.json')));
      }
      const imported = await importer.import({
        kind: record.kind,
        repository: record.repository,
        digest: record.digest,
        name,
        files: record.files.map((f) => ({ ...f, path: join(dir, f.name) })),
        ...(snapshotConfig ? { config: snapshotConfig } : {}),
        signal: s,
      });
      return { record, transferred: 0, reused: 0, importName: imported } as Fetched & {
        importName: string;
      };
    });
    return ((await flight.promise) as Fetched & { importName: string }).importName;
  }

  async #fetchArtifact(
    ref: string,
    repository: string,
    digest: Digest,
    kind: PulledKind,
    platform: string | undefined,
    signal: AbortSignal,
  ): Promise<Fetched> {
    let fetched = await this.#client.getManifest(repository, digest);
    let parsed = parseManifest(fetched.bytes, fetched.mediaType);
    if (parsed.kind === 'index') {
      const child = pickPlatform(parsed.manifest, platform);
      if (!child)
        throw new PullerKindError(`${ref}: no ${platform ?? 'linux/amd64'} manifest in the index`);
      fetched = await this.#client.getManifest(repository, child.digest);
      parsed = parseManifest(fetched.bytes, fetched.mediaType);
    }
    signal.throwIfAborted();
    const found = classify(parsed);
    // An incremental snapshot is a snapshot to its user: only the transfer differs.
    const chunked = found === 'chunked-snapshot' && kind === 'snapshot';
    if ((found !== kind && !chunked) || parsed.kind !== 'manifest') {
      throw new PullerKindError(`${ref} is a ${found}, not a ${kind}`);
    }
    const manifest = parsed.manifest;
    const temp = await this.#cache.tempDir();
    try {
      await writeFile(join(temp, '.epoch-manifest.json'), fetched.bytes);
      const job: Assembly = { ref, repository, digest, manifest, temp, signal };
      if (chunked) return await this.#assembleChunkedSnapshot(job);
      if (kind === 'snapshot') return await this.#assembleSnapshot(job);
      return await this.#assembleCloudImage(job);
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
  }

  async #assembleSnapshot(job: Assembly): Promise<Fetched> {
    const { ref, repository, digest, manifest, temp, signal } = job;
    const config = await this.#snapshotConfig(job);
    const layerFiles = usable(ref, () => snapshotFiles(manifest, config));
    const { transferred, reused } = await this.#fetchBlobs(
      repository,
      digest,
      manifest.layers,
      signal,
    );
    const files = [await writeEnvelope(temp, config)];
    for (const { layer, ...file } of layerFiles) {
      await link(this.#cache.blobPath(layer.digest as Digest), join(temp, file.name));
      files.push({ ...file, digest: layer.digest as Digest });
    }
    const record = await this.#commit(
      job,
      { kind: 'snapshot', blobs: manifest.layers, ownBytes: 0, files },
      transferred,
    );
    return { record, transferred, reused, config };
  }

  /**
   * An incremental snapshot: its chunk indexes come into the cache as blobs, then each file is
   * written from them, taking every chunk a cached artifact already holds from disk and
   * fetching only the others (`materializeChunkedFile`). The artifacts lent chunks are pinned
   * meanwhile, so no eviction pulls a file from under the copy. With `updateInPlace`, the
   * artifacts the files start from are taken over instead, when nothing else uses them.
   */
  async #assembleChunkedSnapshot(job: Assembly): Promise<Fetched> {
    const { ref, repository, digest, manifest, temp, signal } = job;
    const config = await this.#snapshotConfig(job);
    const layout = usable(ref, () => chunkedSnapshotLayout(manifest));
    let taken = new Map<Digest, string>();
    const indexes = layout.files.map((f) => f.index);
    // Pinned from before their download until the record names them.
    for (const index of indexes) this.#pin(index.digest);
    const lenders = (await this.#cache.artifacts()).filter((a) => a.chunked);
    for (const a of lenders) this.#pin(a.digest);
    try {
      const fetchedIndexes = await this.#fetchBlobs(repository, digest, indexes, signal);
      let transferred = fetchedIndexes.transferred;
      let reused = fetchedIndexes.reused;
      const present = await this.#present(lenders);
      const bases = layout.files.map((file) => this.#baseFile(present, file.title));
      taken = await this.#takeBases(bases);
      const sources: IndexedFile[] = layout.files.map((file, i) => {
        const base = bases[i];
        const indexPath = this.#cache.blobPath(file.index.digest as Digest);
        if (!base) return { indexPath };
        const dir = taken.get(base.artifact.digest);
        return {
          indexPath,
          base: dir
            ? { ...base.file, path: join(dir, file.title), inPlace: true }
            : { ...base.file },
        };
      });
      const local = await this.#localChunks(
        present.filter((a) => !taken.has(a.digest)),
        sources,
      );
      const files = [await writeEnvelope(temp, config)];
      let ownBytes = 0;
      for (const [i, file] of layout.files.entries()) {
        const source = sources[i] as IndexedFile;
        const done = await materializeChunkedFile({
          client: this.#client,
          repository,
          layout,
          ...source,
          indexSize: file.index.size,
          title: file.title,
          target: join(temp, file.title),
          local,
          limiter: this.#limiter,
          rangeBytes: 8 * 1024 * 1024,
          attempts: this.#options.attempts ?? 3,
          signal,
          onBytes: (n) => {
            this.#counters.bytesTransferred += n;
          },
          onRejected: (attempt, error) =>
            this.#emit({
              type: 'blob-rejected',
              blob: file.index.digest as Digest,
              attempt,
              error,
            }),
        });
        transferred += done.transferred;
        reused += done.reused;
        ownBytes += done.stored;
        files.push({
          name: file.title,
          size: done.stored,
          mode: config.files?.[file.title]?.mode ?? DEFAULT_FILE_MODE,
          ...(done.holeBytes > 0 ? { sparse: { map: done.segments, size: done.logicalSize } } : {}),
        });
      }
      const chunked = layout.files.map((f) => ({ file: f.title, index: f.index.digest as Digest }));
      const record = await this.#commit(
        job,
        { kind: 'snapshot', blobs: indexes, ownBytes, files, chunked },
        transferred,
      );
      return { record, transferred, reused, config };
    } finally {
      for (const dir of taken.values()) await rm(dir, { recursive: true, force: true });
      const released = lenders.filter((a) => taken.has(a.digest));
      for (const a of released) for (const blob of a.blobs) this.#unpin(blob);
      for (const a of lenders) this.#unpin(a.digest);
      for (const index of indexes) this.#unpin(index.digest);
      if (released.length > 0) await this.#released(released);
    }
  }

  /**
   * With `updateInPlace`, takes out of the cache each artifact a new file starts from that no
   * other ensure is using (only this assembly's own pin on it): its files become the new
   * version's. One in use is lent from, as without the option.
   *
   * @returns the directories now holding the taken artifacts' files, by artifact digest
   */
  async #takeBases(bases: (Base | undefined)[]): Promise<Map<Digest, string>> {
    const taken = new Map<Digest, string>();
    if (!this.#options.updateInPlace) return taken;
    for (const base of bases) {
      const digest = base?.artifact.digest;
      if (!digest || taken.has(digest) || this.#pins.get(digest) !== 1) continue;
      const dir = await this.#cache.takeArtifact(digest);
      if (!dir) continue;
      taken.set(digest, dir);
      // Its chunk indexes are read on while no artifact names them any more.
      for (const blob of base.artifact.blobs) this.#pin(blob);
    }
    return taken;
  }

  /**
   * Frees the blobs of artifacts taken over that no artifact in the cache still uses (their
   * chunk indexes), and says that they left the cache.
   */
  async #released(artifacts: ArtifactRecord[]): Promise<void> {
    const kept = new Set((await this.#cache.artifacts()).flatMap((a) => a.blobs));
    const blobs = await this.#cache.blobs();
    for (const a of artifacts) {
      let freed = 0;
      for (const blob of new Set(a.blobs)) {
        if (kept.has(blob) || this.#pins.has(blob) || !blobs.has(blob)) continue;
        freed += blobs.get(blob) ?? 0;
        await this.#cache.removeBlob(blob);
        kept.add(blob);
      }
      this.#counters.evictions++;
      this.#emit({ type: 'evicted', digest: a.digest, bytes: freed });
    }
    await this.#cache.save();
  }

  /**
   * Records what an assembler made (`blobs`: the blobs its files come from), moves it from its
   * temporary directory into the cache, and says so.
   */
  async #commit(job: Assembly, made: Assembled, transferred: number): Promise<ArtifactRecord> {
    const { kind, blobs, ownBytes, files, chunked } = made;
    const record: ArtifactRecord = {
      digest: job.digest,
      repository: job.repository,
      kind,
      blobs: blobs.map((b) => b.digest as Digest),
      ownBytes,
      files,
      ...(chunked ? { chunked } : {}),
    };
    await this.#cache.commitArtifact(job.temp, record);
    this.#emit({
      type: 'materialized',
      ref: job.ref,
      digest: job.digest,
      bytesTransferred: transferred,
    });
    return record;
  }

  /** A snapshot's config, parsed, and kept beside the artifact for a later import. */
  async #snapshotConfig({ repository, manifest, temp, signal }: Assembly): Promise<SnapshotConfig> {
    const bytes = await this.#smallBlob(repository, manifest.config, signal);
    const config = parseSnapshotConfig(bytes);
    await writeFile(join(temp, '.epoch-config.json'), bytes);
    return config;
  }

  /**
   * The same-named file of the most recently used lender, to start the new file from: memory
   * does not shift between versions, so most of it is already right where it is.
   */
  #baseFile(lenders: ArtifactRecord[], title: string): Base | undefined {
    let best: { a: ArtifactRecord; index: Digest } | undefined;
    for (const a of lenders) {
      const entry = a.chunked?.find((c) => c.file === title);
      if (!entry) continue;
      if (!best || this.#cache.lastUsed(a.digest) > this.#cache.lastUsed(best.a.digest)) {
        best = { a, index: entry.index };
      }
    }
    if (!best) return undefined;
    const path = join(this.#cache.artifactDir(best.a.digest), title);
    return { artifact: best.a, file: { path, indexPath: this.#cache.blobPath(best.index) } };
  }

  /** The lenders still in the cache (one evicted before it was pinned lends nothing). */
  async #present(lenders: ArtifactRecord[]): Promise<ArtifactRecord[]> {
    const present: ArtifactRecord[] = [];
    for (const a of lenders) if (await this.#cache.artifact(a.digest)) present.push(a);
    return present;
  }

  /**
   * Where the cached artifacts `lenders` hold the chunks the new files need beyond what their
   * bases hold in place, by sha256.
   */
  async #localChunks(lenders: ArtifactRecord[], files: IndexedFile[]): Promise<LocalChunks> {
    const local = localChunks();
    if (lenders.length === 0) return local;
    const wanted = new ChunkTable();
    for (const file of files) await addWantedChunks(wanted, file);
    if (wanted.size === 0) return local;
    for (const a of lenders) {
      for (const { file, index } of a.chunked ?? []) {
        const path = join(this.#cache.artifactDir(a.digest), file);
        await addLocalChunks(local, wanted, this.#cache.blobPath(index), path);
      }
    }
    return local;
  }

  async #assembleCloudImage(job: Assembly): Promise<Fetched> {
    const { ref, repository, digest, manifest, temp, signal } = job;
    const parts = cloudImageParts(manifest);
    if (parts.length === 0) throw new PullerKindError(`${ref}: the cloud image has no disk layers`);
    const { transferred, reused } = await this.#fetchBlobs(repository, digest, parts, signal);
    const name = parts.some((p) => p.mediaType.includes('raw')) ? 'disk.raw' : 'disk.qcow2';
    const target = join(temp, name);
    let ownBytes = 0;
    if (parts.length === 1) {
      await link(this.#cache.blobPath(parts[0]?.digest as Digest), target);
    } else {
      // Parts are verified blobs; the concatenation is a copy the cache accounts for.
      const out = createWriteStream(target);
      for (const part of parts) {
        await pipeline(createReadStream(this.#cache.blobPath(part.digest as Digest)), out, {
          end: false,
          signal,
        });
      }
      await new Promise<void>((resolve, reject) =>
        out.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
      ownBytes = parts.reduce((sum, p) => sum + p.size, 0);
    }
    const size = parts.reduce((sum, p) => sum + p.size, 0);
    const file = {
      name,
      size,
      ...(parts.length === 1 ? { digest: parts[0]?.digest as Digest } : {}),
    };
    const record = await this.#commit(
      job,
      { kind: 'cloud-image', blobs: parts, ownBytes, files: [file] },
      transferred,
    );
    return { record, transferred, reused };
  }

  /** Each distinct blob once, shared with any other transfer needing it, pinned meanwhile. */
  async #fetchBlobs(
    repository: string,
    artifact: Digest,
    layers: readonly Descriptor[],
    signal: AbortSignal,
  ): Promise<{ transferred: number; reused: number }> {
    const unique = new Map(layers.map((l) => [l.digest, l.size]));
    for (const blob of unique.keys()) this.#pin(blob);
    try {
      let transferred = 0;
      let reused = 0;
      await Promise.all(
        [...unique].map(async ([blob, size]) => {
          let received = 0;
          const flight = this.#blobs.run(blob, signal, (s) =>
            fetchBlob(
              {
                client: this.#client,
                cache: this.#cache,
                limiter: this.#limiter,
                chunkBytes: this.#options.chunkBytes ?? 32 * 1024 * 1024,
                attempts: this.#options.attempts ?? 3,
                resumes: this.#options.resumes ?? 5,
                onBytes: (n) => {
                  received += n;
                  this.#counters.bytesTransferred += n;
                  this.#emit({
                    type: 'progress',
                    digest: artifact,
                    blob: blob as Digest,
                    bytes: received,
                    total: size,
                  });
                },
                onRejected: (attempt, error) =>
                  this.#emit({ type: 'blob-rejected', blob: blob as Digest, attempt, error }),
              },
              repository,
              blob as Digest,
              size,
              s,
            ),
          );
          const got = await flight.promise;
          if (flight.joined || got === 0) reused += size;
          else transferred += got;
        }),
      );
      return { transferred, reused };
    } finally {
      for (const blob of unique.keys()) this.#unpin(blob);
    }
  }

  async #smallBlob(
    repository: string,
    descriptor: Descriptor,
    signal: AbortSignal,
  ): Promise<Buffer> {
    if (descriptor.size > CONFIG_LIMIT)
      throw new PullerKindError(`config ${descriptor.digest} is too large`);
    const chunks: Buffer[] = [];
    for await (const chunk of this.#client.getBlob(repository, descriptor.digest, {
      size: descriptor.size,
      signal,
    })) {
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  async #usage(): Promise<{
    bytes: number;
    artifacts: ArtifactRecord[];
    blobs: Map<Digest, number>;
  }> {
    const artifacts = await this.#cache.artifacts();
    const blobs = await this.#cache.blobs();
    let bytes = 0;
    for (const size of blobs.values()) bytes += size;
    for (const a of artifacts) bytes += a.ownBytes;
    return { bytes, artifacts, blobs };
  }

  /** Evicts least recently used artifacts not in use until the cache fits its budget. */
  async #enforceBudget(): Promise<void> {
    if (!Number.isFinite(this.#budget)) return;
    const { bytes, artifacts, blobs } = await this.#usage();
    if (bytes <= this.#budget) return;
    let over = bytes - this.#budget;
    // Orphan blobs first (left by an interrupted ensure), then artifacts, oldest first.
    const referenced = new Set(artifacts.flatMap((a) => a.blobs));
    for (const [blob, size] of blobs) {
      if (over <= 0) break;
      if (!referenced.has(blob) && !this.#pins.has(blob)) {
        await this.#cache.removeBlob(blob);
        over -= size;
      }
    }
    const candidates = artifacts
      .filter((a) => !this.#pins.has(a.digest))
      .sort((a, b) => this.#cache.lastUsed(a.digest) - this.#cache.lastUsed(b.digest));
    const doomed: Digest[] = [];
    const remaining = new Map(artifacts.map((a) => [a.digest, a]));
    for (const a of candidates) {
      if (over <= 0) break;
      doomed.push(a.digest);
      remaining.delete(a.digest);
      const still = new Set([...remaining.values()].flatMap((r) => r.blobs));
      over -= a.ownBytes;
      for (const blob of new Set(a.blobs)) {
        if (!still.has(blob) && !this.#pins.has(blob)) over -= blobs.get(blob) ?? 0;
      }
    }
    if (doomed.length > 0) {
      await this.#removeArtifacts(doomed);
      await this.#cache.save();
    }
  }

  async #removeArtifacts(digests: Digest[]): Promise<void> {
    const artifacts = await this.#cache.artifacts();
    const doomed = new Set(digests);
    const kept = new Set(artifacts.filter((a) => !doomed.has(a.digest)).flatMap((a) => a.blobs));
    const blobs = await this.#cache.blobs();
    for (const a of artifacts) {
      if (!doomed.has(a.digest)) continue;
      await this.#cache.removeArtifact(a.digest);
      let freed = a.ownBytes;
      for (const blob of new Set(a.blobs)) {
        if (kept.has(blob) || this.#pins.has(blob)) continue;
        freed += blobs.get(blob) ?? 0;
        await this.#cache.removeBlob(blob);
        kept.add(blob);
      }
      this.#counters.evictions++;
      this.#emit({ type: 'evicted', digest: a.digest, bytes: freed });
    }
  }

  #pin(key: string): void {
    this.#pins.set(key, (this.#pins.get(key) ?? 0) + 1);
  }

  #unpin(key: string): void {
    const n = (this.#pins.get(key) ?? 1) - 1;
    if (n <= 0) this.#pins.delete(key);
    else this.#pins.set(key, n);
  }

  #emit(event: PullerEvent): void {
    this.emit('event', event);
  }
}

/** `read()`, with a snapshot the format refuses reported as the wrong kind of artifact. */
function usable<T>(ref: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof OciValidationError)) throw err;
    throw new PullerKindError(`${ref}: not a usable snapshot: ${err.message}`);
  }
}

/** Writes `snapshot.json` (the import envelope rebuilt from `config`); its file record. */
async function writeEnvelope(
  temp: string,
  config: SnapshotConfig,
): Promise<ArtifactRecord['files'][number]> {
  const envelope = importEnvelope(config, {});
  await writeFile(join(temp, ENVELOPE_NAME), envelope);
  return { name: ENVELOPE_NAME, size: envelope.length, mode: ENVELOPE_MODE };
}

function keyOf(ref: string): string {
  const parsed = parseReference(ref);
  return `${parsed.name}:${parsed.tag ?? 'latest'}`;
}

function pickPlatform(index: ImageIndex, platform: string | undefined): Descriptor | undefined {
  const [os, architecture] = (platform ?? 'linux/amd64').split('/');
  return (
    index.manifests.find(
      (d) => d.platform?.os === os && d.platform?.architecture === architecture,
    ) ??
    (platform === undefined
      ? index.manifests.find((d) => (d.platform?.architecture ?? 'unknown') !== 'unknown')
      : undefined)
  );
}

async function readSmall(path: string): Promise<Buffer> {
  const { readFile } = await import('node:fs/promises');
  return readFile(path);
}

/**
 * Creates a puller: the node-side component that makes sure the snapshot or cloud image a VM
 * needs is on this node before it starts, from a content-addressed cache kept within a byte
 * budget. Tags are resolved on every call; transfers are shared, verified, resumable and
 * parallel (see the package README).
 */
export function newPuller(options: PullerOptions): Puller {
  return new Puller(options);
}

/** {@link newPuller} under the name upstream's Go users know. */
export const NewPuller = newPuller;
