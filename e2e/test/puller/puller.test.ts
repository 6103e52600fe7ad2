import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, DigestMismatchError, digestOf } from '@epoch/oci';
import {
  type EnsureResult,
  NewPuller,
  newPuller,
  type Puller,
  type PullerEvent,
  PullerKindError,
  type PullerOptions,
  RegistryClient,
  RegistryNetworkError,
} from '@epoch/registry';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type EpochServer, startEpoch } from '../support/epoch-server.js';
import { pushCloudImage, pushSnapshot, random } from '../support/fixtures.js';
import { type FaultProxy, startFaultProxy } from '../support/registry-fault-proxy.js';

const MiB = 1024 * 1024;

let server: EpochServer;
let client: RegistryClient;
let proxy: FaultProxy;
let cacheDir: string;
const pullers: Puller[] = [];

beforeAll(async () => {
  server = await startEpoch();
  client = new RegistryClient({ url: server.url, retries: 1 });
});

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

async function setup(options: Partial<PullerOptions> = {}): Promise<Puller> {
  proxy = await startFaultProxy(server.url);
  cacheDir = await mkdtemp(join(tmpdir(), 'epoch-puller-cache-'));
  return puller(options);
}

function puller(options: Partial<PullerOptions> = {}): Puller {
  const p = newPuller({ registry: proxy.url, cacheDir, retries: 0, ...options });
  pullers.push(p);
  return p;
}

afterEach(async () => {
  for (const p of pullers.splice(0)) await p.close();
  await proxy?.close();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

async function expectFiles(result: EnsureResult, files: { name: string; bytes: Buffer }[]) {
  for (const file of files) {
    const got = result.files.find((f) => f.name === file.name);
    expect(got, file.name).toBeDefined();
    expect(digestOf(await readFile(got?.path as string))).toBe(digestOf(file.bytes));
  }
}

function repo(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

describe('newPuller against a real Epoch server', () => {
  it('is exported under both names', () => {
    expect(NewPuller).toBe(newPuller);
  });

  it('20 concurrent ensures of one ref make one transfer; a later ensure is a hit with no blob traffic', async () => {
    const p = await setup();
    const name = repo('vm');
    const files = [
      { name: 'memory-ranges', bytes: random(3 * MiB) },
      { name: 'cow.raw', bytes: random(MiB) },
      // Cloud Hypervisor snapshots have one: it must not clash with the cache's own metadata.
      { name: 'config.json', bytes: Buffer.from('{"cpus":{}}') },
    ];
    const digest = await pushSnapshot(client, name, 'latest', files);
    const results = await Promise.all(Array.from({ length: 20 }, () => p.ensureSnapshot(name)));
    for (const r of results) expect(r.digest).toBe(digest);
    // One GET per blob (each smaller than a piece), for all twenty callers together.
    for (const f of files) expect(proxy.blobGets(digestOf(f.bytes))).toHaveLength(1);
    expect(results.reduce((sum, r) => sum + r.bytesTransferred, 0)).toBe(4 * MiB + 11);
    await expectFiles(results[0] as EnsureResult, files);
    const envelope = JSON.parse(
      await readFile(join((results[0] as EnsureResult).dir, 'snapshot.json'), 'utf8'),
    );
    expect(envelope).toEqual({ config: { name, cpu: 2, queue_size: 7 }, version: 1 });

    const before = proxy.requests.length;
    const hit = await p.ensureSnapshot(`${name}:latest`);
    const after = proxy.requests.slice(before);
    expect(hit).toMatchObject({ digest, cached: true, offline: false, bytesTransferred: 0 });
    expect(hit.bytesReused).toBe(4 * MiB + 11);
    // The tag is resolved again (one HEAD), and nothing else is asked.
    expect(after.map((r) => r.method)).toEqual(['HEAD']);
    expect((await p.stats()).hits).toBe(1);
  });

  it("one caller's abort does not cancel the transfer for the others; the last one's abort stops it", async () => {
    const p = await setup({ chunkBytes: 512 * 1024, concurrency: 2 });
    proxy.rate = 4 * MiB;
    const name = repo('abort');
    const files = [{ name: 'mem', bytes: random(4 * MiB) }];
    await pushSnapshot(client, name, 'latest', files);
    const first = new AbortController();
    const started = new Promise<void>((resolve) =>
      p.on('event', (e: PullerEvent) => e.type === 'progress' && resolve()),
    );
    const a = p.ensureSnapshot(name, { signal: first.signal });
    const b = p.ensureSnapshot(name);
    await started;
    first.abort();
    await expect(a).rejects.toMatchObject({ name: 'AbortError' });
    const result = await b;
    await expectFiles(result, files);

    // Sole caller aborts: the transfer stops, and nothing complete-looking is left behind.
    const other = repo('abort2');
    const more = [{ name: 'mem', bytes: random(8 * MiB) }];
    const otherDigest = await pushSnapshot(client, other, 'latest', more);
    const only = new AbortController();
    const progressed = new Promise<void>((resolve) =>
      p.on(
        'event',
        (e: PullerEvent) => e.type === 'progress' && e.digest === otherDigest && resolve(),
      ),
    );
    const c = p.ensureSnapshot(other, { signal: only.signal });
    await progressed;
    only.abort();
    await expect(c).rejects.toMatchObject({ name: 'AbortError' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const gets = proxy.blobGets(digestOf(more[0]?.bytes as Buffer)).length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(proxy.blobGets(digestOf(more[0]?.bytes as Buffer)).length).toBe(gets);
    expect(gets).toBeLessThan(16);
    await expect(
      stat(join(cacheDir, 'artifacts', `sha256-${otherDigest.slice(7)}`)),
    ).rejects.toThrow();
  });

  it('a re-pushed tag is fetched again; the old copy stays until evicted', async () => {
    const p = await setup();
    const name = repo('retag');
    const v1 = [{ name: 'mem', bytes: random(MiB) }];
    const d1 = await pushSnapshot(client, name, 'latest', v1);
    const r1 = await p.ensureSnapshot(name);
    const v2 = [{ name: 'mem', bytes: random(MiB) }];
    const d2 = await pushSnapshot(client, name, 'latest', v2);
    const r2 = await p.ensureSnapshot(name);
    expect(r2.digest).toBe(d2);
    expect(d2).not.toBe(d1);
    expect(r2.cached).toBe(false);
    expect(r2.bytesTransferred).toBe(MiB);
    await expectFiles(r2, v2);
    await expectFiles(r1, v1);
  });

  it('a corrupted blob is rejected and fetched again, and never materialized when it stays corrupt', async () => {
    const p = await setup();
    const name = repo('corrupt');
    const files = [{ name: 'mem', bytes: random(2 * MiB) }];
    const blob = digestOf(files[0]?.bytes as Buffer);
    await pushSnapshot(client, name, 'once', files);
    let corrupted = 0;
    proxy.fault = (req) =>
      req.method === 'GET' && req.url?.endsWith(blob) && corrupted++ === 0
        ? { corrupt: true }
        : undefined;
    const rejected: PullerEvent[] = [];
    p.on('event', (e: PullerEvent) => e.type === 'blob-rejected' && rejected.push(e));
    const result = await p.ensureSnapshot(`${name}:once`);
    expect(rejected).toHaveLength(1);
    expect(proxy.blobGets(blob)).toHaveLength(2);
    await expectFiles(result, files);

    const bad = repo('corrupt');
    const badFiles = [{ name: 'mem', bytes: random(MiB) }];
    const badBlob = digestOf(badFiles[0]?.bytes as Buffer);
    const badDigest = await pushSnapshot(client, bad, 'latest', badFiles);
    proxy.fault = (req) =>
      req.method === 'GET' && req.url?.endsWith(badBlob) ? { corrupt: true } : undefined;
    await expect(p.ensureSnapshot(bad)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(proxy.blobGets(badBlob)).toHaveLength(3);
    await expect(stat(join(cacheDir, 'blobs', 'sha256', badBlob.slice(7)))).rejects.toThrow();
    await expect(
      stat(join(cacheDir, 'artifacts', `sha256-${badDigest.slice(7)}`)),
    ).rejects.toThrow();
    expect(await readdir(join(cacheDir, 'partial'))).toEqual([]);
  });

  it('a connection dropped mid-blob is resumed from the byte reached', async () => {
    const p = await setup();
    const name = repo('drop');
    const files = [{ name: 'mem', bytes: random(4 * MiB) }];
    const blob = digestOf(files[0]?.bytes as Buffer);
    await pushSnapshot(client, name, 'latest', files);
    let cuts = 0;
    proxy.fault = (req) =>
      req.method === 'GET' && req.url?.endsWith(blob) && cuts++ === 0
        ? { cutAfter: 1536 * 1024 }
        : undefined;
    const result = await p.ensureSnapshot(name);
    await expectFiles(result, files);
    const gets = proxy.blobGets(blob);
    expect(gets).toHaveLength(2);
    expect(gets[0]?.range).toBe(`bytes=0-${4 * MiB - 1}`);
    // Resumed where the bytes that reached the client end (some of the cut response's last
    // bytes may die in the socket), never from the start.
    const resumedAt = Number(/^bytes=(\d+)-/.exec(gets[1]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(MiB);
    expect(resumedAt).toBeLessThanOrEqual(1536 * 1024);
    expect(gets[1]?.range).toBe(`bytes=${resumedAt}-${4 * MiB - 1}`);
    expect(gets[1]?.sent).toBe(4 * MiB - resumedAt);
  });

  it('a partial blob resumes with Range after a restart, fetching only the missing pieces', async () => {
    const first = await setup({ chunkBytes: MiB, concurrency: 1 });
    proxy.rate = 4 * MiB;
    const name = repo('restart');
    const files = [{ name: 'mem', bytes: random(8 * MiB) }];
    const blob = digestOf(files[0]?.bytes as Buffer);
    await pushSnapshot(client, name, 'latest', files);
    const stop = new AbortController();
    first.on('event', (e: PullerEvent) => {
      if (e.type === 'progress' && e.bytes >= 3 * MiB) stop.abort();
    });
    await expect(first.ensureSnapshot(name, { signal: stop.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    await first.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await readdir(join(cacheDir, 'partial'))).toContain(`sha256-${blob.slice(7)}`);

    proxy.rate = 0;
    const before = proxy.blobGets(blob).length;
    const second = puller({ chunkBytes: MiB, concurrency: 1 });
    const result = await second.ensureSnapshot(name);
    await expectFiles(result, files);
    const again = proxy.blobGets(blob).slice(before);
    expect(again.map((g) => g.range)).not.toContain(`bytes=0-${MiB - 1}`);
    expect(result.bytesTransferred).toBeLessThanOrEqual(6 * MiB);
    expect(again.reduce((sum, g) => sum + g.sent, 0)).toBe(result.bytesTransferred);
  });

  it('large blobs are fetched in parallel ranged pieces, bounded by the concurrency', async () => {
    const p = await setup({ chunkBytes: 256 * 1024, concurrency: 3 });
    proxy.rate = 8 * MiB;
    const name = repo('parallel');
    const files = [{ name: 'mem', bytes: random(4 * MiB) }];
    const blob = digestOf(files[0]?.bytes as Buffer);
    await pushSnapshot(client, name, 'latest', files);
    let peak = 0;
    proxy.fault = (req) => {
      if (req.method === 'GET' && req.url?.endsWith(blob)) {
        peak = Math.max(peak, proxy.blobGets(blob).filter((g) => !g.finished).length);
      }
      return undefined;
    };
    const result = await p.ensureSnapshot(name);
    await expectFiles(result, files);
    expect(proxy.blobGets(blob)).toHaveLength(16);
    expect(result.bytesTransferred).toBe(4 * MiB);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(3);
  });

  it('keeps the cache within its budget, evicting the least recently used; shared blobs are stored once', async () => {
    const p = await setup({ cacheBytes: 3 * MiB });
    const shared = { name: 'cow.raw', bytes: random(MiB) };
    const a = repo('budget-a');
    const b = repo('budget-b');
    const c = repo('budget-c');
    const dA = await pushSnapshot(client, a, 'latest', [
      shared,
      { name: 'mem', bytes: random(MiB) },
    ]);
    await pushSnapshot(client, b, 'latest', [shared, { name: 'mem', bytes: random(MiB) }]);
    await pushSnapshot(client, c, 'latest', [{ name: 'mem', bytes: random(2 * MiB) }]);
    await p.ensureSnapshot(a);
    const rb = await p.ensureSnapshot(b);
    // The shared blob came down once and is on disk once.
    expect(proxy.blobGets(digestOf(shared.bytes))).toHaveLength(1);
    expect(rb.bytesReused).toBe(MiB);
    expect((await p.stats()).cacheBytes).toBe(3 * MiB);
    await p.ensureSnapshot(b); // b is now the most recently used
    const rc = await p.ensureSnapshot(c);
    const stats = await p.stats();
    expect(stats.cacheBytes).toBeLessThanOrEqual(3 * MiB);
    expect(stats.evictions).toBeGreaterThan(0);
    await expect(stat(join(cacheDir, 'artifacts', `sha256-${dA.slice(7)}`))).rejects.toThrow();
    await expect(stat(rc.dir)).resolves.toBeDefined();

    // Smaller than one artifact: the one just ensured is kept (in use), everything else goes.
    const tiny = puller({ cacheBytes: 1 });
    const rTiny = await tiny.ensureSnapshot(c);
    await expect(stat(rTiny.files[1]?.path as string)).resolves.toBeDefined();
    expect(await tiny.evict(c)).toBe(true);
    expect((await tiny.stats()).artifacts).toBe(0);
  });

  it('serves the cached digest offline when the registry is unreachable, and says so', async () => {
    const p = await setup();
    const name = repo('offline');
    const files = [{ name: 'mem', bytes: random(MiB) }];
    const digest = await pushSnapshot(client, name, 'latest', files);
    await p.ensureSnapshot(name);
    await proxy.close();
    const result = await p.ensureSnapshot(name);
    expect(result).toMatchObject({ digest, offline: true, cached: true });
    await expectFiles(result, files);
    expect((await p.stats()).offlineHits).toBe(1);
    await expect(p.ensureSnapshot(repo('never'))).rejects.toBeInstanceOf(RegistryNetworkError);
  });

  it('ensureCloudImage reassembles the disk parts in title order; kinds are checked', async () => {
    const p = await setup();
    const name = repo('win');
    const parts = [
      { name: 'win.qcow2.01.qcow2.part', bytes: random(MiB) },
      { name: 'win.qcow2.00.qcow2.part', bytes: random(MiB + 3) },
    ];
    const digest = await pushCloudImage(client, name, '11', parts);
    const result = await p.ensureCloudImage(`${name}:11`);
    expect(result).toMatchObject({ digest, kind: 'cloud-image' });
    const disk = await readFile(result.files[0]?.path as string);
    expect(digestOf(disk)).toBe(
      digestOf(Buffer.concat([parts[1]?.bytes as Buffer, parts[0]?.bytes as Buffer])),
    );
    await expect(p.ensureSnapshot(`${name}:11`)).rejects.toBeInstanceOf(PullerKindError);
  });

  it('reads the files by the snapshot format: 0640 by default, a sparse map needs its size', async () => {
    const p = await setup();
    const name = repo('format');
    await pushSnapshot(client, name, 'plain', [
      { name: 'cfg', bytes: random(10), record: {} },
      { name: 'mem', bytes: random(8), sparse: { map: [{ o: 0, l: 8 }], size: 4096 } },
    ]);
    const plain = await p.ensureSnapshot(`${name}:plain`);
    expect(plain.files.map((f) => [f.name, f.mode])).toEqual([
      ['snapshot.json', 0o644],
      ['cfg', 0o640],
      ['mem', 0o600],
    ]);
    expect(plain.files[2]?.sparse).toEqual({ map: [{ o: 0, l: 8 }], size: 4096 });
    // A map without its logical size was once dropped silently, leaving a file cocoon would
    // restore at the wrong size; every reader now refuses it.
    await pushSnapshot(client, name, 'nosize', [
      { name: 'mem', bytes: random(8), record: { sparseMap: '[{"o":0,"l":8}]' } },
    ]);
    await expect(p.ensureSnapshot(`${name}:nosize`)).rejects.toThrow(
      /sparse map without a logical size/,
    );
    await pushSnapshot(client, name, 'hidden', [{ name: '.epoch-config.json', bytes: random(4) }]);
    await expect(p.ensureSnapshot(`${name}:hidden`)).rejects.toBeInstanceOf(PullerKindError);
    expect((await p.stats()).artifacts).toBe(1);
  });

  it('runs the importer once per digest, after the files are verified, and not again on a hit', async () => {
    const calls: { name: string; sizes: number[] }[] = [];
    const p = await setup({
      importer: {
        async import(request) {
          const sizes = [];
          for (const f of request.files) sizes.push((await stat(f.path)).size);
          calls.push({ name: request.name, sizes });
          await new Promise((resolve) => setTimeout(resolve, 50));
          return `${request.name}-imported`;
        },
      },
    });
    const name = repo('import');
    await pushSnapshot(client, name, 'v1', [{ name: 'mem', bytes: random(MiB) }]);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => p.ensureSnapshot(`${name}:v1`)),
    );
    expect(calls).toHaveLength(1);
    expect(calls[0]?.name).toBe(`${name}:v1`);
    for (const r of results) expect(r.importName).toBe(`${name}:v1-imported`);
    await p.ensureSnapshot(`${name}:v1`);
    expect(calls).toHaveLength(1);
  });

  it('lists remote repositories with their tags', async () => {
    const p = await setup();
    const name = repo('listed');
    await pushSnapshot(client, name, 'a', [{ name: 'mem', bytes: random(1024) }]);
    const list = await p.listRemote('listed-');
    expect(list.find((e) => e.repository === name)?.tags).toEqual(['a']);
  });
});

export type { Digest };
