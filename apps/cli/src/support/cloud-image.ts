import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { cloudImageParts, type ImageManifest } from '@epoch/oci';
import type { RegistryClient } from '@epoch/registry/client';
import { CliError } from './errors.js';
import { Progress } from './progress.js';

/**
 * Writes a cloud image's disk to `out`: its disk layers in title order (byte-wise), each
 * streamed and verified against its digest and size.
 */
export async function writeCloudImage(
  out: Writable,
  client: RegistryClient,
  repository: string,
  manifest: ImageManifest,
): Promise<void> {
  const parts = cloudImageParts(manifest);
  if (parts.length === 0) throw new CliError(`${repository}: the cloud image has no disk layers`);
  const total = parts.reduce((sum, p) => sum + p.size, 0);
  const progress = new Progress(repository, total);
  let before = 0;
  for (const part of parts) {
    const body = client.getBlob(repository, part.digest, {
      size: part.size,
      onProgress: (n) => progress.update(before + n),
    });
    for await (const chunk of body) {
      if (!out.write(chunk)) await once(out, 'drain');
    }
    before += part.size;
  }
  progress.done();
}
