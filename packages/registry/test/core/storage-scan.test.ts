import { digestOf, MediaTypes } from '@epoch/oci';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Registry } from '../../src/core/registry.js';
import { readStorageScan } from '../../src/core/storage-scan.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { storeFactories } from '../support/stores.js';

function manifestBytes(layer: string, size = 4): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: digestOf('{}'), size: 2 },
    layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: digestOf(layer), size }],
  });
}

describe.each(storeFactories())('readStorageScan on $name', (factory) => {
  let store: ObjectStore;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ store, cleanup } = await factory.create());
  });
  afterEach(async () => {
    await cleanup();
  });

  it('reads an upstream bucket: tags as full copies, some without _digests copies', async () => {
    const one = manifestBytes('one');
    const two = manifestBytes('two');
    const d1 = digestOf(one).replace(':', '-');
    // Raw keys, as upstream epoch wrote them: no _layers markers, `v2` has no _digests copy.
    await store.put(`manifests/team/app/_digests/${d1}.json`, one);
    await store.put('manifests/team/app/v1.json', one);
    await store.put('manifests/team/app/v2.json', two);
    await store.put('manifests/team/app/broken.json', '{not json');
    await store.put('catalog.json', '{}');
    const snapshot = await readStorageScan(new Registry(store), { concurrency: 2 });
    expect(snapshot.repositories.map((r) => r.name)).toEqual(['team/app']);
    const repo = snapshot.repositories[0];
    expect([...(repo?.manifests.keys() ?? [])].sort()).toEqual(
      [digestOf(one), digestOf(two)].sort(),
    );
    expect(repo?.tags.get('v1')?.digest).toBe(digestOf(one));
    expect(repo?.tags.get('v2')?.digest).toBe(digestOf(two));
    expect(repo?.tags.has('broken')).toBe(false);
    expect(snapshot.errors.map((e) => e.key)).toEqual(['manifests/team/app/broken.json']);
    expect(repo?.blobs.get(digestOf('two'))).toEqual({
      size: 4,
      mediaType: MediaTypes.ociLayerGzip,
      linked: false,
    });
  });

  it('reads link markers, statting blobs no manifest describes', async () => {
    const registry = new Registry(store);
    const bytes = manifestBytes('one');
    await registry.manifests.put('app', 'v1', Buffer.from(bytes));
    await store.put(`blobs/sha256/${digestOf('loose').slice(7)}`, 'loose');
    await registry.links.add('app', digestOf('loose'));
    await registry.links.add('app', digestOf('one'));
    await registry.links.add('app', digestOf('missing'));
    const snapshot = await readStorageScan(registry);
    const repo = snapshot.repositories[0];
    expect(repo?.blobs.get(digestOf('loose'))).toMatchObject({ size: 5, linked: true });
    expect(repo?.blobs.get(digestOf('one'))).toMatchObject({ size: 4, linked: true });
    expect(repo?.blobs.get(digestOf('{}'))).toMatchObject({ size: 2, linked: false });
    expect(repo?.blobs.has(digestOf('missing'))).toBe(false);
    expect(snapshot.errors).toHaveLength(1);
  });
});
