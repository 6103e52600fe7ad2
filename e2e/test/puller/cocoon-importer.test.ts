import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '@epoch/oci';
import {
  CocoonImportError,
  cocoonImporter,
  newPuller,
  type Puller,
  RegistryClient,
} from '@epoch/registry';
import { fakeCocoon } from '@epoch/test-support/fake-cocoon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EpochServer, startEpoch } from '../support/epoch-server.js';
import { pushCloudImage, pushSnapshot, random } from '../support/fixtures.js';

let server: EpochServer;
let client: RegistryClient;
let root: string;
let cacheDir: string;
let puller: Puller;

beforeAll(async () => {
  server = await startEpoch();
  client = new RegistryClient({ url: server.url, retries: 1 });
  root = await mkdtemp(join(tmpdir(), 'epoch-fake-cocoon-'));
  cacheDir = await mkdtemp(join(tmpdir(), 'epoch-puller-cache-'));
  puller = newPuller({
    registry: server.url,
    cacheDir,
    // The stand-in for cocoon (a real program implementing `snapshot import` and `image import`
    // the way cocoon does), run as the importer binary.
    importer: cocoonImporter({
      binary: fakeCocoon,
      env: { ...process.env, FAKE_COCOON_ROOT: root },
    }),
  });
});

afterAll(async () => {
  await puller?.close();
  await client?.close();
  await server?.stop();
  await rm(root, { recursive: true, force: true });
  await rm(cacheDir, { recursive: true, force: true });
});

describe('cocoonImporter', () => {
  it('imports a snapshot through `cocoon snapshot import --name`, sparse files restored', async () => {
    const name = `vm-${Date.now()}`;
    const data = random(8192);
    const mem = random(MiB());
    await pushSnapshot(client, name, 'v2', [
      { name: 'memory-ranges', bytes: mem },
      {
        name: 'cow.raw',
        bytes: data,
        sparse: {
          map: [
            { o: 0, l: 4096 },
            { o: MiB(), l: 4096 },
          ],
          size: 2 * MiB(),
        },
      },
    ]);
    const result = await puller.ensureSnapshot(`${name}:v2`);
    expect(result.importName).toBe(`${name}:v2`);
    const dir = join(root, 'snapshots', `${name}:v2`);
    expect(digestOf(await readFile(join(dir, 'memory-ranges')))).toBe(digestOf(mem));
    const cow = await readFile(join(dir, 'cow.raw'));
    expect(cow.length).toBe(2 * MiB());
    expect(cow.subarray(0, 4096).equals(data.subarray(0, 4096))).toBe(true);
    expect(cow.subarray(MiB(), MiB() + 4096).equals(data.subarray(4096))).toBe(true);
    expect(cow.subarray(4096, MiB()).every((b) => b === 0)).toBe(true);
    const envelope = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8'));
    expect(envelope.config).toMatchObject({ name: `${name}:v2`, queue_size: 7 });
  });

  it('a failed import fails the ensure and is retried by the next one, the files staying cached', async () => {
    const name = `taken-${Date.now()}`;
    await pushSnapshot(client, name, 'latest', [{ name: 'mem', bytes: random(1024) }]);
    // cocoon refuses a name in use.
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(root, 'snapshots', name), { recursive: true });
    await expect(puller.ensureSnapshot(name)).rejects.toBeInstanceOf(CocoonImportError);
    await rm(join(root, 'snapshots', name), { recursive: true });
    const again = await puller.ensureSnapshot(name);
    expect(again).toMatchObject({ cached: true, importName: name, bytesTransferred: 0 });
    await expect(stat(join(root, 'snapshots', name, 'mem'))).resolves.toBeDefined();
  });

  it('imports a cloud image through `cocoon image import`', async () => {
    const name = `img-${Date.now()}`;
    const parts = [
      { name: 'd.qcow2.00.qcow2.part', bytes: random(MiB()) },
      { name: 'd.qcow2.01.qcow2.part', bytes: random(1000) },
    ];
    await pushCloudImage(client, name, 'latest', parts);
    const result = await puller.ensureCloudImage(name);
    expect(result.importName).toBe(name);
    const image = await readFile(join(root, 'images', name));
    expect(digestOf(image)).toBe(
      digestOf(Buffer.concat([parts[0]?.bytes as Buffer, parts[1]?.bytes as Buffer])),
    );
  });
});

function MiB(): number {
  return 1024 * 1024;
}
