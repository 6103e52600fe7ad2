import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaTypes } from '@epoch/oci';

/** A blob written into an OCI image layout. */
export interface LayoutBlob {
  digest: string;
  size: number;
}

/**
 * Writes an OCI image layout with one image: a config, a small layer and a large random layer
 * streamed to disk (never held whole in memory). Returns the manifest digest and the blobs.
 */
export async function writeImageLayout(
  dir: string,
  tag: string,
  largeLayerBytes: number,
): Promise<{ manifestDigest: string; blobs: LayoutBlob[] }> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const put = async (bytes: Buffer): Promise<LayoutBlob> => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(dir, 'blobs', 'sha256', hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const large = await writeRandomBlob(dir, largeLayerBytes);
  const small = await put(Buffer.from('small layer contents'));
  const config = await put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, ...config },
      layers: [
        { mediaType: MediaTypes.ociLayer, ...small },
        { mediaType: MediaTypes.ociLayer, ...large },
      ],
      annotations: { 'org.opencontainers.image.title': 'epoch e2e' },
    }),
  );
  const m = await put(manifest);
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MediaTypes.ociManifest,
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { manifestDigest: m.digest, blobs: [config, small, large] };
}

async function writeRandomBlob(dir: string, size: number): Promise<LayoutBlob> {
  const tmp = join(dir, 'blobs', 'sha256', 'incoming');
  const out = createWriteStream(tmp);
  const hash = createHash('sha256');
  for (let written = 0; written < size; ) {
    const chunk = randomBytes(Math.min(1 << 20, size - written));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
    written += chunk.length;
  }
  out.end();
  await once(out, 'finish');
  const hex = hash.digest('hex');
  const { rename } = await import('node:fs/promises');
  await rename(tmp, join(dir, 'blobs', 'sha256', hex));
  return { digest: `sha256:${hex}`, size };
}

/** The manifest digest an OCI layout's index.json names for `tag`. */
export async function layoutManifestDigest(dir: string, tag: string): Promise<string | undefined> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  return index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)
    ?.digest;
}
