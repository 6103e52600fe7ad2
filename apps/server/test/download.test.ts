import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CocoonMediaTypes, digestOf, MediaTypes } from '@epoch/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from './support/oci-client.js';
import { startTestServer, type TestServer } from './support/server.js';

describe('/dl/ cloud image downloads', () => {
  let t: TestServer;
  let api: RawClient;
  let manifestDigest = '';
  const parts = {
    'win.qcow2.01.qcow2.part': 'BBBBBB',
    'win.qcow2.00.qcow2.part': 'AAAA',
    'win.qcow2.02.qcow2.part': 'CC',
  };

  beforeAll(async () => {
    t = await startTestServer('filesystem');
    api = new RawClient(t.url);
    const config = await api.pushBlob('os/win11', '{}');
    const layers = [];
    for (const [title, content] of Object.entries(parts)) {
      layers.push({
        mediaType: CocoonMediaTypes.diskQcow2Part,
        digest: await api.pushBlob('os/win11', content),
        size: content.length,
        annotations: { 'org.opencontainers.image.title': title },
      });
    }
    layers.push({
      mediaType: 'text/plain',
      digest: await api.pushBlob('os/win11', 'sums'),
      size: 4,
      annotations: { 'org.opencontainers.image.title': 'SHA256SUMS' },
    });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.osImageArtifact,
      config: { mediaType: MediaTypes.ociEmpty, digest: config, size: 2 },
      layers,
    });
    manifestDigest = digestOf(manifest);
    for (const tag of ['latest', 'v1']) {
      const res = await api.fetch(`/v2/os/win11/manifests/${tag}`, {
        method: 'PUT',
        headers: { 'Content-Type': MediaTypes.ociManifest },
        body: manifest,
      });
      expect(res.status).toBe(201);
    }
    await api.pushImage('apps/web', 'latest');
  });
  afterAll(async () => {
    await t.stop();
  });

  it('concatenates the disk parts in title order with length and file name', async () => {
    for (const path of ['/dl/os/win11', '/dl/os/win11:v1', `/dl/os/win11@${manifestDigest}`]) {
      const res = await api.fetch(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-length')).toBe('12');
      expect(res.headers.get('content-disposition')).toMatch(
        /^attachment; filename="win11-.+\.qcow2"$/,
      );
      expect(await res.text()).toBe('AAAABBBBBBCC');
    }
    const head = await api.fetch('/dl/os/win11', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('12');
  });

  it('serves ranges across part boundaries', async () => {
    const res = await api.fetch('/dl/os/win11:v1', { headers: { Range: 'bytes=2-6' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 2-6/12');
    expect(await res.text()).toBe('AABBB');
    const tail = await api.fetch('/dl/os/win11', { headers: { Range: 'bytes=-3' } });
    expect(await tail.text()).toBe('BCC');
    const bad = await api.fetch('/dl/os/win11', { headers: { Range: 'bytes=12-' } });
    expect(bad.status).toBe(416);
  });

  it('refuses other kinds, unknown images and invalid references with JSON errors', async () => {
    const container = await api.fetch('/dl/apps/web');
    expect(container.status).toBe(415);
    expect(await container.json()).toMatchObject({ code: 'UNSUPPORTED_KIND' });
    const missing = await api.fetch('/dl/os/win11:nope');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    const invalid = await api.fetch('/dl/OS/Win');
    expect(invalid.status).toBe(400);
  });

  it('aborts the transfer instead of ending it cleanly when a part is corrupt', async () => {
    const hex = digestOf('BBBBBB').slice('sha256:'.length);
    await writeFile(join(t.dataDir, 'objects', 'blobs', 'sha256', hex), 'XXXXXX');
    const res = await api.fetch('/dl/os/win11');
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });
});
