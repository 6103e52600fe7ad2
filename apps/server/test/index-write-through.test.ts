import { buffer } from 'node:stream/consumers';
import { digestOf, MediaTypes } from '@epoch/oci';
import { Layout } from '@epoch/registry';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support/server.js';

// Design invariant 4: a push is in the index before its response returns.
describe.each(backends)('index written through on %s', (backend) => {
  let t: TestServer;
  let api: RawClient;

  beforeAll(async () => {
    t = await startTestServer(backend);
    api = new RawClient(t.url);
  });
  afterAll(async () => {
    await t.stop();
  });

  it('indexes pushed manifests, tags and blob links before answering', async () => {
    const { digest } = await api.pushImage('idx/app', 'v1', { layers: ['a', 'bb'] });
    const index = t.server.index;
    expect((await index.reads.listTagNames('idx/app')).items).toEqual(['v1']);
    expect(await index.reads.repositoryExists('idx/app')).toBe(true);
    const tag = await index.reads.getTag('idx/app', 'v1');
    expect(tag).toMatchObject({ digest, kind: 'container-image', layerCount: 2 });
    expect(await index.reads.isBlobLinked('idx/app', digestOf('bb'))).toBe(true);
    expect(await index.reads.isBlobLinked('idx/other', digestOf('bb'))).toBe(false);
    expect((await index.reads.listRepositoryNames()).items).toContain('idx/app');
  });

  it('indexes ?tag= pushes, referrers, mounts and deletes', async () => {
    const index = t.server.index;
    const subject = await api.pushImage('idx/ref', 'base');
    const sig = await api.pushImage('idx/ref', 'sig', {
      extra: {
        artifactType: 'application/example',
        subject: { mediaType: MediaTypes.ociManifest, digest: subject.digest, size: 10 },
      },
    });
    const referrers = await index.reads.listReferrers('idx/ref', subject.digest);
    expect(referrers.map((r) => r.digest)).toEqual([sig.digest]);

    const blob = await api.pushBlob('idx/src', 'mounted');
    const mount = await api.fetch(`/v2/idx/dst/blobs/uploads/?mount=${blob}&from=idx/src`, {
      method: 'POST',
    });
    expect(mount.status).toBe(201);
    expect(await index.reads.isBlobLinked('idx/dst', blob)).toBe(true);

    expect((await api.fetch('/v2/idx/ref/manifests/sig', { method: 'DELETE' })).status).toBe(202);
    expect((await index.reads.listTagNames('idx/ref')).items).toEqual(['base']);
    const del = await api.fetch(`/v2/idx/ref/manifests/${subject.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect(await index.reads.hasManifest('idx/ref', subject.digest)).toBe(false);
    expect((await index.reads.listTagNames('idx/ref')).items).toEqual([]);

    expect((await api.fetch(`/v2/idx/dst/blobs/${blob}`, { method: 'DELETE' })).status).toBe(202);
    expect(await index.reads.isBlobLinked('idx/dst', blob)).toBe(false);
  });

  it('finishes a delete in the index when a retry finds storage already done', async () => {
    // A replica killed -9 between the storage delete and the index delete left index rows; the
    // client's retry must converge (202, rows gone), and only a further retry is 404.
    const index = t.server.index;
    await api.pushImage('idx/half', 'keep');
    const byTag = await api.pushImage('idx/half', 'tagged', { layers: ['t'] });
    await t.store.delete(Layout.tag('idx/half', 'tagged'));
    expect((await api.fetch('/v2/idx/half/manifests/tagged', { method: 'DELETE' })).status).toBe(
      202,
    );
    expect((await index.reads.listTagNames('idx/half')).items).toEqual(['keep']);
    expect((await api.fetch('/v2/idx/half/manifests/tagged', { method: 'DELETE' })).status).toBe(
      404,
    );

    const byDigest = await api.pushImage('idx/half', 'gone', { layers: ['d'] });
    await t.store.delete(Layout.tag('idx/half', 'gone'));
    await t.store.delete(Layout.manifestByDigest('idx/half', byDigest.digest));
    const path = `/v2/idx/half/manifests/${byDigest.digest}`;
    expect((await api.fetch(path, { method: 'DELETE' })).status).toBe(202);
    expect(await index.reads.hasManifest('idx/half', byDigest.digest)).toBe(false);
    expect((await index.reads.listTagNames('idx/half')).items).toEqual(['keep']);
    expect((await api.fetch(path, { method: 'DELETE' })).status).toBe(404);
    expect(await index.reads.hasManifest('idx/half', byTag.digest)).toBe(true);

    // The dashboard's delete follows the same rule (last: the token ends the open local mode).
    await api.pushImage('idx/half', 'dash', { layers: ['a'] });
    await t.store.delete(Layout.tag('idx/half', 'dash'));
    const admin = new RawClient(t.url, { Authorization: `Bearer ${await t.token()}` });
    const apiPath = '/api/repositories/idx/half/tags/dash';
    expect((await admin.fetch(apiPath, { method: 'DELETE' })).status).toBe(204);
    expect((await index.reads.listTagNames('idx/half')).items).toEqual(['keep']);
    expect((await admin.fetch(apiPath, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('listings served from the index', () => {
  let t: TestServer;
  let api: RawClient;
  beforeAll(async () => {
    t = await startTestServer('filesystem');
    api = new RawClient(t.url, { Authorization: `Bearer ${await t.token()}` });
  });
  afterAll(async () => {
    await t.stop();
  });

  it('answers tags/list, _catalog and referrers from the index once a reconcile has completed', async () => {
    await api.pushImage('lst/app', 'a');
    await api.pushImage('lst/app', 'b');
    // A completed reconcile makes the index the source of listings.
    expect((await api.fetch('/api/catalog/sync', { method: 'POST' })).status).toBe(200);
    // Change the index alone: the listing follows it, not storage.
    await t.server.index.writes.deleteTag('lst/app', 'b');
    const tags = (await (await api.fetch('/v2/lst/app/tags/list')).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['a']);
    const none = await api.fetch('/v2/lst/app/tags/list?n=0');
    expect(((await none.json()) as { tags: string[] }).tags).toEqual([]);
    expect((await api.fetch('/v2/lst/never/tags/list')).status).toBe(404);
    const catalog = (await (await api.fetch('/v2/_catalog')).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual(['lst/app']);
    // Storage still has the tag: a reconcile brings it back.
    await api.fetch('/api/catalog/sync', { method: 'POST' });
    const after = (await (await api.fetch('/v2/lst/app/tags/list')).json()) as { tags: string[] };
    expect(after.tags).toEqual(['a', 'b']);
  });
});

describe('catalog.json', () => {
  it('is rewritten from the index shortly after pushes and deletes, in upstream format', async () => {
    const t = await startTestServer('filesystem');
    try {
      const api = new RawClient(t.url);
      await api.pushImage('cat/app', 'v1');
      await api.pushImage('cat/app', 'v2');
      await api.pushImage('cat/other', 'latest');
      expect((await api.fetch('/v2/cat/app/manifests/v2', { method: 'DELETE' })).status).toBe(202);
      const read = async () => {
        const bytes = await t.store
          .read('catalog.json')
          .then((stream) => buffer(stream))
          .catch(() => undefined);
        return (
          bytes &&
          (JSON.parse(Buffer.from(bytes).toString()) as {
            repositories: Record<string, { tags: Record<string, string> }>;
          })
        );
      };
      let doc = await read();
      for (
        let i = 0;
        i < 50 && !(doc?.repositories['cat/other'] && !doc.repositories['cat/app']?.tags.v2);
        i++
      ) {
        await new Promise((r) => setTimeout(r, 200));
        doc = await read();
      }
      expect(doc?.repositories['cat/app']?.tags).toEqual({ v1: 'manifests/cat/app/v1.json' });
      expect(doc?.repositories['cat/other']?.tags).toEqual({
        latest: 'manifests/cat/other/latest.json',
      });
    } finally {
      await t.stop();
    }
  });
});
