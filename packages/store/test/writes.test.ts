import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Store } from '../src/index.js';
import {
  asImage,
  blob,
  containerImage,
  forEachDatabase,
  imageIndex,
  imageManifest,
  type TestDatabase,
} from './helpers.js';

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

  it('records a push atomically: repository, manifest, tags, blob references', async () => {
    const img = containerImage([1000, 2000]);
    const at = new Date('2030-01-02T03:04:05.678Z');
    const result = await store.writes.recordManifest('team/app', {
      ...img,
      tags: ['v1', 'latest'],
      pushedAt: at,
    });
    expect(result.created).toBe(true);
    expect(await store.reads.repositoryExists('team/app')).toBe(true);
    expect(await store.reads.tagsOf('team/app', img.digest)).toEqual(['latest', 'v1']);
    expect(await store.reads.getBlob(img.config.digest)).toEqual({
      digest: img.config.digest,
      size: 100,
      mediaType: img.config.mediaType,
      refCount: 1,
    });
    const tag = await store.reads.getTag('team/app', 'v1');
    expect(tag).toMatchObject({
      repoName: 'team/app',
      name: 'v1',
      digest: img.digest,
      kind: 'container-image',
      totalSize: 3100,
      layerCount: 2,
      size: img.bytes.length,
      configDigest: img.config.digest,
      pushedAt: at,
    });
    expect(Buffer.from(tag?.manifest ?? []).equals(img.bytes)).toBe(true);
    const repo = await store.reads.getRepository('team/app');
    expect(repo).toMatchObject({
      name: 'team/app',
      tagCount: 2,
      totalSize: 3100,
      kind: 'container-image',
    });
    expect(repo?.updatedAt).toEqual(at);
    expect(repo?.createdAt).toEqual(at);
  });

  it('counts a blob once per manifest row: re-push, shared layers, other repositories, delete', async () => {
    const shared = blob(5000);
    const config = blob(10, 'application/vnd.oci.image.config.v1+json');
    const a = imageManifest(config, [shared, shared]);
    const b = imageManifest(config, [shared, blob(1)]);
    expect((await store.writes.recordManifest('r1', { ...a, tags: ['a'] })).created).toBe(true);
    // Re-push of the same digest (another tag): no new reference.
    expect((await store.writes.recordManifest('r1', { ...a, tags: ['a2'] })).created).toBe(false);
    expect((await store.reads.getBlob(shared.digest))?.refCount).toBe(1);
    await store.writes.recordManifest('r1', { ...b, tags: ['b'] });
    await store.writes.recordManifest('r2', { ...a, tags: ['a'] });
    expect((await store.reads.getBlob(shared.digest))?.refCount).toBe(3);
    expect((await store.reads.getBlob(config.digest))?.refCount).toBe(3);

    const deleted = await store.writes.deleteManifest('r1', a.digest);
    expect(deleted).toEqual({ found: true, untagged: ['a', 'a2'] });
    expect((await store.reads.getBlob(shared.digest))?.refCount).toBe(2);
    expect(await store.writes.deleteManifest('r1', a.digest)).toEqual({
      found: false,
      untagged: [],
    });
    expect((await store.reads.getBlob(shared.digest))?.refCount).toBe(2);
    await store.writes.deleteManifest('r1', b.digest);
    await store.writes.deleteManifest('r2', a.digest);
    expect((await store.reads.getBlob(shared.digest))?.refCount).toBe(0);
    // Repositories without manifests are gone from every listing.
    expect(await store.reads.repositoryExists('r1')).toBe(false);
    expect((await store.reads.listRepositoryNames()).items).toEqual([]);
  });

  it('re-points a tag and moves its push time; deleteTag reports whether it existed', async () => {
    const one = containerImage([1]);
    const two = containerImage([2]);
    const t1 = new Date('2030-01-01T00:00:00.000Z');
    const t2 = new Date('2030-01-01T00:00:01.000Z');
    await store.writes.recordManifest('r', { ...one, tags: ['latest'], pushedAt: t1 });
    await store.writes.recordManifest('r', { ...two, tags: ['latest'], pushedAt: t2 });
    const tag = await store.reads.getTag('r', 'latest');
    expect(tag?.digest).toBe(two.digest);
    expect(tag?.pushedAt).toEqual(t2);
    expect(await store.reads.tagsOf('r', one.digest)).toEqual([]);
    const t3 = new Date('2030-01-01T00:00:02.000Z');
    expect(await store.writes.deleteTag('r', 'latest', t3)).toBe(true);
    expect(await store.writes.deleteTag('r', 'latest')).toBe(false);
    expect(await store.writes.deleteTag('nope', 'latest')).toBe(false);
    expect((await store.reads.getRepository('r'))?.updatedAt).toEqual(t3);
    // An older push (e.g. a reindex) never moves updated_at back.
    await store.writes.recordManifest('r', { ...one, tags: ['old'], pushedAt: t1 });
    expect((await store.reads.getRepository('r'))?.updatedAt).toEqual(t3);
  });

  it('links blobs per repository; manifests make their blobs servable too', async () => {
    const b = blob(42);
    expect(await store.reads.isBlobLinked('r', b.digest)).toBe(false);
    await store.writes.linkBlob('r', b.digest, 42);
    await store.writes.linkBlob('r', b.digest, 42);
    expect(await store.reads.isBlobLinked('r', b.digest)).toBe(true);
    expect(await store.reads.isBlobLinked('other', b.digest)).toBe(false);
    // A link alone does not make a repository visible.
    expect(await store.reads.repositoryExists('r')).toBe(false);
    expect(await store.reads.getBlob(b.digest)).toMatchObject({ size: 42, refCount: 0 });
    expect(await store.writes.unlinkBlob('r', b.digest)).toBe(true);
    expect(await store.writes.unlinkBlob('r', b.digest)).toBe(false);
    expect(await store.reads.isBlobLinked('r', b.digest)).toBe(false);

    const img = containerImage([7]);
    await store.writes.recordManifest('m', { ...img, tags: ['t'] });
    expect(await store.reads.isBlobLinked('m', img.layers[0]?.digest ?? '')).toBe(true);
    expect(await store.reads.isBlobLinked('r', img.layers[0]?.digest ?? '')).toBe(false);
  });

  it('indexes an image index with per-platform sizes, from given or stored children', async () => {
    const base = blob(1000);
    const amd = containerImage([]);
    const amdImg = imageManifest(amd.config, [base, blob(10)]);
    const armImg = imageManifest(amd.config, [base, blob(20)]);
    const index = imageIndex([
      { digest: amdImg.digest, size: amdImg.bytes.length, arch: 'amd64' },
      { digest: armImg.digest, size: armImg.bytes.length, arch: 'arm64' },
    ]);
    await store.writes.recordManifest('multi', { ...amdImg });
    await store.writes.recordManifest('multi', { ...armImg });
    // Children read from the index itself (they were pushed first).
    await store.writes.recordManifest('multi', { ...index, tags: ['latest'] });
    const tag = await store.reads.getTag('multi', 'latest');
    expect(tag).toMatchObject({
      kind: 'image-index',
      layerCount: 2,
      totalSize: 100 + 1000 + 10 + 20,
    });
    expect(tag?.platformSizes).toEqual([
      {
        digest: amdImg.digest,
        size: 1110,
        layerCount: 2,
        platform: { architecture: 'amd64', os: 'linux' },
      },
      {
        digest: armImg.digest,
        size: 1120,
        layerCount: 2,
        platform: { architecture: 'arm64', os: 'linux' },
      },
    ]);
    // Same result when the caller passes the children.
    const children = new Map([
      [amdImg.digest, asImage(amdImg)],
      [armImg.digest, asImage(armImg)],
    ]);
    await store.writes.recordManifest('multi2', {
      ...index,
      tags: ['latest'],
      childManifests: children,
    });
    expect((await store.reads.getTag('multi2', 'latest'))?.totalSize).toBe(1130);
    // An index references manifests, not blobs: no blob reference of its own.
    expect((await store.reads.getBlob(base.digest))?.refCount).toBe(2);
  });

  it('lists referrers with descriptors and an artifactType filter', async () => {
    const subject = containerImage([1]);
    await store.writes.recordManifest('r', { ...subject, tags: ['v1'] });
    const subjectDescriptor = {
      mediaType: subject.parsed.mediaType,
      digest: subject.digest,
      size: subject.bytes.length,
    };
    const empty = blob(2, 'application/vnd.oci.empty.v1+json');
    const sbom = imageManifest(empty, [blob(3, 'application/json')], {
      artifactType: 'application/spdx+json',
      subject: subjectDescriptor,
      annotations: { 'org.opencontainers.image.created': '2030-01-01T00:00:00Z' },
    });
    const sig = imageManifest(blob(4, 'application/vnd.dev.cosign.config'), [], {
      subject: subjectDescriptor,
    });
    await store.writes.recordManifest('r', sbom);
    await store.writes.recordManifest('r', sig);
    const all = await store.reads.listReferrers('r', subject.digest);
    expect(all).toHaveLength(2);
    expect(all).toContainEqual({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sbom.digest,
      size: sbom.bytes.length,
      artifactType: 'application/spdx+json',
      annotations: { 'org.opencontainers.image.created': '2030-01-01T00:00:00Z' },
    });
    // Without artifactType the config media type stands in (distribution spec).
    expect(all).toContainEqual({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sig.digest,
      size: sig.bytes.length,
      artifactType: 'application/vnd.dev.cosign.config',
    });
    expect(
      (await store.reads.listReferrers('r', subject.digest, 'application/spdx+json')).map(
        (d) => d.digest,
      ),
    ).toEqual([sbom.digest]);
    expect(await store.reads.listReferrers('r', subject.digest, 'x/none')).toEqual([]);
    expect(await store.reads.listReferrers('other', subject.digest)).toEqual([]);
  });
});
