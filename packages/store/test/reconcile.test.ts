import type { RepositoryScan, ScannedBlob, ScannedManifest, ScannedTag } from '@epoch/oci';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Store } from '../src/index.js';
import {
  containerImage,
  forEachDatabase,
  imageIndex,
  imageManifest,
  manifestInput,
  type TestDatabase,
} from './helpers.js';

type Input = ReturnType<typeof manifestInput> & {
  config?: { digest: string; size: number; mediaType: string };
  layers?: { digest: string; size: number; mediaType: string }[];
};

const T0 = new Date('2020-01-01T00:00:00.000Z');

/** A repository snapshot: manifests, tags → inputs, blobs from the images' descriptors. */
function repoSnapshot(
  name: string,
  manifests: Input[],
  tags: Record<string, Input>,
  extraLinked: Record<string, number> = {},
): RepositoryScan {
  const blobs = new Map<string, ScannedBlob>();
  for (const m of manifests) {
    for (const d of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) {
      blobs.set(d.digest, { size: d.size, mediaType: d.mediaType, linked: true, linkedAt: T0 });
    }
  }
  for (const [digest, size] of Object.entries(extraLinked)) {
    blobs.set(digest, { size, linked: true, linkedAt: T0 });
  }
  return {
    name,
    manifests: new Map<string, ScannedManifest>(
      manifests.map((m) => [m.digest, { ...m, pushedAt: T0 }]),
    ),
    tags: new Map<string, ScannedTag>(
      Object.entries(tags).map(([t, m]) => [t, { digest: m.digest, pushedAt: T0 }]),
    ),
    blobs,
  };
}

forEachDatabase((fresh) => {
  let database: TestDatabase;
  let store: Store;
  beforeEach(async () => {
    database = await fresh();
    store = await database.open();
  });
  afterEach(async () => {
    await store.close();
    await database.drop();
  });

  /** What a reindex must restore, without ids and times. */
  async function state() {
    const repos = (await store.reads.listRepositories()).items.map(
      ({ id, createdAt, updatedAt, ...r }) => r,
    );
    const tags: Record<string, unknown> = {};
    for (const r of repos) {
      tags[r.name] = (await store.reads.listTags(r.name)).items
        .map(({ id, pushedAt, ...t }) => t)
        .sort((a, b) => (a.name < b.name ? -1 : 1));
    }
    const blobs = await database.query('select digest, size, ref_count from blobs order by digest');
    const links = await database.query(
      'select r.name, l.digest from repository_blobs l join repositories r on r.id = l.repository_id order by r.name, l.digest',
    );
    return {
      repos,
      tags,
      stats: await store.reads.stats(),
      blobs: blobs.map((b) => ({ ...b, size: Number(b.size), ref_count: Number(b.ref_count) })),
      links,
    };
  }

  function world() {
    const shared = containerImage([1000]);
    const a = containerImage([10, 20]);
    const b = imageManifest(shared.config, [...shared.layers, ...a.layers.slice(0, 1)]);
    const amd = containerImage([300]);
    const arm = containerImage([400]);
    const idx = imageIndex([
      { digest: amd.digest, size: amd.bytes.length, arch: 'amd64' },
      { digest: arm.digest, size: arm.bytes.length, arch: 'arm64' },
    ]);
    const sig = manifestInput({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/example',
      config: {
        mediaType: 'application/vnd.oci.empty.v1+json',
        digest: shared.config.digest,
        size: 100,
      },
      layers: [],
      subject: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: a.digest,
        size: a.bytes.length,
      },
    });
    const bWithBlobs: Input = {
      ...b,
      config: shared.config,
      layers: [...shared.layers, ...(a.layers[0] ? [{ ...a.layers[0], size: 10 }] : [])],
    };
    const sigWithBlobs: Input = {
      ...sig,
      config: { ...shared.config, mediaType: 'application/vnd.oci.empty.v1+json' },
      layers: [],
    };
    return { shared, a, b: bWithBlobs, amd, arm, idx, sig: sigWithBlobs };
  }

  it('builds a fresh index from a snapshot; a second run changes nothing', async () => {
    const w = world();
    const snapshot = {
      startedAt: new Date(),
      repositories: [
        repoSnapshot(
          'team/app',
          [w.a, w.b, w.sig],
          { v1: w.a, v2: w.b, sig: w.sig },
          { [`sha256:${'e'.repeat(64)}`]: 7 },
        ),
        repoSnapshot('multi', [w.amd, w.arm, w.idx], { latest: w.idx }),
      ],
    };
    const report = await store.writes.reconcile(snapshot);
    expect(report).toMatchObject({
      repositories: { added: 2, removed: 0 },
      tags: { added: 4, updated: 0, removed: 0 },
      manifests: { added: 6, removed: 0 },
      errors: [],
    });
    expect(await store.reads.getTag('multi', 'latest')).toMatchObject({
      kind: expect.any(String),
      layerCount: 2,
      platformSizes: [
        { digest: w.amd.digest, size: 400, layerCount: 1 },
        { digest: w.arm.digest, size: 500, layerCount: 1 },
      ],
    });
    expect((await store.reads.listReferrers('team/app', w.a.digest)).map((r) => r.digest)).toEqual([
      w.sig.digest,
    ]);
    // The shared config is referenced by b and sig; the a layer by a and b.
    expect((await store.reads.getBlob(w.shared.config.digest))?.refCount).toBe(2);
    expect((await store.reads.getBlob(w.a.layers[0]?.digest ?? ''))?.refCount).toBe(2);
    expect(await store.reads.getBlob(`sha256:${'e'.repeat(64)}`)).toMatchObject({
      size: 7,
      refCount: 0,
    });
    expect(await store.reads.isBlobLinked('team/app', `sha256:${'e'.repeat(64)}`)).toBe(true);

    const before = await state();
    const again = await store.writes.reconcile({ ...snapshot, startedAt: new Date() });
    expect(again).toEqual({
      repositories: { added: 0, removed: 0 },
      tags: { added: 0, updated: 0, removed: 0 },
      manifests: { added: 0, updated: 0, removed: 0 },
      links: { added: 0, removed: 0 },
      blobs: { added: 0, updated: 0 },
      aggregates: 0,
      vanished: 0,
      errors: [],
    });
    expect(await state()).toEqual(before);
  });

  it('does not undo a delete that landed between the storage read and the apply', async () => {
    const w = world();
    const read = repoSnapshot('team/app', [w.a, w.b], { v1: w.a, v2: w.b });
    // Meanwhile v1 and its manifest were deleted from storage (and from the index, which held
    // nothing yet): the recheck, made right before applying, no longer lists them.
    const rechecked: string[] = [];
    const report = await store.writes.reconcile({
      startedAt: new Date(),
      repositories: [read],
      recheck: async (name) => {
        rechecked.push(name);
        return { manifests: new Set([w.b.digest]), tags: new Set(['v2']) };
      },
    });
    expect(rechecked).toEqual(['team/app']);
    expect(report.vanished).toBe(2);
    expect((await store.reads.listTags('team/app')).items.map((t) => t.name)).toEqual(['v2']);
    expect(await store.reads.hasManifest('team/app', w.a.digest)).toBe(false);
    // Without the recheck the same snapshot puts them back: what the recheck is for.
    await store.writes.reconcile({ startedAt: new Date(), repositories: [read] });
    expect((await store.reads.listTags('team/app')).items.map((t) => t.name).sort()).toEqual([
      'v1',
      'v2',
    ]);
  });

  it('matches what write-through indexing recorded, and repairs damage', async () => {
    const w = world();
    for (const m of [w.a, w.b]) {
      for (const d of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) {
        await store.writes.linkBlob('team/app', d.digest, d.size, d.mediaType, T0);
      }
    }
    await store.writes.recordManifest('team/app', { ...w.a, tags: ['v1'], pushedAt: T0 });
    await store.writes.recordManifest('team/app', { ...w.b, tags: ['v2'], pushedAt: T0 });
    const pushed = await state();
    const snapshot = {
      startedAt: new Date(),
      repositories: [repoSnapshot('team/app', [w.a, w.b], { v1: w.a, v2: w.b })],
    };
    const noop = await store.writes.reconcile(snapshot);
    expect(noop.tags).toEqual({ added: 0, updated: 0, removed: 0 });
    expect(noop.manifests).toEqual({ added: 0, updated: 0, removed: 0 });
    expect(noop.blobs).toEqual({ added: 0, updated: 0 });
    expect(await state()).toEqual(pushed);

    // Damage: a lost tag, a wrong ref count, a bogus size, a stale tag and repository.
    await store.writes.deleteTag('team/app', 'v2', T0);
    await store.writes.recordManifest('ghost', {
      ...containerImage([5]),
      tags: ['old'],
      pushedAt: T0,
    });
    await store.writes.recordManifest('team/app', {
      ...containerImage([6]),
      tags: ['gone'],
      pushedAt: T0,
    });
    const report = await store.writes.reconcile({ ...snapshot, startedAt: new Date() });
    expect(report).toMatchObject({
      repositories: { added: 0, removed: 1 },
      tags: { added: 1, removed: 2 },
      manifests: { removed: 2 },
    });
    const repaired = await state();
    // Blob rows of removed manifests stay (ref_count 0) for garbage collection.
    expect({
      ...repaired,
      blobs: [],
      stats: { ...repaired.stats, blobCount: 0, totalSize: 0 },
    }).toEqual({
      ...pushed,
      blobs: [],
      stats: { ...pushed.stats, blobCount: 0, totalSize: 0 },
    });
    for (const b of pushed.blobs) expect(repaired.blobs).toContainEqual(b);
    expect(repaired.blobs.filter((b) => b.ref_count > 0)).toEqual(
      pushed.blobs.filter((b) => b.ref_count > 0),
    );
  });

  it('does not undo a push that lands after the snapshot was read', async () => {
    const w = world();
    await store.writes.recordManifest('team/app', { ...w.a, tags: ['v1'], pushedAt: T0 });
    const startedAt = new Date(Date.now() - 1000);
    // Pushed after the read began: storage (the snapshot) does not show it yet.
    const later = new Date();
    await store.writes.recordManifest('team/app', { ...w.b, tags: ['v1', 'new'], pushedAt: later });
    await store.writes.recordManifest('fresh', {
      ...containerImage([9]),
      tags: ['x'],
      pushedAt: later,
    });
    const report = await store.writes.reconcile({
      startedAt,
      repositories: [repoSnapshot('team/app', [w.a], { v1: w.a })],
    });
    expect(report.tags).toEqual({ added: 0, updated: 0, removed: 0 });
    expect(report.manifests.removed).toBe(0);
    expect(report.repositories.removed).toBe(0);
    expect((await store.reads.getTag('team/app', 'v1'))?.digest).toBe(w.b.digest);
    expect((await store.reads.listTagNames('team/app')).items).toEqual(['new', 'v1']);
    expect((await store.reads.listTagNames('fresh')).items).toEqual(['x']);
  });

  it('fixes wrong reference counts exactly', async () => {
    const w = world();
    await store.writes.recordManifest('r1', { ...w.a, tags: ['t'], pushedAt: T0 });
    await store.writes.recordManifest('r2', { ...w.a, tags: ['t'], pushedAt: T0 });
    await store.writes.recordManifest('r2', { ...w.b, tags: ['u'], pushedAt: T0 });
    const layer = w.a.layers?.[0]?.digest ?? '';
    expect((await store.reads.getBlob(layer))?.refCount).toBe(3);
    // Corrupt the counts behind the store's back, then reconcile.
    const snapshot = {
      startedAt: new Date(),
      repositories: [
        repoSnapshot('r1', [w.a], { t: w.a }),
        repoSnapshot('r2', [w.a, w.b], { t: w.a, u: w.b }),
      ],
    };
    await store.writes.deleteManifest('r2', w.b.digest, T0);
    expect((await store.reads.getBlob(layer))?.refCount).toBe(2);
    const report = await store.writes.reconcile(snapshot);
    expect(report.manifests.added).toBe(1);
    expect((await store.reads.getBlob(layer))?.refCount).toBe(3);
    expect((await store.reads.getBlob(w.a.config?.digest ?? ''))?.refCount).toBe(2);
  });
});
