import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  Annotations,
  CocoonMediaTypes,
  digestOf,
  envelopeTarEntry,
  MediaTypes,
  parseSnapshotConfig,
  type SnapshotFile,
  snapshotConfig,
  snapshotLayer,
  snapshotManifest,
  tarStream,
} from '@epoch/oci';
import { RegistryClient } from '@epoch/registry/client';
import type { RunningServer } from '@epoch/server';
import { type DockerRegistry, startDockerRegistry } from '@epoch/test-support/docker-registry';
import { startProxy } from '@epoch/test-support/http-proxy';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cocoonLog,
  cocoonRoot,
  epoch,
  fakeCocoon,
  startEpoch,
  tempDir,
} from './support/harness.js';

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void>)[] = [];
let server: RunningServer;

beforeAll(async () => {
  server = await startEpoch(cleanups);
});
afterAll(async () => {
  for (const c of cleanups) await c();
});

function env(root: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    EPOCH_SERVER: server.url,
    EPOCH_COCOON_BINARY: fakeCocoon,
    FAKE_COCOON_ROOT: root,
    HOME: root,
    XDG_CONFIG_HOME: join(root, 'config'),
    ...extra,
  };
}

// An envelope with fields upstream's whitelist drops, and one nobody knows yet.
const ENVELOPE = Buffer.from(
  `${JSON.stringify({
    config: {
      id: 'sid-1',
      name: 'myvm',
      description: 'test vm',
      cpu: 2,
      memory: 2 * 1024 * MiB,
      queue_size: 256,
      disk_queue_size: 64,
      no_direct_io: true,
      hypervisor: 'cloud-hypervisor',
      future_field: { nested: [1, 2, 3] },
    },
    version: 1,
  })}\n`,
);

function snapshotFiles() {
  return {
    'snapshot.json': ENVELOPE,
    'config.json': Buffer.from('{"cpus":{"boot_vcpus":2}}'),
    'state.json': randomBytes(3000),
    // 64 MiB logical, three data segments: the layer holds only those bytes.
    'memory-ranges': {
      size: 64 * MiB,
      data: [
        [0, randomBytes(8192)],
        [32 * MiB, randomBytes(100 * 1024)],
        [64 * MiB - 4096, randomBytes(4096)],
      ] as [number, Buffer][],
    },
    'overlay.qcow2': randomBytes(300 * 1024),
  };
}

async function filesOf(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const f of (await readdir(dir)).sort()) out[f] = await readFile(join(dir, f));
  return out;
}

describe('push and pull of a snapshot', () => {
  it('round-trips byte for byte: files, sparse maps, modes and unknown envelope fields', async () => {
    const a = await cocoonRoot(cleanups, { myvm: snapshotFiles() });
    const push = await epoch(
      ['push', 'myvm', '-t', 'v1', '--base-image', 'ghcr.io/x/base:1'],
      env(a),
    );
    expect(push.stderr).toContain('pushed myvm:v1');
    expect(push.code).toBe(0);
    const digest = push.stdout.toString().trim().split('@')[1] as string;
    expect(digest).toMatch(/^sha256:/);

    // The manifest is upstream's snapshot artifact: one layer per export entry, in export order.
    const inspect = await epoch(['inspect', `myvm@${digest}`, '--json'], env(a));
    expect(inspect.code).toBe(0);
    const report = JSON.parse(inspect.stdout.toString());
    expect(report.kind).toBe('snapshot');
    expect(report.manifest.artifactType).toBe(CocoonMediaTypes.snapshotArtifact);
    expect(report.manifest.annotations[Annotations.baseImage]).toBe('ghcr.io/x/base:1');
    const layers = report.manifest.layers as {
      annotations: Record<string, string>;
      mediaType: string;
      size: number;
    }[];
    expect(layers.map((l) => l.annotations[Annotations.title])).toEqual([
      'config.json',
      'memory-ranges',
      'overlay.qcow2',
      'state.json',
    ]);
    expect(layers[1]?.mediaType).toBe(CocoonMediaTypes.vmMemory);
    expect(layers[1]?.size).toBe(8192 + 100 * 1024 + 4096);
    const config = parseSnapshotConfig(Buffer.from(JSON.stringify(report.config)));
    expect(config.queueSize).toBe(256);
    expect(config.files?.['memory-ranges']?.sparseSize).toBe(64 * MiB);
    expect(config.envelope).toBe(ENVELOPE.toString());

    const b = await cocoonRoot(cleanups);
    const pull = await epoch(['pull', 'myvm:v1'], env(b));
    expect(pull.stderr).toContain('pulled');
    expect(pull.code).toBe(0);
    const original = await filesOf(join(a, 'snapshots', 'myvm'));
    const pulled = await filesOf(join(b, 'snapshots', 'myvm'));
    expect(Object.keys(pulled)).toEqual(Object.keys(original));
    for (const name of Object.keys(original)) {
      expect(pulled[name]?.equals(original[name] as Buffer), name).toBe(true);
    }
    // Restored sparse: the 64 MiB file occupies about its data segments on disk.
    const st = await stat(join(b, 'snapshots', 'myvm', 'memory-ranges'));
    expect(st.size).toBe(64 * MiB);
    expect(st.blocks * 512).toBeLessThan(4 * MiB);
    const modes = async (root: string) =>
      (await stat(join(root, 'snapshots', 'myvm', 'state.json'))).mode & 0o777;
    expect(await modes(b)).toBe(await modes(a));

    // The fake's own export of the pulled snapshot is the same stream as the original's.
    const exportOf = async (root: string) => {
      const { spawnSync } = await import('node:child_process');
      return spawnSync(fakeCocoon, ['snapshot', 'export', 'myvm', '-o', '-'], {
        env: { ...process.env, FAKE_COCOON_ROOT: root },
        maxBuffer: 256 * MiB,
      }).stdout;
    };
    expect((await exportOf(b)).equals(await exportOf(a))).toBe(true);
  });

  it('pushes from --from-tar - under another repository and pulls to a tar and under a new name', async () => {
    const a = await cocoonRoot(cleanups, { myvm: snapshotFiles() });
    const { spawnSync } = await import('node:child_process');
    const tar = spawnSync(fakeCocoon, ['snapshot', 'export', 'myvm', '-o', '-'], {
      env: { ...process.env, FAKE_COCOON_ROOT: a },
      maxBuffer: 256 * MiB,
    }).stdout;
    const push = await epoch(
      ['push', 'myvm', '--repo', 'team/vm', '-t', 'nightly', '--from-tar', '-'],
      env(a),
      tar,
    );
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout.toString()).toMatch(/^team\/vm:nightly@sha256:/);

    const out = await tempDir('pull-tar-', cleanups);
    const toTar = await epoch(['pull', 'team/vm:nightly', '--to-tar', join(out, 'vm.tar')], env(a));
    expect(toTar.code, toTar.stderr).toBe(0);
    // The tar imports into a fresh cocoon as the same snapshot.
    const b = await cocoonRoot(cleanups);
    const imported = spawnSync(fakeCocoon, ['snapshot', 'import'], {
      env: { ...process.env, FAKE_COCOON_ROOT: b },
      input: await readFile(join(out, 'vm.tar')),
    });
    expect(imported.status, imported.stderr.toString()).toBe(0);
    expect(
      (await filesOf(join(b, 'snapshots', 'myvm')))['memory-ranges']?.equals(
        (await filesOf(join(a, 'snapshots', 'myvm')))['memory-ranges'] as Buffer,
      ),
    ).toBe(true);

    const renamed = await epoch(
      ['pull', 'team/vm:nightly', '--name', 'copy2', '--description', 'again'],
      env(b),
    );
    expect(renamed.code, renamed.stderr).toBe(0);
    const envelope = JSON.parse(
      await readFile(join(b, 'snapshots', 'copy2', 'snapshot.json'), 'utf8'),
    );
    expect(envelope.config).toMatchObject({
      name: 'copy2',
      description: 'again',
      future_field: { nested: [1, 2, 3] },
    });
  });

  it('pulls to a tar by the one snapshot format: canonical sparse map, hidden names refused', async () => {
    const client = new RegistryClient({ url: server.url });
    const put = async (tag: string, titles: string[], files: Record<string, SnapshotFile>) => {
      const layers = [];
      for (const title of titles) {
        const bytes = Buffer.from(`data of ${title}`);
        await client.pushBlob('team/format', bytes);
        layers.push(snapshotLayer(title, digestOf(bytes), bytes.length));
      }
      const config = Buffer.from(JSON.stringify(snapshotConfig('{"version":1}', files)));
      await client.pushBlob('team/format', config);
      const manifest = snapshotManifest({ digest: digestOf(config), size: config.length }, layers);
      await client.putManifest(
        'team/format',
        tag,
        Buffer.from(JSON.stringify(manifest)),
        MediaTypes.ociManifest,
      );
    };
    const root = await cocoonRoot(cleanups);
    const out = await tempDir('pull-format-', cleanups);
    // Stored with spaces: the CLI once passed it through while /dl/ re-serialised it.
    await put('sparse', ['mem', 'cfg'], {
      mem: { mode: 0o600, sparseMap: '[ {"o": 0, "l": 11} ]', sparseSize: 4096 },
    });
    const pulled = await epoch(
      ['pull', 'team/format:sparse', '--to-tar', join(out, 's.tar')],
      env(root),
    );
    expect(pulled.code, pulled.stderr).toBe(0);
    const headers: { name: string; mode?: number; pax?: Record<string, string> }[] = [];
    const ex = extract();
    Readable.from([await readFile(join(out, 's.tar'))]).pipe(ex);
    for await (const entry of ex) {
      const { name, mode, pax } = entry.header;
      headers.push({
        name,
        ...(mode !== undefined ? { mode } : {}),
        ...(pax ? { pax: pax as Record<string, string> } : {}),
      });
      entry.resume();
    }
    expect(headers.map((h) => [h.name, h.mode])).toEqual([
      ['snapshot.json', 0o644],
      ['mem', 0o600],
      ['cfg', 0o640],
    ]);
    expect(headers[1]?.pax).toMatchObject({
      'COCOON.sparse.map': '[{"o":0,"l":11}]',
      'COCOON.sparse.size': '4096',
    });

    await put('hidden', ['.epoch-config.json'], {});
    const hidden = await epoch(
      ['pull', 'team/format:hidden', '--to-tar', join(out, 'h.tar')],
      env(root),
    );
    expect(hidden.code).not.toBe(0);
    expect(hidden.stderr.toString()).toContain('not a usable snapshot');
  });

  it('refuses a tar or directory with a hidden file name before pushing', async () => {
    const root = await cocoonRoot(cleanups);
    const chunks: Uint8Array[] = [];
    for await (const chunk of tarStream([
      envelopeTarEntry(Buffer.from('{"version":1,"config":{}}')),
      { name: '.hidden', size: 1, mode: 0o640, open: () => [Buffer.from('x')] },
    ])) {
      chunks.push(chunk);
    }
    const tar = Buffer.concat(chunks);
    const push = await epoch(['push', 'dotvm', '--from-tar', '-'], env(root), tar);
    expect(push.code).not.toBe(0);
    expect(push.stderr.toString()).toContain('.hidden');
    const dir = await tempDir('dotdir-', cleanups);
    await writeFile(join(dir, '.hidden'), 'x');
    await writeFile(join(dir, 'disk'), 'y');
    const fromDir = await epoch(['push', 'dotvm', '--from-dir', dir], env(root));
    expect(fromDir.code).not.toBe(0);
    expect(fromDir.stderr.toString()).toContain('.hidden');
    expect((await epoch(['ls', 'dotvm'], env(root))).code).toBe(2);
  });

  it('skips the layers the registry has when pushing a tar file again', async () => {
    const a = await cocoonRoot(cleanups, { filevm: snapshotFiles() });
    const { spawnSync } = await import('node:child_process');
    const tar = spawnSync(fakeCocoon, ['snapshot', 'export', 'filevm', '-o', '-'], {
      env: { ...process.env, FAKE_COCOON_ROOT: a },
      maxBuffer: 256 * MiB,
    }).stdout;
    const out = await tempDir('push-tar-', cleanups);
    await writeFile(join(out, 'filevm.tar'), tar);
    const first = await epoch(
      ['push', 'filevm', '-t', 'a', '--from-tar', join(out, 'filevm.tar')],
      env(a),
    );
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('4 layers (0 already there)');
    const second = await epoch(
      ['push', 'filevm', '-t', 'b', '--from-tar', join(out, 'filevm.tar')],
      env(a),
    );
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('4 layers (4 already there)');
    const digestOfTag = async (tag: string) =>
      JSON.parse((await epoch(['inspect', `filevm:${tag}`, '--json'], env(a))).stdout.toString())
        .manifest.layers;
    expect(await digestOfTag('b')).toEqual(await digestOfTag('a'));
  });

  it('does not tag a push whose cocoon export failed, even after a complete stream', async () => {
    const a = await cocoonRoot(cleanups, { failvm: snapshotFiles() });
    const push = await epoch(['push', 'failvm'], env(a, { FAKE_COCOON_EXPORT_EXIT: '1' }));
    expect(push.code).toBe(1);
    expect(push.stderr).toContain('cocoon snapshot export failvm');
    expect((await epoch(['inspect', 'failvm:latest'], env(a))).code).toBe(2);
  });

  it('kills the importer and imports nothing when the download is cut mid-way', async () => {
    const a = await cocoonRoot(cleanups, { cutvm: snapshotFiles() });
    expect((await epoch(['push', 'cutvm'], env(a))).code).toBe(0);
    // A proxy that drops every layer download after 64 KiB and refuses to resume it: the small
    // config and config.json get through, memory-ranges (112 KiB of data) is cut.
    const proxy = await startProxy(server.url, (req, res) => {
      if (req.method === 'GET' && req.url?.includes('/blobs/sha256:')) {
        if (req.headers.range) {
          res.writeHead(500).end();
          return 'handled';
        }
        return { cutAfter: 64 * 1024 };
      }
      return 'pass';
    });
    cleanups.push(() => proxy.close());
    const b = await cocoonRoot(cleanups);
    const pull = await epoch(['pull', 'cutvm'], env(b, { EPOCH_SERVER: proxy.url }));
    expect(pull.code).toBe(1);
    const log = await cocoonLog(b);
    expect(log.some((l) => l.includes('start snapshot import'))).toBe(true);
    expect(log.some((l) => / (ok|failed)/.test(l))).toBe(false);
    expect((await readdir(join(b, 'snapshots'))).filter((f) => !f.startsWith('.'))).toEqual([]);
  });
});

describe('cloud images', () => {
  it('pulls and gets a split image reassembled in title order, ignoring non-disk layers', async () => {
    const client = new RegistryClient({ url: server.url });
    const parts = [randomBytes(200 * 1024), randomBytes(150 * 1024), randomBytes(1000)];
    const titles = [
      'win.qcow2.00.qcow2.part',
      'win.qcow2.01.qcow2.part',
      'win.qcow2.02.qcow2.part',
    ];
    const sums = Buffer.from('sums\n');
    for (const p of [...parts, sums]) await client.pushBlob('os/win', p);
    const empty = Buffer.from('{}');
    await client.pushBlob('os/win', empty);
    // Layers deliberately out of order: the title decides.
    const order = [2, 0, 1];
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.osImageArtifact,
      config: { mediaType: MediaTypes.ociEmpty, digest: digestOf(empty), size: 2 },
      layers: [
        ...order.map((i) => ({
          mediaType: CocoonMediaTypes.diskQcow2Part,
          digest: digestOf(parts[i] as Buffer),
          size: (parts[i] as Buffer).length,
          annotations: { [Annotations.title]: titles[i] as string },
        })),
        {
          mediaType: 'text/plain',
          digest: digestOf(sums),
          size: sums.length,
          annotations: { [Annotations.title]: 'SHA256SUMS' },
        },
      ],
    };
    await client.putManifest(
      'os/win',
      '24h2',
      Buffer.from(JSON.stringify(manifest)),
      MediaTypes.ociManifest,
    );
    await client.close();
    const whole = Buffer.concat(parts);

    const root = await cocoonRoot(cleanups);
    const pull = await epoch(['pull', 'os/win:24h2'], env(root));
    expect(pull.code, pull.stderr).toBe(0);
    expect((await readFile(join(root, 'images', 'win'))).equals(whole)).toBe(true);

    const get = await epoch(['get', 'os/win:24h2'], env(root));
    expect(get.code).toBe(0);
    expect(get.stdout.equals(whole)).toBe(true);

    const notCloud = await epoch(['get', 'nope/none:1'], env(root));
    expect(notCloud.code).toBe(2);
    expect(notCloud.stderr).toContain(server.url);
  });
});

describe('copy between registries', () => {
  let registry: DockerRegistry;
  beforeAll(async () => {
    registry = await startDockerRegistry();
    cleanups.unshift(() => registry.stop());
  });

  it('mirrors an image index from docker-registry into Epoch with digests unchanged', async () => {
    const dr = new RegistryClient({ url: registry.url });
    const children = [];
    for (const arch of ['amd64', 'arm64']) {
      const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux' }));
      const layer = randomBytes(40 * 1024);
      await dr.pushBlob('lib/app', config);
      await dr.pushBlob('lib/app', layer);
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaTypes.ociManifest,
          config: {
            mediaType: MediaTypes.ociConfig,
            digest: digestOf(config),
            size: config.length,
          },
          layers: [
            { mediaType: MediaTypes.ociLayerGzip, digest: digestOf(layer), size: layer.length },
          ],
        }),
      );
      const digest = await dr.putManifest(
        'lib/app',
        digestOf(bytes),
        bytes,
        MediaTypes.ociManifest,
      );
      children.push({
        mediaType: MediaTypes.ociManifest,
        digest,
        size: bytes.length,
        platform: { os: 'linux', architecture: arch },
      });
    }
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: children }),
    );
    const indexDigest = await dr.putManifest('lib/app', '1.0', index, MediaTypes.ociIndex);
    await dr.close();

    const root = await cocoonRoot(cleanups);
    const copy = await epoch(
      ['copy', `${registry.host}/lib/app:1.0`, 'mirror/app', '--json'],
      env(root),
    );
    expect(copy.code, copy.stderr).toBe(0);
    const result = JSON.parse(copy.stdout.toString());
    expect(result.digest).toBe(indexDigest);
    expect(result.blobs.uploaded).toBe(4);

    const epochClient = new RegistryClient({ url: server.url });
    const got = await epochClient.getManifest('mirror/app', '1.0');
    expect(got.digest).toBe(indexDigest);
    expect(got.bytes.equals(index)).toBe(true);
    for (const child of children) {
      expect((await epochClient.headManifest('mirror/app', child.digest)).digest).toBe(
        child.digest,
      );
    }

    // Within one registry the blobs are mounted, not sent again.
    const again = await epoch(['copy', 'mirror/app:1.0', 'mirror/app2:1.0', '--json'], env(root));
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout.toString()).blobs).toMatchObject({ uploaded: 0, mounted: 4 });

    // References with host:port and @digest: the host wins over EPOCH_SERVER.
    const pinned = await epoch(
      ['inspect', `${registry.host}/lib/app@${children[1]?.digest}`, '--json'],
      env(root, { EPOCH_SERVER: 'http://127.0.0.1:9' }),
    );
    expect(pinned.code, pinned.stderr).toBe(0);
    const report = JSON.parse(pinned.stdout.toString());
    expect(report.digest).toBe(children[1]?.digest);
    expect(report.kind).toBe('container-image');
    expect(report.config.architecture).toBe('arm64');
    await epochClient.close();
  });
});

describe('listing, tagging, deleting and logging in', () => {
  it('tags, lists (--json), deletes, and exits 2 for what does not exist', async () => {
    const a = await cocoonRoot(cleanups, { tagvm: snapshotFiles() });
    expect((await epoch(['push', 'tagvm', '-t', 'v1'], env(a))).code).toBe(0);
    const tag = await epoch(['tag', 'tagvm:v1', 'stable'], env(a));
    expect(tag.code, tag.stderr).toBe(0);
    const ls = await epoch(['ls', 'tagvm', '--json'], env(a));
    expect(JSON.parse(ls.stdout.toString())).toEqual(['stable', 'v1']);
    const repos = await epoch(['ls', '--json'], env(a));
    expect(JSON.parse(repos.stdout.toString())).toContain('tagvm');
    expect((await epoch(['rm', 'tagvm:stable'], env(a))).code).toBe(0);
    expect(JSON.parse((await epoch(['ls', 'tagvm', '--json'], env(a))).stdout.toString())).toEqual([
      'v1',
    ]);
    const gone = await epoch(['rm', 'tagvm:stable'], env(a));
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('tagvm:stable not found');
    expect((await epoch(['ls', 'no/such'], env(a))).code).toBe(2);
    expect((await epoch(['inspect', 'no/such:1'], env(a))).code).toBe(2);
    expect((await epoch(['pull', 'no/such:1'], env(a))).code).toBe(2);
  });

  it('saves a checked login with mode 0600 and forgets it on logout', async () => {
    const bcrypt = (await import('bcryptjs')).default;
    const registry = await startDockerRegistry({ htpasswd: `bob:${bcrypt.hashSync('pw', 5)}\n` });
    cleanups.unshift(() => registry.stop());
    const root = await cocoonRoot(cleanups);
    const wrong = await epoch(['login', registry.host, '-u', 'bob', '-p', 'nope'], env(root));
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('refused');
    expect((await epoch(['ls', `${registry.host}/x`], env(root))).code).toBe(1);
    const login = await epoch(
      ['login', registry.host, '-u', 'bob', '--password-stdin'],
      env(root),
      Buffer.from('pw\n'),
    );
    expect(login.code, login.stderr).toBe(0);
    const file = join(root, 'config', 'epoch', 'credentials.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8')).registries[registry.host]).toEqual({
      username: 'bob',
      password: 'pw',
    });
    const ls = await epoch(['ls', '--json'], env(root, { EPOCH_SERVER: registry.url }));
    expect(ls.code, ls.stderr).toBe(0);
    expect(JSON.parse(ls.stdout.toString())).toEqual([]);
    expect((await epoch(['logout', registry.host], env(root))).code).toBe(0);
    expect(JSON.parse(await readFile(file, 'utf8')).registries).toEqual({});
  });
});
