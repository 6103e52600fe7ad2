import { CocoonMediaTypes, digestOf, MediaTypes } from '@epoch/oci';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

type Json = Record<string, unknown> & { length?: number };

describe('control API (/api/)', () => {
  let t: TestServer;
  let api: RawClient;
  const get = async (path: string) => {
    const res = await api.fetch(path);
    return { res, body: (await res.json()) as Json & Json[] };
  };

  beforeAll(async () => {
    t = await startTestServer('filesystem');
    api = new RawClient(t.url, { Authorization: `Bearer ${await t.token()}` });
    await api.pushImage('team/live', 'v1', { layers: ['shared-layer', 'only-v1'] });
    await api.pushImage('team/live', 'v2', { layers: ['shared-layer', 'only-v2'] });
    await api.pushImage('solo', 'latest', { layers: ['shared-layer'] });
  });
  afterAll(async () => {
    await t.stop();
  });

  it('reports stats with shared blobs counted once in stored bytes', async () => {
    const { res, body } = await get('/api/stats');
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ repositoryCount: 2, tagCount: 3 });
    // Distinct blobs: {} config, shared-layer, only-v1, only-v2.
    expect(body.totalSize).toBe(2 + 12 + 7 + 7);
    expect(body.logicalSize).toBe(2 + 12 + 7 + (2 + 12 + 7) + (2 + 12));
  });

  it('lists repositories with search, sort and cursor pagination', async () => {
    const all = await get('/api/repositories');
    expect(all.body.map((r: Json) => r.name)).toEqual(['solo', 'team/live']);
    expect(all.body[1]).toMatchObject({ name: 'team/live', tagCount: 2, kind: 'container-image' });
    const found = await get('/api/repositories?search=team');
    expect(found.body.map((r: Json) => r.name)).toEqual(['team/live']);
    const first = await get('/api/repositories?limit=1');
    expect(first.body).toHaveLength(1);
    const cursor = first.res.headers.get('x-next-cursor');
    expect(cursor).toBeTruthy();
    expect(first.res.headers.get('link')).toMatch(/rel="next"/);
    const second = await get(
      `/api/repositories?limit=1&cursor=${encodeURIComponent(cursor ?? '')}`,
    );
    expect(second.body.map((r: Json) => r.name)).toEqual(['team/live']);
    expect(second.res.headers.get('x-next-cursor')).toBeNull();
    const bad = await get('/api/repositories?sort=sideways');
    expect(bad.res.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'BAD_SORT' });
    expect(typeof bad.body.error).toBe('string');
    const forged = await get('/api/repositories?cursor=not-a-cursor');
    expect(forged.res.status).toBe(400);
  });

  it('addresses names with slashes plain and percent-encoded, and 404s unknown ones', async () => {
    for (const path of ['/api/repositories/team/live', '/api/repositories/team%2Flive']) {
      const { res, body } = await get(path);
      expect(res.status, path).toBe(200);
      expect(body.name).toBe('team/live');
    }
    const missing = await get('/api/repositories/nobody/here');
    expect(missing.res.status).toBe(404);
    expect(missing.body).toMatchObject({ error: 'repository not found', code: 'NAME_UNKNOWN' });
    const invalid = await get('/api/repositories/Bad%20Name');
    expect(invalid.res.status).toBe(400);
  });

  it('lists tags newest first and shows a tag in detail', async () => {
    const tags = await get('/api/repositories/team%2Flive/tags');
    expect(tags.body.map((x: Json) => x.name)).toEqual(['v2', 'v1']);
    expect((await get('/api/repositories/ghost/tags')).res.status).toBe(404);
    const { res, body } = await get('/api/repositories/team/live/tags/v1');
    expect(res.status).toBe(200);
    expect(body).toMatchObject({
      repoName: 'team/live',
      tag: 'v1',
      kind: 'container-image',
      layerCount: 2,
    });
    expect((body.manifest as Json).schemaVersion).toBe(2);
    expect((body.layers as Json[]).map((l) => l.digest)).toEqual([
      digestOf('shared-layer'),
      digestOf('only-v1'),
    ]);
    expect(body.referrers).toEqual([]);
    expect((await get('/api/repositories/team/live/tags/nope')).res.status).toBe(404);
  });

  it('shows a snapshot config parsed from its config blob', async () => {
    const config = JSON.stringify({
      schemaVersion: 'v1',
      hypervisor: 'cloud-hypervisor',
      cpu: 2,
      memory: 1073741824,
      files: { 'memory-ranges': { mode: 420 } },
    });
    const configDigest = await api.pushBlob('vm/snap', config);
    const layer = await api.pushBlob('vm/snap', 'memory bytes');
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.snapshotArtifact,
      config: {
        mediaType: CocoonMediaTypes.snapshotConfig,
        digest: configDigest,
        size: Buffer.byteLength(config),
      },
      layers: [
        {
          mediaType: CocoonMediaTypes.vmMemory,
          digest: layer,
          size: 12,
          annotations: { 'org.opencontainers.image.title': 'memory-ranges' },
        },
      ],
    });
    const put = await api.fetch('/v2/vm/snap/manifests/latest', {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      body: manifest,
    });
    expect(put.status).toBe(201);
    const { body } = await get('/api/repositories/vm/snap/tags/latest');
    expect(body.kind).toBe('snapshot');
    expect(body.snapshotConfig).toMatchObject({ hypervisor: 'cloud-hypervisor', cpu: 2 });
    expect((body.layers as Json[])[0]).toMatchObject({ title: 'memory-ranges' });
  });

  it('deletes a tag from storage and the index, and 404s a missing one', async () => {
    await api.pushImage('del/me', 'gone');
    const res = await api.fetch('/api/repositories/del/me/tags/gone', { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect((await api.fetch('/v2/del/me/manifests/gone')).status).toBe(404);
    expect((await get('/api/repositories/del/me/tags/gone')).res.status).toBe(404);
    const again = await api.fetch('/api/repositories/del/me/tags/gone', { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(await again.json()).toMatchObject({ code: 'TAG_UNKNOWN' });
  });

  it('repairs the index from storage on POST /api/catalog/sync and reports what it fixed', async () => {
    // Damage the index only: storage still has the tag.
    expect(await t.server.index.writes.deleteTag('team/live', 'v1')).toBe(true);
    expect((await get('/api/repositories/team/live/tags/v1')).res.status).toBe(404);
    const res = await api.fetch('/api/catalog/sync', { method: 'POST' });
    expect(res.status).toBe(200);
    const report = (await res.json()) as { status: string; tags: { added: number } };
    expect(report.status).toBe('synced');
    expect(report.tags.added).toBeGreaterThanOrEqual(1);
    expect((await get('/api/repositories/team/live/tags/v1')).res.status).toBe(200);
    expect((await api.fetch('/api/catalog/sync')).status).toBe(405);
  });

  it('answers unknown endpoints and methods with JSON errors', async () => {
    const res = await get('/api/nothing');
    expect(res.res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'NOT_FOUND' });
    const method = await api.fetch('/api/stats', { method: 'POST' });
    expect(method.status).toBe(405);
    expect(await method.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
    const events = (await get('/api/events')).body as Json[];
    expect(events.filter((e) => e.action === 'push').map((e) => e.repository)).toContain('solo');
  });
});
