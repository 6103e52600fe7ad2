import { digestOf, MediaTypes, OciValidationError } from '@epoch/oci';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Layout } from '../../src/core/layout.js';
import { Manifests } from '../../src/core/manifests.js';
import { Registry } from '../../src/core/registry.js';
import {
  ManifestDigestMismatchError,
  ManifestUnknownError,
  NameUnknownError,
} from '../../src/errors.js';
import { StorageError } from '../../src/storage/errors.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { storeFactories } from '../support/stores.js';

const layer = { mediaType: MediaTypes.ociLayerGzip, digest: digestOf('layer'), size: 5 };
const config = { mediaType: MediaTypes.ociConfig, digest: digestOf('{}'), size: 2 };

function manifest(extra: Record<string, unknown> = {}): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config,
      layers: [layer],
      ...extra,
    }),
  );
}

describe.each(storeFactories())('manifests on $name', ({ create }) => {
  let store: ObjectStore;
  let cleanup: () => Promise<void>;
  let manifests: Manifests;

  beforeEach(async () => {
    ({ store, cleanup } = await create());
    manifests = new Manifests(store);
  });
  afterEach(async () => {
    await cleanup();
  });

  it('stores a manifest by tag and serves it by tag and by digest, byte for byte', async () => {
    const bytes = manifest({ annotations: { a: 'b' } });
    const { digest } = await manifests.put('team/app', 'v1', bytes, MediaTypes.ociManifest);
    expect(digest).toBe(digestOf(bytes));
    for (const ref of ['v1', digest]) {
      const got = await manifests.get('team/app', ref);
      expect(Buffer.from(got.bytes).equals(Buffer.from(bytes))).toBe(true);
      expect(got.digest).toBe(digest);
      expect(got.mediaType).toBe(MediaTypes.ociManifest);
    }
    expect(await store.stat(Layout.tag('team/app', 'v1'))).toBeDefined();
  });

  it('refuses to serve a manifest whose stored bytes no longer match its digest', async () => {
    const bytes = manifest();
    const { digest } = await manifests.put('app', 'v1', bytes);
    await store.put(Layout.manifestByDigest('app', digest), manifest({ annotations: { x: 'y' } }));
    await expect(new Manifests(store).get('app', digest)).rejects.toBeInstanceOf(StorageError);
  });

  it('infers the media type of a stored manifest without a mediaType field', async () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const { digest } = await manifests.put('app', 'idx', bytes, MediaTypes.ociIndex);
    const fresh = new Manifests(store);
    expect((await fresh.get('app', digest)).mediaType).toBe(MediaTypes.ociIndex);
  });

  it('rejects a digest reference that does not match the bytes, storing nothing', async () => {
    const bytes = manifest();
    await expect(manifests.put('app', digestOf('other'), bytes)).rejects.toBeInstanceOf(
      ManifestDigestMismatchError,
    );
    expect((await store.list('manifests/')).objects).toEqual([]);
  });

  it('rejects invalid documents, names and tags before touching storage', async () => {
    await expect(
      manifests.put('app', 'v1', Buffer.from('{"schemaVersion":1}')),
    ).rejects.toBeInstanceOf(OciValidationError);
    await expect(manifests.put('App', 'v1', manifest())).rejects.toBeInstanceOf(OciValidationError);
    await expect(manifests.put('app', '../x', manifest())).rejects.toBeInstanceOf(
      OciValidationError,
    );
    await expect(manifests.put('a/_digests', 'v1', manifest())).rejects.toBeInstanceOf(
      OciValidationError,
    );
    expect((await store.list('')).objects).toEqual([]);
  });

  it('answers unknown manifests and repositories with typed errors', async () => {
    await expect(manifests.get('app', 'nope')).rejects.toBeInstanceOf(ManifestUnknownError);
    await expect(manifests.get('app', digestOf('x'))).rejects.toBeInstanceOf(ManifestUnknownError);
    await expect(manifests.listTags('app')).rejects.toBeInstanceOf(NameUnknownError);
  });

  it('lists tags in lexical order, page by page', async () => {
    const tags = ['b', 'a', 'a-b', 'a.c', 'A', '_x', 'v1.0', 'v10', 'v2'];
    for (const t of tags) await manifests.put('app', t, manifest({ annotations: { t } }));
    await manifests.put('app/nested', 'zzz', manifest());
    const sorted = [...tags].sort();
    expect((await manifests.listTags('app')).items).toEqual(sorted);
    const seen: string[] = [];
    let last: string | undefined;
    do {
      const page = await manifests.listTags('app', { limit: 4, ...(last ? { last } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(4);
      seen.push(...page.items);
      last = page.next;
    } while (last);
    expect(seen).toEqual(sorted);
  });

  it('knows a repository that only has manifests pushed by digest', async () => {
    const bytes = manifest();
    await manifests.put('app', digestOf(bytes), bytes);
    expect((await manifests.listTags('app')).items).toEqual([]);
  });

  it('lists repositories, nested ones included', async () => {
    for (const repo of ['b', 'a/b/c', 'a', 'a/b']) await manifests.put(repo, 'latest', manifest());
    expect((await manifests.listRepositories()).items).toEqual(['a', 'a/b', 'a/b/c', 'b']);
    const page = await manifests.listRepositories({ limit: 2, last: 'a' });
    expect(page).toEqual({ items: ['a/b', 'a/b/c'], next: 'a/b/c' });
  });

  it('deletes a tag, and a digest together with the tags pointing at it', async () => {
    const one = manifest({ annotations: { n: '1' } });
    const two = manifest({ annotations: { n: '2' } });
    await manifests.put('app', 'a', one);
    await manifests.put('app', 'b', one);
    await manifests.put('app', 'c', two);
    expect(await manifests.delete('app', 'c')).toMatchObject({ untagged: ['c'] });
    await expect(manifests.get('app', 'c')).rejects.toBeInstanceOf(ManifestUnknownError);
    expect(await manifests.has('app', digestOf(two))).toBe(true);

    const removed = await manifests.delete('app', digestOf(one));
    expect(removed.untagged.sort()).toEqual(['a', 'b']);
    expect(await manifests.has('app', digestOf(one))).toBe(false);
    await expect(manifests.delete('app', digestOf(one))).rejects.toBeInstanceOf(
      ManifestUnknownError,
    );
    await expect(manifests.delete('app', 'a')).rejects.toBeInstanceOf(ManifestUnknownError);
  });

  it('reads a bucket written by upstream epoch as it is', async () => {
    // Upstream writes full manifest copies under the tag and under _digests, plus catalog.json.
    const bytes = manifest({ artifactType: 'application/vnd.cocoonstack.snapshot.v1+json' });
    const digest = digestOf(bytes);
    const hex = digest.slice('sha256:'.length);
    await store.put(`manifests/vk-ns-set-0/_digests/sha256-${hex}.json`, bytes);
    await store.put('manifests/vk-ns-set-0/hibernate.json', bytes);
    await store.put(`blobs/sha256/${layer.digest.slice(7)}`, 'layer');
    await store.put(
      'catalog.json',
      JSON.stringify({ repositories: { 'vk-ns-set-0': { tags: { hibernate: 'x' } } } }),
    );
    const registry = new Registry(store);
    expect((await registry.manifests.listRepositories()).items).toEqual(['vk-ns-set-0']);
    expect((await registry.manifests.listTags('vk-ns-set-0')).items).toEqual(['hibernate']);
    expect((await registry.manifests.get('vk-ns-set-0', 'hibernate')).digest).toBe(digest);
    expect((await registry.manifests.get('vk-ns-set-0', digest)).bytes.length).toBe(bytes.length);
    expect(await registry.blobs.storedSize(layer.digest)).toBe(5);
    // Upstream wrote no link markers: until a reconcile adopts the references, no repository
    // may read the blob.
    expect(await registry.blobs.stat('vk-ns-set-0', layer.digest)).toBeUndefined();
  });

  it('writes catalog.json in the upstream shape', async () => {
    const registry = new Registry(store);
    await registry.writeCatalog([
      { repository: 'a', tags: ['latest', 'v1'], updatedAt: new Date(0) },
      { repository: 'b/c', tags: [], updatedAt: new Date(0) },
    ]);
    const { readAll } = await import('../../src/core/streams.js');
    const doc = JSON.parse(
      Buffer.from(await readAll(await store.read('catalog.json'), 1e6)).toString(),
    );
    expect(doc.repositories.a.tags).toEqual({
      latest: 'manifests/a/latest.json',
      v1: 'manifests/a/v1.json',
    });
    expect(doc.repositories['b/c']).toEqual({ tags: {}, updatedAt: '1970-01-01T00:00:00.000Z' });
    expect(typeof doc.updatedAt).toBe('string');
  });
});
