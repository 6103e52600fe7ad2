import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CocoonMediaTypes, digestOf, MediaTypes } from '@epoch/oci';
import type { RawClient } from '@epoch/test-support/oci-client';
import { writeImageLayout } from './oci-layout.js';
import type { TestServer } from './server.js';

const exec = promisify(execFile);

/** Free text that must render as text wherever the dashboard shows it. */
export const XSS = '<script>alert(1)</script>';

/** One file of a snapshot: its layer title, bytes and media type, and an optional logical size. */
export interface SnapshotFile {
  title: string;
  content: string;
  mediaType?: string;
  sparseSize?: number;
}

/**
 * Pushes a snapshot: a config naming `files` (with `config` merged in) and one titled layer per
 * file. Returns the manifest's digest.
 */
export async function pushSnapshot(
  api: RawClient,
  name: string,
  tag: string,
  files: SnapshotFile[],
  config: Record<string, unknown> = {},
  annotations?: Record<string, string>,
): Promise<string> {
  const configJson = JSON.stringify({
    schemaVersion: 'v1',
    hypervisor: 'cloud-hypervisor',
    cpu: 4,
    memory: 4 * 1024 ** 3,
    ...config,
    files: Object.fromEntries(
      files.map((f) => [
        f.title,
        f.sparseSize === undefined
          ? { mode: 420 }
          : {
              mode: 384,
              sparseMap: JSON.stringify([{ o: 0, l: f.content.length }]),
              sparseSize: f.sparseSize,
            },
      ]),
    ),
  });
  const layers = [];
  for (const f of files) {
    layers.push({
      mediaType: f.mediaType ?? CocoonMediaTypes.vmMemory,
      digest: await api.pushBlob(name, f.content),
      size: f.content.length,
      annotations: { 'org.opencontainers.image.title': f.title },
    });
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: CocoonMediaTypes.snapshotArtifact,
    config: {
      mediaType: CocoonMediaTypes.snapshotConfig,
      digest: await api.pushBlob(name, configJson),
      size: configJson.length,
    },
    layers,
    ...(annotations ? { annotations } : {}),
  });
  await putManifest(api, name, tag, manifest);
  return digestOf(manifest);
}

async function putManifest(
  api: RawClient,
  name: string,
  tag: string,
  manifest: string,
  type: string = MediaTypes.ociManifest,
): Promise<void> {
  const res = await api.fetch(`/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': type },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`push ${name}:${tag}: ${res.status} ${await res.text()}`);
}

/**
 * The data the pages show: a snapshot (with hostile free text in its config), a snapshot with
 * three versions for the history, a cloud image in parts, a container image pushed by skopeo and
 * one with two tags, and a two-platform index. Manifest digests go into `digests` by tag.
 */
export async function pushFixtures(
  t: TestServer,
  api: RawClient,
  admin: string,
  work: string,
  digests: Record<string, string>,
): Promise<void> {
  const put = async (
    name: string,
    tag: string,
    manifest: string,
    type: string = MediaTypes.ociManifest,
  ) => {
    await putManifest(api, name, tag, manifest, type);
    digests[tag] = digestOf(manifest);
  };

  // A snapshot, tagged twice.
  const live: SnapshotFile[] = [
    { title: 'config.json', content: '{"vm":true}', mediaType: CocoonMediaTypes.vmConfig },
    { title: 'memory-ranges', content: 'M'.repeat(6000), sparseSize: 4 * 1024 ** 3 },
  ];
  const liveConfig = {
    snapshotId: 'snap-7',
    description: XSS,
    image: 'ghcr.io/cocoonstack/ubuntu:24.04',
    storage: 20 * 1024 ** 3,
    nics: 1,
  };
  digests.hibernate = await pushSnapshot(api, 'vm/live', 'hibernate', live, liveConfig);
  digests.running = await pushSnapshot(api, 'vm/live', 'running', live, liveConfig, {
    'org.opencontainers.image.description': XSS,
  });

  // A snapshot with a history: v2 grows the memory file and adds a disk overlay; v3 rewrites
  // the memory file at the same size, drops the overlay and adds a state file.
  const config = {
    title: 'config.json',
    content: '{"vm":true}',
    mediaType: CocoonMediaTypes.vmConfig,
  };
  await pushSnapshot(api, 'vm/history', 'v1', [
    config,
    { title: 'memory-ranges', content: 'a'.repeat(4000), sparseSize: 1024 ** 3 },
  ]);
  await pushSnapshot(api, 'vm/history', 'v2', [
    config,
    { title: 'memory-ranges', content: 'b'.repeat(7000), sparseSize: 1024 ** 3 },
    { title: 'overlay.qcow2', content: 'o'.repeat(3000) },
  ]);
  await pushSnapshot(
    api,
    'vm/history',
    'v3',
    [
      config,
      { title: 'memory-ranges', content: 'c'.repeat(7000), sparseSize: 1024 ** 3 },
      { title: 'state.json', content: '{"running":true}', mediaType: CocoonMediaTypes.vmState },
    ],
    { cpu: 8 },
  );

  // A cloud image split in parts, pushed out of order.
  const parts = {
    'win.qcow2.01.qcow2.part': 'B'.repeat(3000),
    'win.qcow2.00.qcow2.part': 'A'.repeat(5000),
    'win.qcow2.02.qcow2.part': 'C'.repeat(1200),
  };
  const partLayers = [];
  for (const [title, content] of Object.entries(parts)) {
    partLayers.push({
      mediaType: CocoonMediaTypes.diskQcow2Part,
      digest: await api.pushBlob('os/win11', content),
      size: content.length,
      annotations: { 'org.opencontainers.image.title': title },
    });
  }
  await put(
    'os/win11',
    'latest',
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.osImageArtifact,
      config: {
        mediaType: MediaTypes.ociEmpty,
        digest: await api.pushBlob('os/win11', '{}'),
        size: 2,
      },
      layers: partLayers,
    }),
  );

  // Container images: two tags by hand, one pushed by skopeo.
  const alpine = await api.pushImage('library/alpine', '3.20', {
    layers: ['alpine rootfs '.repeat(400)],
  });
  digests['3.20'] = alpine.digest;
  await api.pushImage('library/alpine', 'old', { layers: ['older rootfs '.repeat(100)] });
  // A signature referring to 3.20, pushed by digest as signers do.
  const sig = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    config: {
      mediaType: MediaTypes.ociEmpty,
      digest: await api.pushBlob('library/alpine', '{}'),
      size: 2,
    },
    layers: [],
    subject: {
      mediaType: MediaTypes.ociManifest,
      digest: digests['3.20'],
      size: alpine.bytes.length,
    },
  });
  await put('library/alpine', digestOf(sig), sig);
  const src = join(work, 'layout');
  await writeImageLayout(src, 'v1', 256 * 1024);
  await exec('skopeo', [
    '--insecure-policy',
    'copy',
    '--preserve-digests',
    '--dest-tls-verify=false',
    '--dest-creds',
    `e2e:${admin}`,
    `oci:${src}:v1`,
    `docker://${new URL(t.url).host}/e2e/skopeo:v1`,
  ]).catch((err: { stderr?: string }) => {
    throw new Error(`skopeo push failed: ${err.stderr}`);
  });

  // A two-platform index over two child manifests.
  const children = [];
  for (const [arch, variant] of [
    ['amd64', undefined],
    ['arm64', 'v8'],
  ] as const) {
    const child = await api.pushImage('library/busybox', `child-${arch}`, {
      layers: [`busybox ${arch} `.repeat(arch === 'amd64' ? 300 : 200)],
    });
    children.push({
      mediaType: MediaTypes.ociManifest,
      digest: child.digest,
      size: Buffer.byteLength(child.bytes),
      platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) },
    });
  }
  await put(
    'library/busybox',
    'latest',
    JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: children }),
    MediaTypes.ociIndex,
  );
}
