import { createHash, randomBytes } from 'node:crypto';
import { digestOf, MediaTypes } from '@epoch/oci';
import { Layout, type ObjectStore, Registry } from '@epoch/registry';
import { freshMysqlDatabase, indexKinds } from '@epoch/test-support/mysql';
import { errorCode, RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage, type GcReport } from '../src/gc/collector.js';
import { backends, startTestServer, type TestServer } from './support/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const cases = backends.flatMap((backend) => indexKinds.map((kind) => [backend, kind] as const));

describe.each(cases)('garbage collection on %s with %s', (backend, kind) => {
  let t: TestServer;
  let api: RawClient;
  let dropDb: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const env: Record<string, string> = { EPOCH_GC_DELAY: '0' };
    if (kind === 'mysql') {
      const db = await freshMysqlDatabase();
      env.EPOCH_DSN = db.dsn;
      dropDb = db.drop;
    }
    t = await startTestServer(backend, env);
    api = new RawClient(t.url, { Authorization: `Bearer ${await t.token()}` });
  }, 60_000);
  afterAll(async () => {
    await t.stop();
    await dropDb?.();
  });

  async function gc(query = ''): Promise<GcReport> {
    await sleep(5); // the grace period is 0: be strictly after the last push
    const res = await api.fetch(`/api/gc${query}`, { method: 'POST' });
    expect(res.status).toBe(200);
    return (await res.json()) as GcReport;
  }
  const exists = async (key: string) => (await t.store.stat(key)) !== undefined;
  const setPolicies = async (policies: unknown[]) => {
    const res = await api.fetch('/api/retention', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ policies }),
    });
    expect(res.status).toBe(200);
  };
  const deleteManifest = async (repo: string, ref: string) =>
    expect((await api.fetch(`/v2/${repo}/manifests/${ref}`, { method: 'DELETE' })).status).toBe(
      202,
    );

  it('keeps a blob shared with a surviving image when its other user goes', async () => {
    const a = await api.pushImage('shared/a', 'v1', { layers: ['shared-base', 'only-a'] });
    await api.pushImage('shared/b', 'v1', { layers: ['shared-base', 'only-b'] });
    await deleteManifest('shared/a', a.digest);
    const report = await gc();
    expect(report.manifests.count).toBe(0); // the manifest was deleted by the client already
    expect(await exists(Layout.blob(digestOf('only-a')))).toBe(false);
    expect(await exists(Layout.link('shared/a', digestOf('only-a')))).toBe(false);
    expect(await exists(Layout.blob(digestOf('shared-base')))).toBe(true);
    expect(await exists(Layout.blob(digestOf('only-b')))).toBe(true);
    const pulled = await api.fetch(`/v2/shared/b/blobs/${digestOf('shared-base')}`);
    expect(pulled.status).toBe(200);
    expect(await pulled.text()).toBe('shared-base');
    expect((await api.fetch('/v2/shared/b/manifests/v1')).status).toBe(200);
  });

  it('keeps the children of a tagged index, and collects them with it', async () => {
    const repo = 'multi/app';
    const children = [];
    for (const arch of ['amd64', 'arm64']) {
      const config = await api.pushBlob(repo, '{}');
      const layer = await api.pushBlob(repo, `layer-${arch}`);
      const bytes = JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: config, size: 2 },
        layers: [
          { mediaType: MediaTypes.ociLayerGzip, digest: layer, size: `layer-${arch}`.length },
        ],
      });
      const digest = digestOf(bytes);
      const res = await api.fetch(`/v2/${repo}/manifests/${digest}`, {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociManifest },
        body: bytes,
      });
      expect(res.status).toBe(201);
      children.push({ digest, size: bytes.length, arch });
    }
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: children.map((c) => ({
        mediaType: MediaTypes.ociManifest,
        digest: c.digest,
        size: c.size,
        platform: { os: 'linux', architecture: c.arch },
      })),
    });
    const put = await api.fetch(`/v2/${repo}/manifests/latest`, {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociIndex },
      body: index,
    });
    expect(put.status).toBe(201);

    await gc();
    for (const c of children) {
      expect((await api.fetch(`/v2/${repo}/manifests/${c.digest}`)).status).toBe(200);
    }
    expect(await exists(Layout.blob(digestOf('layer-arm64')))).toBe(true);

    await deleteManifest(repo, 'latest');
    const report = await gc();
    expect(report.manifests.items.map((m) => m.digest).sort()).toEqual(
      [digestOf(index), ...children.map((c) => c.digest)].sort(),
    );
    for (const c of children) {
      expect((await api.fetch(`/v2/${repo}/manifests/${c.digest}`)).status).toBe(404);
      expect(await exists(Layout.manifestByDigest(repo, c.digest))).toBe(false);
    }
    expect(await exists(Layout.blob(digestOf('layer-arm64')))).toBe(false);
  });

  it('keeps referrers while their subject lives, and collects them with it', async () => {
    const repo = 'signed/app';
    const subject = await api.pushImage(repo, 'v1', { layers: ['signed-layer'] });
    const sig = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: 'application/vnd.example.sig',
      config: {
        mediaType: MediaTypes.ociEmpty,
        digest: await api.pushBlob(repo, '{}'),
        size: 2,
      },
      layers: [
        {
          mediaType: 'application/octet-stream',
          digest: await api.pushBlob(repo, 'signature'),
          size: 9,
        },
      ],
      subject: {
        mediaType: MediaTypes.ociManifest,
        digest: subject.digest,
        size: subject.bytes.length,
      },
    });
    const sigDigest = digestOf(sig);
    const res = await api.fetch(`/v2/${repo}/manifests/${sigDigest}`, {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      body: sig,
    });
    expect(res.status).toBe(201);

    await gc();
    const referrers = (await (
      await api.fetch(`/v2/${repo}/referrers/${subject.digest}`)
    ).json()) as {
      manifests: { digest: string }[];
    };
    expect(referrers.manifests.map((m) => m.digest)).toEqual([sigDigest]);

    await deleteManifest(repo, 'v1');
    const report = await gc();
    expect(report.manifests.items.map((m) => m.digest).sort()).toEqual(
      [subject.digest, sigDigest].sort(),
    );
    expect(await exists(Layout.referrer(repo, subject.digest, sigDigest))).toBe(false);
    expect(await exists(Layout.blob(digestOf('signature')))).toBe(false);
  });

  it('lets a push that re-references a blob during the window win over the sweep', async () => {
    const repo = 'race/app';
    const old = await api.pushImage(repo, 'v1', { layers: ['race-layer'] });
    await deleteManifest(repo, old.digest);
    await sleep(5);
    // Mark now; the push lands between the mark and the deleting transaction.
    const index = t.server.index;
    const repoRow = (await index.gc.repositories()).find((r) => r.name === repo);
    if (!repoRow) throw new Error('repository missing');
    const clock = { now: new Date(), cutoff: new Date() };
    const plan = await index.gc.plan(repoRow, undefined, clock);
    expect(plan.links).toContain(digestOf('race-layer'));
    const again = await api.pushImage(repo, 'v2', { layers: ['race-layer'] });
    const done = await index.gc.apply(plan, undefined, clock);
    expect(done.links).not.toContain(digestOf('race-layer'));
    await gc();
    const blob = await api.fetch(`/v2/${repo}/blobs/${digestOf('race-layer')}`);
    expect(blob.status).toBe(200);
    expect(await blob.text()).toBe('race-layer');
    expect((await api.fetch(`/v2/${repo}/manifests/${again.digest}`)).status).toBe(200);

    // And truly concurrent, with a real grace period: garbage older than it is swept while
    // pushes re-use its blobs; every push succeeds and every tag still pulls.
    for (let i = 0; i < 6; i++) {
      const tmp = await api.pushImage(repo, `tmp${i}`, { layers: [`c${i % 3}`] });
      await deleteManifest(repo, tmp.digest);
    }
    await sleep(1100);
    const pushes: Promise<{ digest: string }>[] = [];
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 6; i++) {
      pushes.push(api.pushImage(repo, `keep${i}`, { layers: [`c${i % 3}`] }));
      runs.push(
        collectGarbage(t.server.registry, index, { delayMs: 1000 }).catch((err: Error) => {
          if (err.name !== 'GcBusyError') throw err;
        }),
      );
    }
    await Promise.all([...pushes, ...runs]);
    await gc();
    for (let i = 0; i < 6; i++) {
      const m = await api.fetch(`/v2/${repo}/manifests/keep${i}`);
      expect(m.status).toBe(200);
      const b = await api.fetch(`/v2/${repo}/blobs/${digestOf(`c${i % 3}`)}`);
      expect(b.status).toBe(200);
      expect(await b.text()).toBe(`c${i % 3}`);
    }
  });

  it('finishes the job on the next run after a crash between index commit and storage delete', async () => {
    const repo = 'crash/app';
    const img = await api.pushImage(repo, 'v1', { layers: ['crash-layer'] });
    await deleteManifest(repo, 'v1');
    await sleep(5);
    const failing: ObjectStore = Object.create(t.store, {
      deleteMany: { value: async () => Promise.reject(new Error('simulated crash')) },
    });
    await expect(
      collectGarbage(new Registry(failing), t.server.index, { delayMs: 0 }),
    ).rejects.toThrow('simulated crash');
    // The index commit happened; the objects are still there.
    expect(await t.server.index.reads.hasManifest(repo, img.digest)).toBe(false);
    expect(await exists(Layout.manifestByDigest(repo, img.digest))).toBe(true);
    expect(await exists(Layout.blob(digestOf('crash-layer')))).toBe(true);
    await gc();
    expect(await exists(Layout.manifestByDigest(repo, img.digest))).toBe(false);
    expect(await exists(Layout.blob(digestOf('crash-layer')))).toBe(false);
    expect(await exists(Layout.link(repo, digestOf('crash-layer')))).toBe(false);
  });

  it('changes nothing in a dry run, and reports what a real run then deletes', async () => {
    const repo = 'dry/app';
    const img = await api.pushImage(repo, 'v1', { layers: ['dry-layer'] });
    await api.pushImage(repo, 'v1', { layers: ['dry-layer-2'] });
    const keys = await t.keys();
    const stats = await t.server.index.reads.stats();
    const events = (await t.server.index.audit.list({ limit: 1 })).items[0]?.id;
    const dry = await gc('?dryRun=true');
    expect(dry.dryRun).toBe(true);
    expect(dry.manifests.items.map((m) => m.digest)).toContain(img.digest);
    expect(dry.blobs.items.map((b) => b.digest)).toContain(digestOf('dry-layer'));
    expect(await t.keys()).toEqual(keys);
    expect(await t.server.index.reads.stats()).toEqual(stats);
    expect((await t.server.index.audit.list({ limit: 1 })).items[0]?.id).toBe(events);
    const real = await gc();
    expect(real.manifests.items.map((m) => m.digest)).toEqual(
      dry.manifests.items.map((m) => m.digest),
    );
    expect(real.blobs.items.map((b) => b.digest).sort()).toEqual(
      dry.blobs.items.map((b) => b.digest).sort(),
    );
    // Every deletion is audited; the last report is served.
    const audit = (await t.server.index.audit.list({ limit: 100 })).items;
    expect(audit.some((e) => e.action === 'gc.delete.manifest' && e.digest === img.digest)).toBe(
      true,
    );
    expect(
      audit.some((e) => e.action === 'gc.delete.blob' && e.digest === digestOf('dry-layer')),
    ).toBe(true);
    const last = (await (await api.fetch('/api/gc')).json()) as {
      lastRun: { dryRun: boolean; report: GcReport };
    };
    expect(last.lastRun.dryRun).toBe(false);
    expect(last.lastRun.report.manifests.count).toBe(real.manifests.count);
    // And counted in the metrics.
    const metrics = await (await api.fetch('/metrics')).text();
    expect(metrics).toMatch(/^epoch_gc_runs_total\{result="dry-run"\} [1-9]/m);
    expect(metrics).toMatch(/^epoch_gc_runs_total\{result="ok"\} [1-9]/m);
    const reclaimed = Number(/^epoch_gc_reclaimed_bytes_total (\d+)/m.exec(metrics)?.[1]);
    expect(reclaimed).toBeGreaterThanOrEqual(real.bytesReclaimed);
  });

  it('reports what the grace period holds back, and until when, and deletes none of it', async () => {
    const repo = 'held/app';
    const img = await api.pushImage(repo, 'v1', { layers: ['held-layer'] });
    await deleteManifest(repo, 'v1');
    // A blob in storage the index never heard of (an upload between its two writes, say).
    const orphan = Buffer.from('held-orphan-bytes');
    await t.store.put(Layout.blob(digestOf(orphan)), orphan);
    const before = Date.now();
    const hour = 3_600_000;
    const mine = (report: GcReport) => ({
      manifests: report.held.manifests.items.filter((m) => m.repository === repo),
      blobs: report.held.blobs.items.filter((b) => b.digest === digestOf('held-layer')),
      orphans: report.held.orphans.items.filter((o) => o.key === Layout.blob(digestOf(orphan))),
    });
    for (const dryRun of [true, false]) {
      const report = await collectGarbage(new Registry(t.store), t.server.index, {
        delayMs: hour,
        dryRun,
      });
      const held = mine(report);
      expect(held.manifests.map((m) => m.digest)).toEqual([img.digest]);
      expect(held.blobs).toHaveLength(1);
      expect(held.orphans).toEqual([
        expect.objectContaining({ size: orphan.length, until: expect.any(String) }),
      ]);
      for (const item of [...held.manifests, ...held.blobs, ...held.orphans]) {
        expect(Date.parse(item.until)).toBeGreaterThanOrEqual(before - 1000 + hour);
        expect(Date.parse(item.until)).toBeLessThanOrEqual(Date.now() + hour);
        expect(item.until <= (report.held.until ?? '')).toBe(true);
      }
      // Held, not collected: the report does not list it as deleted, and it is all still there.
      expect(report.manifests.items.map((m) => m.digest)).not.toContain(img.digest);
      expect(await exists(Layout.manifestByDigest(repo, img.digest))).toBe(true);
      expect(await exists(Layout.blob(digestOf('held-layer')))).toBe(true);
      expect(await exists(Layout.blob(digestOf(orphan)))).toBe(true);
    }
    // With no grace period, the same garbage goes, and nothing is reported as held.
    const now = await gc();
    expect(now.held).toEqual(expect.objectContaining({ until: null }));
    expect(now.held.manifests.count + now.held.blobs.count + now.held.orphans.count).toBe(0);
    expect(now.manifests.items.map((m) => m.digest)).toContain(img.digest);
    expect(now.orphans.items.map((o) => o.key)).toContain(Layout.blob(digestOf(orphan)));
    expect(await exists(Layout.blob(digestOf(orphan)))).toBe(false);
  });

  it('applies retention: keep last N tags, keep patterns, never the tags it keeps', async () => {
    const repo = 'keep/app';
    await setPolicies([{ repositoryPattern: 'keep/*', keepLast: 2, keepTags: ['t1'] }]);
    for (let i = 1; i <= 5; i++) {
      await api.pushImage(repo, `t${i}`, { layers: [`keep-${i}`] });
      await sleep(3);
    }
    const report = await gc();
    expect(report.tags.items.map((x) => x.tag).sort()).toEqual(['t2', 't3']);
    expect((await t.server.index.reads.listTagNames(repo)).items).toEqual(['t1', 't4', 't5']);
    expect(await exists(Layout.tag(repo, 't2'))).toBe(false);
    expect(await exists(Layout.blob(digestOf('keep-2')))).toBe(false);
    expect(await exists(Layout.blob(digestOf('keep-1')))).toBe(true);
    await setPolicies([]);
  });

  it('refuses to overwrite or delete protected tags, with a 403', async () => {
    const repo = 'prod/app';
    await setPolicies([
      { repositoryPattern: 'prod/**', protectedTags: ['stable', 'v*'], keepLast: 0 },
    ]);
    const first = await api.pushImage(repo, 'stable', { layers: ['prod-1'] });
    await api.pushImage(repo, 'stable', { layers: ['prod-1'] }); // the same bytes again: fine
    await expect(api.pushImage(repo, 'stable', { layers: ['prod-2'] })).rejects.toThrow(
      /403.*DENIED/,
    );
    const del = await api.fetch(`/v2/${repo}/manifests/stable`, { method: 'DELETE' });
    expect(del.status).toBe(403);
    expect(await errorCode(del)).toBe('DENIED');
    const byDigest = await api.fetch(`/v2/${repo}/manifests/${first.digest}`, { method: 'DELETE' });
    expect(byDigest.status).toBe(403);
    const viaApi = await api.fetch(`/api/repositories/${repo}/tags/stable`, { method: 'DELETE' });
    expect(viaApi.status).toBe(403);
    expect(((await viaApi.json()) as { code: string }).code).toBe('TAG_PROTECTED');
    // Retention (keepLast 0) leaves protected tags alone.
    await gc();
    const got = await api.fetch(`/v2/${repo}/manifests/stable`);
    expect(got.headers.get('docker-content-digest')).toBe(first.digest);
    await setPolicies([]);
  });

  it('runs one collection at a time across processes, and takes over an expired lock', async () => {
    const index = t.server.index;
    expect(await index.gc.acquireLock('gc', 'other-process', 60_000)).toBe(true);
    const busy = await api.fetch('/api/gc', { method: 'POST' });
    expect(busy.status).toBe(409);
    expect(((await busy.json()) as { code: string }).code).toBe('GC_RUNNING');
    await index.gc.releaseLock('gc', 'other-process');
    expect(await index.gc.acquireLock('gc', 'crashed-process', 1)).toBe(true);
    await sleep(10);
    await gc();
  });

  it('keeps exactly 3 snapshot versions of 20 under one tag, sharing the base disk layer', async () => {
    const repo = 'vm/snap';
    await setPolicies([{ repositoryPattern: 'vm/*', keepLast: 3 }]);
    const base = randomBytes(256 * 1024);
    const baseDigest = sha256(base);
    await api.pushBlob(repo, base);
    const versions: { digest: string; configSize: number; blobs: Map<string, number> }[] = [];
    for (let v = 1; v <= 20; v++) {
      const config = Buffer.from(JSON.stringify({ version: v, kind: 'snapshot' }));
      const memory = randomBytes(16 * 1024);
      const configDigest = await api.pushBlob(repo, config);
      const memoryDigest = await api.pushBlob(repo, memory);
      const bytes = JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        artifactType: 'application/vnd.cocoonstack.snapshot.v1+json',
        config: {
          mediaType: 'application/vnd.cocoonstack.snapshot.config.v1+json',
          digest: configDigest,
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.cocoonstack.disk.qcow2',
            digest: baseDigest,
            size: base.length,
            annotations: { 'org.opencontainers.image.title': 'base.qcow2' },
          },
          {
            mediaType: 'application/vnd.cocoonstack.memory',
            digest: memoryDigest,
            size: memory.length,
            annotations: { 'org.opencontainers.image.title': 'memory' },
          },
        ],
      });
      const res = await api.fetch(`/v2/${repo}/manifests/latest`, {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociManifest },
        body: bytes,
      });
      expect(res.status).toBe(201);
      versions.push({
        digest: digestOf(bytes),
        configSize: config.length,
        blobs: new Map([
          [configDigest, config.length],
          [baseDigest, base.length],
          [memoryDigest, memory.length],
        ]),
      });
      await sleep(3);
    }
    await gc();
    const kept = versions.slice(-3);
    const needed = new Map<string, number>();
    for (const v of kept) for (const [d, size] of v.blobs) needed.set(d, size);
    // Every blob of this repository's 20 versions that is still stored is one the 3 need.
    const all = new Set(versions.flatMap((v) => [...v.blobs.keys()]));
    let stored = 0;
    for (const d of all) {
      const info = await t.store.stat(Layout.blob(d));
      if (info) {
        expect(needed.has(d)).toBe(true);
        stored += info.size;
      }
    }
    const expected = [...needed.values()].reduce((a, b) => a + b, 0);
    expect(stored).toBe(expected);
    expect(expected).toBe(base.length + 3 * 16 * 1024 + kept.reduce((a, v) => a + v.configSize, 0));
    // The tag and the two previous versions pull, with verified digests.
    for (const ref of ['latest', ...kept.map((v) => v.digest)]) {
      const res = await api.fetch(`/v2/${repo}/manifests/${ref}`);
      expect(res.status).toBe(200);
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(sha256(bytes)).toBe(res.headers.get('docker-content-digest'));
      const doc = JSON.parse(Buffer.from(bytes).toString()) as {
        config: { digest: string };
        layers: { digest: string }[];
      };
      for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
        const blob = await api.fetch(`/v2/${repo}/blobs/${d}`);
        expect(blob.status).toBe(200);
        expect(sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(d);
      }
    }
    expect(
      (await api.fetch(`/v2/${repo}/manifests/latest`)).headers.get('docker-content-digest'),
    ).toBe(kept[2]?.digest);
    for (const v of versions.slice(0, 17)) {
      expect((await api.fetch(`/v2/${repo}/manifests/${v.digest}`)).status).toBe(404);
    }
    await setPolicies([]);
  });
});
