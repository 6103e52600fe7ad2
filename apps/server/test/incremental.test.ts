import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  ChunkedMediaTypes,
  chunkedSnapshotLayout,
  DigestMismatchError,
  type ImageManifest,
  parseManifest,
  type SparseSegment,
} from '@epoch/oci';
import { type EnsureResult, Layout, newPuller } from '@epoch/registry';
import {
  type BlobSource,
  type ChunkedFileInput,
  ChunkVerificationError,
  chunkedFileBytes,
  chunkedFileMap,
  clientBlobs,
  type GetBlobOptions,
  type PushBlobOptions,
  type PushBlobResult,
  pushChunkedSnapshot,
  RegistryClient,
} from '@epoch/registry/client';
import { startDockerRegistry } from '@epoch/test-support/docker-registry';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support/server.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A file as the test knows it: logical bytes and its data segments (the rest is holes). */
interface TestFile {
  title: string;
  bytes: Buffer;
  segments: SparseSegment[] | undefined;
}

/** Version 1: a sparse memory file (with an all-zero chunk inside data), a disk, a small file, an empty file. */
function version1(): TestFile[] {
  const mem = Buffer.alloc(8 * MiB);
  const segments: SparseSegment[] = [
    { o: 0, l: 1 * MiB },
    { o: 3 * MiB + 4 * KiB, l: 1 * MiB + 100 }, // unaligned start and end
    { o: 6 * MiB, l: 2 * MiB },
  ];
  for (const s of segments) randomBytes(s.l).copy(mem, s.o);
  mem.fill(0, 6 * MiB + 64 * KiB, 6 * MiB + 80 * KiB); // zero chunks inside data: recorded, not stored
  return [
    { title: 'config.json', bytes: Buffer.from('{"cpus":{"boot_vcpus":2}}'), segments: undefined },
    { title: 'memory-ranges', bytes: mem, segments },
    { title: 'overlay.qcow2', bytes: randomBytes(3 * MiB), segments: undefined },
    { title: 'empty', bytes: Buffer.alloc(0), segments: undefined },
  ];
}

/** The next version: some single pages and one run rewritten in memory data, the disk grows. */
function nextVersion(files: TestFile[], seed: number): TestFile[] {
  return files.map((f) => {
    if (f.title === 'memory-ranges') {
      const bytes = Buffer.from(f.bytes);
      const pages = [0, 5, 17, 200].map((p) => p + seed);
      for (const p of pages) randomBytes(4 * KiB).copy(bytes, p * 4 * KiB);
      randomBytes(128 * KiB).copy(bytes, 6 * MiB + 512 * KiB + seed * 8 * KiB);
      return { ...f, bytes };
    }
    if (f.title === 'overlay.qcow2') {
      const bytes = Buffer.concat([f.bytes, randomBytes(256 * KiB)]);
      randomBytes(4 * KiB).copy(bytes, 0); // the header cluster
      return { ...f, bytes };
    }
    return f;
  });
}

function segmentsOf(f: TestFile): SparseSegment[] {
  return f.segments ?? (f.bytes.length > 0 ? [{ o: 0, l: f.bytes.length }] : []);
}

async function* inputs(files: TestFile[]): AsyncGenerator<ChunkedFileInput> {
  for (const f of files) {
    const segments = segmentsOf(f);
    async function* body() {
      for (const s of segments) {
        // odd piece sizes: chunk boundaries never line up with stream buffers
        for (let at = s.o; at < s.o + s.l; at += 100_003)
          yield f.bytes.subarray(at, Math.min(at + 100_003, s.o + s.l));
      }
    }
    yield {
      title: f.title,
      mode: 0o640,
      size: f.bytes.length,
      ...(f.segments ? { segments: f.segments, sparseMap: JSON.stringify(f.segments) } : {}),
      body: body(),
    };
  }
}

/** A client that counts what it really uploads, per digest, and can be made to fail. */
class CountingClient extends RegistryClient {
  readonly uploads = new Map<string, number>();
  failAfterUploads = Number.POSITIVE_INFINITY;
  override async pushBlob(
    name: string,
    source: BlobSource,
    options: PushBlobOptions = {},
  ): Promise<PushBlobResult> {
    if (this.uploads.size >= this.failAfterUploads) throw new Error('connection lost (test)');
    const res = await super.pushBlob(name, source, options);
    if (res.how === 'uploaded')
      this.uploads.set(res.digest, (this.uploads.get(res.digest) ?? 0) + 1);
    return res;
  }
}

async function readBack(client: RegistryClient, repo: string, reference: string) {
  const fetched = await client.getManifest(repo, reference);
  const parsed = parseManifest(fetched.bytes, fetched.mediaType);
  const manifest = parsed.manifest as ImageManifest;
  const layout = chunkedSnapshotLayout(manifest);
  const out: { title: string; logical: Buffer; segments: SparseSegment[] }[] = [];
  for (const file of layout.files) {
    const source = {
      blobs: clientBlobs(client, repo),
      layout,
      index: file.index,
      title: file.title,
    };
    const { header, segments } = await chunkedFileMap(source);
    const logical = Buffer.alloc(header.fileSize);
    const parts: Buffer[] = [];
    for await (const b of chunkedFileBytes(source, { rangeBytes: 64 * KiB }))
      parts.push(Buffer.from(b));
    const data = Buffer.concat(parts);
    let at = 0;
    for (const s of segments) {
      data.copy(logical, s.o, at, at + s.l);
      at += s.l;
    }
    expect(at).toBe(data.length);
    out.push({ title: file.title, logical, segments });
  }
  return { manifest, layout, files: out };
}

/** A client that counts the blob bytes it reads. */
class ReadCountingClient extends RegistryClient {
  bytes = 0;
  gets = 0;
  override getBlob(name: string, digest: string, options: GetBlobOptions = {}): Readable {
    this.gets++;
    const source = super.getBlob(name, digest, options);
    const counted = async function* (self: ReadCountingClient) {
      for await (const b of source) {
        self.bytes += (b as Buffer).length;
        yield b as Buffer;
      }
    };
    return Readable.from(counted(this), { objectMode: false });
  }
}

/** The puller's files are the snapshot's: data segments back to back, the map, the modes. */
async function expectMaterialized(result: EnsureResult, files: TestFile[]) {
  expect(result.kind).toBe('snapshot');
  expect(result.files.map((f) => f.name)).toEqual(['snapshot.json', ...files.map((f) => f.title)]);
  for (const f of files) {
    const got = result.files.find((x) => x.name === f.title);
    if (!got) throw new Error(`no ${f.title}`);
    const stored = await readFile(got.path);
    const segments = segmentsOf(f);
    expect(got.mode).toBe(0o640);
    if (f.segments) expect(got.sparse).toEqual({ map: segments, size: f.bytes.length });
    else expect(got.sparse).toBeUndefined();
    const packed = Buffer.concat(segments.map((s) => f.bytes.subarray(s.o, s.o + s.l)));
    expect(stored.equals(packed), `${f.title} byte-exact`).toBe(true);
  }
}

/** Pushes each of `versions` as v1, v2, … in 1 MiB packs. */
async function pushVersions(client: RegistryClient, repository: string, versions: TestFile[][]) {
  for (const [i, files] of versions.entries()) {
    await pushChunkedSnapshot(inputs(files), {
      client,
      repository,
      tag: `v${i + 1}`,
      config: {},
      packBytes: 1 * MiB,
    });
  }
}

const REFLINK_DIR = process.env.EPOCH_TEST_REFLINK_DIR;

/** Whether any extent of a file is shared with another file (FIEMAP, as filefrag reads it). */
async function sharedExtents(path: string): Promise<boolean> {
  const { stdout } = await promisify(execFile)('filefrag', ['-v', path]);
  return /\bshared\b/.test(stdout);
}

/** Where the puller put a result's memory file. */
function memory(r: EnsureResult): string {
  return r.files.find((f) => f.name === 'memory-ranges')?.path ?? '';
}

function expectSame(read: Awaited<ReturnType<typeof readBack>>, files: TestFile[]) {
  expect(read.files.map((f) => f.title)).toEqual(files.map((f) => f.title));
  for (const [i, f] of files.entries()) {
    const got = read.files[i];
    expect(got?.logical.equals(f.bytes), `${f.title} byte-exact`).toBe(true);
    // holes exactly where the source had them: the reader's map is the data segments
    expect(got?.segments).toEqual(segmentsOf(f));
  }
}

// Each test moves tens of MiB through the server (and the in-process S3 server, on the same
// cores): minutes on a loaded 2-core machine, where the suite's 60 s default ran out once.
describe.each(backends)('incremental snapshots on %s', { timeout: 240_000 }, (backend) => {
  let t: TestServer;
  let token: string;
  const client = () => new CountingClient({ url: t.url, credentials: { token } });

  beforeAll(async () => {
    t = await startTestServer(backend, { EPOCH_GC_DELAY: '0' });
    token = await t.token();
  }, 60_000);
  afterAll(async () => {
    await t.stop();
  });

  it('round-trips several versions byte-exact with holes, sending only new chunks', async () => {
    const c = client();
    const versions = [version1()];
    for (let v = 1; v < 4; v++) versions.push(nextVersion(versions[v - 1] as TestFile[], v));
    const results = [];
    for (const [i, files] of versions.entries()) {
      results.push(
        await pushChunkedSnapshot(inputs(files), {
          client: c,
          repository: 'inc/vm',
          tag: `v${i + 1}`,
          config: { hypervisor: 'cloud-hypervisor' },
          packBytes: 1 * MiB,
        }),
      );
    }
    for (const [i, files] of versions.entries())
      expectSame(await readBack(c, 'inc/vm', `v${i + 1}`), files);
    const [r1, r2] = results;
    // the all-zero 16 KiB inside memory data is recorded, never stored
    expect(r1?.zeroBytes).toBe(16 * KiB);
    expect(r1?.holeBytes).toBe(8 * MiB - (1 * MiB + 1 * MiB + 100 + 2 * MiB));
    // version 2 changed 4 single pages + 128 KiB of memory and 4 KiB + 256 KiB of disk: the
    // new chunks are those pages rounded to 8 KiB, far from a full push
    expect(r2?.packs.newChunkBytes).toBeLessThanOrEqual(
      4 * 8 * KiB + 136 * KiB + 8 * KiB + 256 * KiB,
    );
    expect(r2?.packs.bytesSent).toBe(r2?.packs.newChunkBytes);
    expect(r2?.known.versions.length).toBe(1);
    // /api/ tells what each version costs against the one before
    const api = new RawClient(t.url, { Authorization: `Bearer ${token}` });
    const detail = async (tag: string) =>
      (await (await api.fetch(`/api/repositories/inc/vm/tags/${tag}`)).json()) as {
        kind: string;
        incremental: {
          logicalBytes: number;
          storedBytes: number;
          sharedBytes: number;
          newBytes: number;
          previous?: { tag: string };
        };
      };
    const first = await detail('v1');
    expect(first.kind).toBe('chunked-snapshot');
    expect(first.incremental.previous).toBeUndefined();
    expect(first.incremental.newBytes).toBe(first.incremental.storedBytes);
    const second = await detail('v2');
    const logical = versions[1]?.reduce((sum, f) => sum + f.bytes.length, 0);
    expect(second.incremental.logicalBytes).toBe(logical);
    expect(second.incremental.previous?.tag).toBe('v1');
    const m1 = (await readBack(c, 'inc/vm', 'v1')).manifest;
    const m2 = (await readBack(c, 'inc/vm', 'v2')).manifest;
    const inV1 = new Set(m1.layers.map((l) => l.digest));
    const added = m2.layers.filter((l) => !inV1.has(l.digest)).reduce((n, l) => n + l.size, 0);
    expect(second.incremental.newBytes).toBe(added);
    expect(second.incremental.sharedBytes).toBe(second.incremental.storedBytes - added);
    expect(second.incremental.sharedBytes).toBeGreaterThan(second.incremental.newBytes);
    // every pack a version needs is a layer of its manifest (GC and copies depend on it)
    const m4 = (await readBack(c, 'inc/vm', 'v4')).manifest;
    expect(m4.layers.filter((l) => l.mediaType === ChunkedMediaTypes.chunkPack).length).toBe(
      results[3]?.packs.total,
    );
  });

  it('an interrupted push, retried, sends no pack twice', async () => {
    const files = version1();
    const big = files.map((f) =>
      f.title === 'overlay.qcow2' ? { ...f, bytes: randomBytes(6 * MiB) } : f,
    );
    const c = client();
    c.failAfterUploads = 3;
    await expect(
      pushChunkedSnapshot(inputs(big), {
        client: c,
        repository: 'inc/retry',
        tag: 'v1',
        config: {},
        packBytes: 1 * MiB,
      }),
    ).rejects.toThrow(/connection lost/);
    const before = new Map(c.uploads);
    expect(before.size).toBe(3);
    c.failAfterUploads = Number.POSITIVE_INFINITY;
    const done = await pushChunkedSnapshot(inputs(big), {
      client: c,
      repository: 'inc/retry',
      tag: 'v1',
      config: {},
      packBytes: 1 * MiB,
    });
    for (const [digest, n] of c.uploads) expect(n, `${digest} uploaded once`).toBe(1);
    expect(done.packs.existing).toBeGreaterThanOrEqual(2);
    expectSame(await readBack(c, 'inc/retry', 'v1'), big);
  });

  it('reuses chunks of a --base in another repository by mounting its packs', async () => {
    const c = client();
    const files = version1();
    await pushChunkedSnapshot(inputs(files), {
      client: c,
      repository: 'inc/base',
      tag: 'v1',
      config: {},
      packBytes: 1 * MiB,
    });
    const child = nextVersion(files, 3);
    const r = await pushChunkedSnapshot(inputs(child), {
      client: c,
      repository: 'inc/child',
      tag: 'v1',
      config: {},
      packBytes: 1 * MiB,
      bases: [{ repository: 'inc/base', reference: 'v1' }],
    });
    expect(r.packs.mounted).toBeGreaterThan(0);
    expect(r.packs.newChunkBytes).toBeLessThan(1 * MiB);
    expectSame(await readBack(c, 'inc/child', 'v1'), child);
  });

  it('the puller fetches only the chunks its cache lacks, and shares them across repositories', async () => {
    const c = client();
    const v1 = version1();
    const v2 = nextVersion(v1, 1);
    const other = nextVersion(v1, 7);
    const push = (repository: string, tag: string, files: TestFile[], base?: string) =>
      pushChunkedSnapshot(inputs(files), {
        client: c,
        repository,
        tag,
        config: {},
        packBytes: 1 * MiB,
        ...(base ? { bases: [{ repository: 'inc/pull', reference: base }] } : {}),
      });
    await push('inc/pull', 'v1', v1);
    await push('inc/pull', 'v2', v2);
    await push('inc/pull-other', 'v1', other, 'v1');
    const reader = new ReadCountingClient({ url: t.url, credentials: { token } });
    const cacheDir = await mkdtemp(join(tmpdir(), 'epoch-chunked-puller-'));
    const puller = newPuller({ registry: reader, cacheDir });
    const indexBytes = async (ref: string) =>
      (await readBack(c, 'inc/pull', ref)).manifest.layers
        .filter((l) => l.mediaType === ChunkedMediaTypes.chunkIndex)
        .reduce((sum, l) => sum + l.size, 0);
    try {
      const cold = await puller.ensureSnapshot('inc/pull:v1');
      await expectMaterialized(cold, v1);
      const coldBytes = reader.bytes;
      expect(coldBytes).toBeGreaterThan(6 * MiB);

      // v2 changed 4 pages + 128 KiB of memory and 4 KiB + 256 KiB of disk (8 KiB chunks)
      const changed = 4 * 8 * KiB + 136 * KiB + 8 * KiB + 256 * KiB;
      reader.bytes = 0;
      const update = await puller.ensureSnapshot('inc/pull:v2');
      await expectMaterialized(update, v2);
      expect(reader.bytes).toBeLessThanOrEqual(changed + (await indexBytes('v2')) + 8 * KiB);
      // the puller's own count is the same, less the config it reads besides
      const config = (await readBack(c, 'inc/pull', 'v2')).manifest.config.size;
      expect(update.bytesTransferred).toBe(reader.bytes - config);
      expect(update.bytesReused).toBeGreaterThan(5 * MiB);

      // another repository's VM from the same base takes the shared chunks from the cache
      reader.bytes = 0;
      const shared = await puller.ensureSnapshot('inc/pull-other:v1');
      await expectMaterialized(shared, other);
      expect(reader.bytes).toBeLessThan(coldBytes / 4);

      // v3 starts from v2's cached file: a data chunk turned zero must be written as zeros,
      // and a new hole shifts everything after it (nothing lines up with v2 any more)
      const v3 = v2.map((f) => {
        if (f.title !== 'memory-ranges' || !f.segments) return f;
        const bytes = Buffer.from(f.bytes);
        bytes.fill(0, 16 * KiB, 24 * KiB);
        bytes.fill(0, 0, 4 * KiB);
        const [first, ...rest] = f.segments as SparseSegment[];
        return { ...f, bytes, segments: [{ o: 4 * KiB, l: (first?.l ?? 0) - 4 * KiB }, ...rest] };
      });
      await push('inc/pull', 'v3', v3);
      await expectMaterialized(await puller.ensureSnapshot('inc/pull:v3'), v3);

      // a hit transfers nothing; evicting v1 leaves v2 whole (its files are its own)
      reader.bytes = 0;
      expect((await puller.ensureSnapshot('inc/pull:v2')).cached).toBe(true);
      expect(reader.bytes).toBe(0);
      expect(await puller.evict('inc/pull:v1')).toBe(true);
      await expectMaterialized(await puller.ensureSnapshot('inc/pull:v2'), v2);

      // A cold pull of v2 takes its old chunks from v1's packs, with the replaced ones between
      // them, in turns with its new chunks from its own pack: one request per stretch of each
      // pack, not one per change. Against v1's cold pull: v2's own pack (once per file that
      // has new chunks) and the one change wider than 64 KiB may add a request each.
      const coldGets = async (ref: string, files: TestFile[]) => {
        const dir = await mkdtemp(join(tmpdir(), 'epoch-chunked-cold-'));
        const fresh = newPuller({ registry: reader, cacheDir: dir });
        try {
          reader.gets = 0;
          await expectMaterialized(await fresh.ensureSnapshot(ref), files);
          return reader.gets;
        } finally {
          await fresh.close();
          await rm(dir, { recursive: true, force: true });
        }
      };
      const coldV1 = await coldGets('inc/pull:v1', v1);
      expect(await coldGets('inc/pull:v2', v2)).toBeLessThanOrEqual(coldV1 + 3);
    } finally {
      await puller.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('the puller updates in place: takes the cached version over, writing only what differs', async () => {
    const c = client();
    const v1 = version1();
    const v2 = nextVersion(v1, 2);
    // v3: a data chunk turned zero over v2's bytes, the first page a hole, the disk shorter
    const v3 = v2.map((f) => {
      if (f.title === 'overlay.qcow2') return { ...f, bytes: f.bytes.subarray(0, 2 * MiB) };
      if (f.title !== 'memory-ranges' || !f.segments) return f;
      const bytes = Buffer.from(f.bytes);
      bytes.fill(0, 16 * KiB, 24 * KiB);
      bytes.fill(0, 0, 4 * KiB);
      const [first, ...rest] = f.segments as SparseSegment[];
      return { ...f, bytes, segments: [{ o: 4 * KiB, l: (first?.l ?? 0) - 4 * KiB }, ...rest] };
    });
    await pushVersions(c, 'inc/inplace', [v1, v2, v3]);
    const reader = new ReadCountingClient({ url: t.url, credentials: { token } });
    const cacheDir = await mkdtemp(join(tmpdir(), 'epoch-chunked-inplace-'));
    const puller = newPuller({ registry: reader, cacheDir, updateInPlace: true });
    const evicted: string[] = [];
    puller.on('event', (e) => {
      if (e.type === 'evicted') evicted.push(e.digest);
    });
    try {
      const r1 = await puller.ensureSnapshot('inc/inplace:v1');
      await expectMaterialized(r1, v1);
      const inode = (await stat(memory(r1))).ino;

      reader.bytes = 0;
      const r2 = await puller.ensureSnapshot('inc/inplace:v2');
      await expectMaterialized(r2, v2);
      // v1's memory file became v2's (same inode: patched, not copied), and v1 left the cache
      expect((await stat(memory(r2))).ino).toBe(inode);
      expect(existsSync(r1.dir)).toBe(false);
      expect(evicted).toEqual([r1.digest]);
      expect((await puller.stats()).artifacts).toBe(1);
      // v1's own indexes went with it: only v2's are cached
      const v2Indexes = new Set(
        (await readBack(c, 'inc/inplace', 'v2')).manifest.layers
          .filter((l) => l.mediaType === ChunkedMediaTypes.chunkIndex)
          .map((l) => l.digest),
      );
      expect((await puller.stats()).blobs).toBe(v2Indexes.size);
      const changed = 4 * 8 * KiB + 136 * KiB + 8 * KiB + 256 * KiB;
      expect(r2.bytesTransferred).toBeLessThanOrEqual(changed + 64 * KiB);
      expect(r2.bytesReused).toBeGreaterThan(5 * MiB);
      expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);

      // zeros written over data, a shifted hole, a file cut shorter
      await expectMaterialized(await puller.ensureSnapshot('inc/inplace:v3'), v3);
      // and back to v1: the same small update backwards
      const back = await puller.ensureSnapshot('inc/inplace:v1');
      await expectMaterialized(back, v1);
      expect((await stat(memory(back))).ino).toBe(inode);
      expect((await puller.stats()).artifacts).toBe(1);
    } finally {
      await puller.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  // Needs a filesystem that clones files (XFS with reflink, btrfs): .ci/run mounts one with
  // scripts/reflink-dir.sh and names it in EPOCH_TEST_REFLINK_DIR; ext4 (this suite's tmpdir)
  // cannot, and there the update copies (the tests above). Client-side: run on one backend.
  it.skipIf(!REFLINK_DIR || backend !== backends[0])(
    'a copying update clones the cached version where the filesystem can [needs EPOCH_TEST_REFLINK_DIR]',
    async () => {
      const c = client();
      const v1 = version1();
      const v2 = nextVersion(v1, 3);
      await pushVersions(c, 'inc/clone', [v1, v2]);
      const reader = new ReadCountingClient({ url: t.url, credentials: { token } });
      const cacheDir = await mkdtemp(join(REFLINK_DIR as string, 'epoch-chunked-clone-'));
      const puller = newPuller({ registry: reader, cacheDir });
      try {
        const r1 = await puller.ensureSnapshot('inc/clone:v1');
        await expectMaterialized(r1, v1);
        expect(await sharedExtents(memory(r1))).toBe(false);
        const r2 = await puller.ensureSnapshot('inc/clone:v2');
        await expectMaterialized(r2, v2);
        // v2's memory file is a clone of v1's, patched: its unchanged blocks are v1's, shared
        expect(await sharedExtents(memory(r2))).toBe(true);
        expect(await sharedExtents(memory(r1))).toBe(true);
        // and v1 stays cached, whole (copying, not in place)
        await expectMaterialized(await puller.ensureSnapshot('inc/clone:v1'), v1);
        expect((await stat(memory(r2))).ino).not.toBe((await stat(memory(r1))).ino);
        const changed = 4 * 8 * KiB + 136 * KiB + 8 * KiB + 256 * KiB;
        expect(r2.bytesTransferred).toBeLessThanOrEqual(changed + 64 * KiB);
        expect(r2.bytesReused).toBeGreaterThan(5 * MiB);
      } finally {
        await puller.close();
        await rm(cacheDir, { recursive: true, force: true });
      }
    },
  );

  it('an in-place update copies from a version in use, and a failed one leaves neither', async () => {
    const c = client();
    const v1 = version1();
    const v2 = nextVersion(v1, 4);
    await pushChunkedSnapshot(inputs(v1), {
      client: c,
      repository: 'inc/inplace-busy',
      tag: 'v1',
      config: {},
      packBytes: 1 * MiB,
    });
    const pushed = await pushChunkedSnapshot(inputs(v2), {
      client: c,
      repository: 'inc/inplace-busy',
      tag: 'v2',
      config: {},
      packBytes: 1 * MiB,
    });
    const v2Manifest = (await readBack(c, 'inc/inplace-busy', 'v2')).manifest;
    const v2Packs = new Set<string>(
      v2Manifest.layers
        .filter((l) => l.mediaType === ChunkedMediaTypes.chunkPack)
        .map((l) => l.digest),
    );
    expect(pushed.packs.total).toBe(v2Packs.size);
    class FailingClient extends ReadCountingClient {
      failPacks = false;
      override getBlob(name: string, digest: string, options: GetBlobOptions = {}): Readable {
        if (this.failPacks && v2Packs.has(digest)) throw new Error('connection lost (test)');
        return super.getBlob(name, digest, options);
      }
    }
    const reader = new FailingClient({ url: t.url, credentials: { token } });
    const cacheDir = await mkdtemp(join(tmpdir(), 'epoch-chunked-inplace-busy-'));
    // v1's import waits until the test lets it go: meanwhile an ensure holds v1
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let importing = () => {};
    const v1Importing = new Promise<void>((r) => {
      importing = r;
    });
    const puller = newPuller({
      registry: reader,
      cacheDir,
      updateInPlace: true,
      importer: {
        async import(request) {
          if (request.name === 'inc/inplace-busy:v1') {
            importing();
            await gate;
          }
          return request.name;
        },
      },
    });
    try {
      const first = puller.ensureSnapshot('inc/inplace-busy:v1');
      await v1Importing;
      const r2 = await puller.ensureSnapshot('inc/inplace-busy:v2');
      release();
      const r1 = await first;
      // v1 was in use: v2 is a copy, v1 stays whole beside it
      await expectMaterialized(r2, v2);
      await expectMaterialized(r1, v1);
      expect((await stat(memory(r2))).ino).not.toBe((await stat(memory(r1))).ino);
      expect((await puller.stats()).artifacts).toBe(2);

      // v2 gone; v1 not in use: the update takes it, and fails halfway
      expect(await puller.evict('inc/inplace-busy:v2')).toBe(true);
      reader.failPacks = true;
      await expect(puller.ensureSnapshot('inc/inplace-busy:v2')).rejects.toThrow(/connection lost/);
      // neither version is left looking complete, nothing half-written is left behind
      expect((await puller.stats()).artifacts).toBe(0);
      expect(existsSync(r1.dir)).toBe(false);
      expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);
      reader.failPacks = false;
      await expectMaterialized(await puller.ensureSnapshot('inc/inplace-busy:v2'), v2);
    } finally {
      release();
      await puller.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('refuses a pack or an index with one wrong byte', async () => {
    const c = client();
    const files = version1();
    await pushChunkedSnapshot(inputs(files), {
      client: c,
      repository: 'inc/corrupt',
      tag: 'v1',
      config: {},
      packBytes: 1 * MiB,
    });
    const { layout } = await readBack(c, 'inc/corrupt', 'v1');
    const mem = layout.files.find((f) => f.title === 'memory-ranges');
    if (!mem) throw new Error('no memory file');
    const source = {
      blobs: clientBlobs(c, 'inc/corrupt'),
      layout,
      index: mem.index,
      title: mem.title,
    };
    const flip = async (digest: string, at: number) => {
      const key = Layout.blob(digest);
      const chunks: Buffer[] = [];
      for await (const b of await t.store.read(key)) chunks.push(b as Buffer);
      const bytes = Buffer.concat(chunks);
      const original = Buffer.from(bytes);
      bytes[at] = (bytes[at] ?? 0) ^ 0xff;
      await t.store.delete(key);
      await t.store.put(key, bytes);
      return async () => {
        await t.store.delete(key);
        await t.store.put(key, original);
      };
    };
    const drain = async () => {
      for await (const _ of chunkedFileBytes(source)) {
      }
    };
    // a pack: the chunk's sha256 catches it
    const pack = [...layout.packs.keys()][0] as string;
    const restorePack = await flip(pack, 5000);
    await expect(drain()).rejects.toThrow(ChunkVerificationError);
    // /dl/ has promised its length by then: it breaks the connection, never ends cleanly
    const auth = { Authorization: `Bearer ${token}` };
    const dl = () => fetch(`${t.url}/dl/inc/corrupt:v1`, { headers: auth });
    const broken = await dl();
    expect(broken.status).toBe(200);
    await expect(broken.arrayBuffer()).rejects.toThrow();
    // the puller refuses it after its retries, and keeps nothing of it
    const cacheDir = await mkdtemp(join(tmpdir(), 'epoch-corrupt-puller-'));
    const puller = newPuller({ registry: c, cacheDir, attempts: 2 });
    const rejected: number[] = [];
    puller.on('event', (e) => {
      if (e.type === 'blob-rejected') rejected.push(e.attempt);
    });
    await expect(puller.ensureSnapshot('inc/corrupt:v1')).rejects.toThrow(ChunkVerificationError);
    expect(rejected).toEqual([1, 2]);
    expect((await puller.stats()).artifacts).toBe(0);
    await rm(cacheDir, { recursive: true, force: true });
    await restorePack();
    await drain();
    const whole = await dl();
    expect((await whole.arrayBuffer()).byteLength).toBe(
      Number(whole.headers.get('content-length')),
    );
    // an index: a record's hash byte (structurally valid) is caught by the index digest...
    const restoreIndex = await flip(mem.index.digest, mem.index.size - 10);
    await expect(drain()).rejects.toThrow(DigestMismatchError);
    // ...which /dl/ reads whole before its first byte: no tar starts
    const refused = await dl();
    expect(refused.status).toBe(500);
    expect(refused.headers.get('content-type')).toContain('json');
    await restoreIndex();
    // ...and a kind byte turned into another valid kind by the index rules or the digest
    const restoreKind = await flip(mem.index.digest, 64 + 40 * layout.packs.size);
    await expect(drain()).rejects.toThrow(/chunk index|digest mismatch/);
    await restoreKind();
    await drain();
  });

  it('GC after deleting old versions keeps the newest whole and frees what only they used', async () => {
    const c = client();
    const api = new RawClient(t.url, { Authorization: `Bearer ${token}` });
    const versions = [version1()];
    for (let v = 1; v < 4; v++) versions.push(nextVersion(versions[v - 1] as TestFile[], v));
    const digests: string[] = [];
    const packsOf: Set<string>[] = [];
    for (const [i, files] of versions.entries()) {
      const r = await pushChunkedSnapshot(inputs(files), {
        client: c,
        repository: 'inc/gc',
        tag: `v${i + 1}`,
        config: {},
        packBytes: 256 * KiB,
      });
      digests.push(r.digest);
      packsOf.push(
        new Set(
          (r.manifest.layers as { digest: string; mediaType: string }[]).map((l) => l.digest),
        ),
      );
    }
    for (let i = 0; i < 3; i++) {
      expect(
        (await api.fetch(`/v2/inc/gc/manifests/${digests[i]}`, { method: 'DELETE' })).status,
      ).toBe(202);
    }
    await sleep(5);
    const res = await api.fetch('/api/gc', { method: 'POST' });
    expect(res.status).toBe(200);
    const newest = packsOf[3] as Set<string>;
    const onlyOld = new Set(
      [
        ...(packsOf[0] as Set<string>),
        ...(packsOf[1] as Set<string>),
        ...(packsOf[2] as Set<string>),
      ].filter((d) => !newest.has(d)),
    );
    expect(onlyOld.size).toBeGreaterThan(0);
    for (const d of onlyOld)
      expect(await t.store.stat(Layout.blob(d)), `${d} freed`).toBeUndefined();
    for (const d of newest) expect(await t.store.stat(Layout.blob(d)), `${d} kept`).toBeDefined();
    expectSame(await readBack(c, 'inc/gc', 'v4'), versions[3] as TestFile[]);
  });
});

// An incremental snapshot is an ordinary OCI artifact: any client that copies its manifest copies
// every pack and index it needs. Debian's skopeo and docker-registry (distribution 2.8) are the
// outside world here.
describe('an incremental snapshot copied with skopeo to docker-registry and back', () => {
  let t: TestServer;
  let token: string;
  let registry: Awaited<ReturnType<typeof startDockerRegistry>>;

  beforeAll(async () => {
    t = await startTestServer('filesystem');
    token = await t.token();
    registry = await startDockerRegistry();
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
    await t?.stop();
  });

  it('reads byte-exact from docker-registry and from the copy back', async () => {
    const c = new CountingClient({ url: t.url, credentials: { token } });
    const v1 = version1();
    const v2 = nextVersion(v1, 1);
    for (const [tag, files] of [
      ['v1', v1],
      ['v2', v2],
    ] as const) {
      await pushChunkedSnapshot(inputs(files), {
        client: c,
        repository: 'inc/copy',
        tag,
        config: { hypervisor: 'cloud-hypervisor' },
        packBytes: 1 * MiB,
      });
    }
    const exec = promisify(execFile);
    const epoch = new URL(t.url).host;
    const creds = `_token:${token}`;
    const plain = ['--src-tls-verify=false', '--dest-tls-verify=false', '--preserve-digests'];
    // Version 2 alone: its manifest lists the packs it shares with version 1 as well.
    await exec('skopeo', [
      'copy',
      ...plain,
      '--src-creds',
      creds,
      `docker://${epoch}/inc/copy:v2`,
      `docker://${registry.host}/mirror/vm:v2`,
    ]);
    expectSame(await readBack(new RegistryClient({ url: registry.url }), 'mirror/vm', 'v2'), v2);
    await exec('skopeo', [
      'copy',
      ...plain,
      '--dest-creds',
      creds,
      `docker://${registry.host}/mirror/vm:v2`,
      `docker://${epoch}/back/vm:v2`,
    ]);
    expectSame(await readBack(c, 'back/vm', 'v2'), v2);
    const original = await c.getManifest('inc/copy', 'v2');
    const copied = await c.getManifest('back/vm', 'v2');
    expect(copied.digest).toBe(original.digest);
  }, 120_000);
});
