import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CocoonMediaTypes, digestOf, MediaTypes } from '@epoch/oci';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

const exec = promisify(execFile);

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

  it('serves a snapshot as a cocoon import tar with sparse PAX records and an exact length', async () => {
    const config = JSON.stringify({
      schemaVersion: 'v1',
      snapshotId: 'snap-1',
      hypervisor: 'cloud-hypervisor',
      cpu: 2,
      memory: 1073741824,
      queueSize: 256,
      files: {
        'memory-ranges': {
          mode: 384,
          sparseMap: '[{"o":0,"l":4},{"o":8192,"l":4}]',
          sparseSize: 16384,
        },
        'config.json': { mode: 420 },
      },
    });
    const layers = [];
    for (const [title, content, mediaType] of [
      ['config.json', '{"vm":true}', CocoonMediaTypes.vmConfig],
      ['memory-ranges', 'MEMMORY!', CocoonMediaTypes.vmMemory],
    ] as const) {
      layers.push({
        mediaType,
        digest: await api.pushBlob('vm/snap', content),
        size: content.length,
        annotations: { 'org.opencontainers.image.title': title },
      });
    }
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.snapshotArtifact,
      config: {
        mediaType: CocoonMediaTypes.snapshotConfig,
        digest: await api.pushBlob('vm/snap', config),
        size: config.length,
      },
      layers,
    });
    const put = await api.fetch('/v2/vm/snap/manifests/hibernate', {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      body: manifest,
    });
    expect(put.status).toBe(201);

    const res = await api.fetch('/dl/vm/snap:hibernate');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    const tar = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(tar.length);
    const file = join(t.dataDir, 'snap.tar');
    await writeFile(file, tar);
    // Python's tarfile is an independent reader of the pax format.
    const { stdout } = await exec('python3', [
      '-c',
      'import json,sys,tarfile\nt=tarfile.open(sys.argv[1])\nprint(json.dumps([[m.name,m.mode,m.pax_headers,t.extractfile(m).read().decode()] for m in t]))',
      file,
    ]);
    const members = JSON.parse(stdout) as [string, number, Record<string, string>, string][];
    expect(members.map((m) => m[0])).toEqual(['snapshot.json', 'config.json', 'memory-ranges']);
    const envelope = JSON.parse(members[0]?.[3] ?? '');
    expect(envelope).toEqual({
      version: 1,
      config: {
        name: 'vm/snap',
        id: 'snap-1',
        hypervisor: 'cloud-hypervisor',
        cpu: 2,
        memory: 1073741824,
        queue_size: 256,
      },
    });
    expect(members[1]).toEqual(['config.json', 420, {}, '{"vm":true}']);
    expect(members[2]?.[1]).toBe(384);
    expect(members[2]?.[2]).toEqual({
      'COCOON.sparse.map': '[{"o":0,"l":4},{"o":8192,"l":4}]',
      'COCOON.sparse.size': '16384',
    });
    expect(members[2]?.[3]).toBe('MEMMORY!');
  });

  it('serves the pushed snapshot.json verbatim (unknown fields kept), renamed', async () => {
    const verbatim = `${JSON.stringify({ config: { name: 'orig', cpu: 2, future_field: [1, 2] }, version: 1 })}\n`;
    const config = JSON.stringify({ schemaVersion: 'v1', cpu: 2, envelope: verbatim, files: {} });
    const content = 'DISK';
    const layer = {
      mediaType: CocoonMediaTypes.vmConfig,
      digest: await api.pushBlob('vm/verbatim', content),
      size: content.length,
      annotations: { 'org.opencontainers.image.title': 'config.json' },
    };
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.snapshotArtifact,
      config: {
        mediaType: CocoonMediaTypes.snapshotConfig,
        digest: await api.pushBlob('vm/verbatim', config),
        size: config.length,
      },
      layers: [layer],
    });
    const put = await api.fetch('/v2/vm/verbatim/manifests/v1', {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      body: manifest,
    });
    expect(put.status).toBe(201);
    const tar = Buffer.from(await (await api.fetch('/dl/vm/verbatim:v1')).arrayBuffer());
    const file = join(t.dataDir, 'verbatim.tar');
    await writeFile(file, tar);
    const { stdout } = await exec('python3', [
      '-c',
      'import sys,tarfile\nt=tarfile.open(sys.argv[1])\nprint(t.extractfile(t.getmembers()[0]).read().decode())',
      file,
    ]);
    expect(JSON.parse(stdout)).toEqual({
      config: { name: 'vm/verbatim', cpu: 2, future_field: [1, 2] },
      version: 1,
    });
  });

  it.each([
    ['a hidden file name', ['.epoch-config.json'], {}],
    ['two files of one name', ['disk', 'disk'], {}],
    ['a sparse map without its size', ['mem'], { mem: { sparseMap: '[{"o":0,"l":4}]' } }],
  ])('refuses a snapshot with %s (415, before the first byte)', async (what, titles, files) => {
    const repo = `vm/bad-${titles.length}-${what.length}`;
    const config = JSON.stringify({ schemaVersion: 'v1', files });
    const layers = [];
    for (const title of titles) {
      layers.push({
        mediaType: CocoonMediaTypes.vmMemory,
        digest: await api.pushBlob(repo, 'DATA'),
        size: 4,
        annotations: { 'org.opencontainers.image.title': title },
      });
    }
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.snapshotArtifact,
      config: {
        mediaType: CocoonMediaTypes.snapshotConfig,
        digest: await api.pushBlob(repo, config),
        size: config.length,
      },
      layers,
    });
    const put = await api.fetch(`/v2/${repo}/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      body: manifest,
    });
    expect(put.status).toBe(201);
    for (const method of ['GET', 'HEAD']) {
      const res = await api.fetch(`/dl/${repo}:v1`, { method });
      expect(res.status).toBe(415);
      if (method === 'GET') {
        expect(await res.json()).toMatchObject({ code: 'UNSUPPORTED_KIND' });
      }
    }
  });

  it('aborts the transfer instead of ending it cleanly when a part is corrupt', async () => {
    const hex = digestOf('BBBBBB').slice('sha256:'.length);
    await writeFile(join(t.dataDir, 'objects', 'blobs', 'sha256', hex), 'XXXXXX');
    const res = await api.fetch('/dl/os/win11');
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });
});
