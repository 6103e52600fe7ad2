import { type Descriptor, type ImageIndex, type ImageManifest, parseManifest } from '@epoch/oci';
import type { RegistryClient } from '@epoch/registry/client';
import { Progress } from './progress.js';

/** One side of a copy. */
export interface CopyEnd {
  client: RegistryClient;
  repository: string;
}

/** What a copy moved. */
export interface CopyReport {
  digest: string;
  blobs: { uploaded: number; mounted: number; existing: number; bytes: number };
}

const PARALLEL_BLOBS = 4;

/**
 * Copies a manifest (by tag or digest) and everything it references, index children included,
 * from `src` to `dst`, then tags it `dstReference`. Manifest bytes are copied exactly, so
 * digests do not change. Blobs the destination has are skipped; on the same registry they are
 * mounted; otherwise they stream from one registry to the other (several in parallel), never
 * through memory or disk whole.
 */
export async function copyImage(
  src: CopyEnd,
  srcReference: string,
  dst: CopyEnd,
  dstReference: string,
): Promise<CopyReport> {
  const report: CopyReport = {
    digest: '',
    blobs: { uploaded: 0, mounted: 0, existing: 0, bytes: 0 },
  };
  const sameRegistry = src.client.url === dst.client.url;
  const copyBlob = async (blob: Descriptor) => {
    if (sameRegistry && src.repository !== dst.repository) {
      const r = await dst.client.pushBlob(
        dst.repository,
        () => src.client.getBlob(src.repository, blob.digest, { size: blob.size }),
        {
          digest: blob.digest,
          size: blob.size,
          mountFrom: src.repository,
        },
      );
      count(r.how, blob.size);
      return;
    }
    if (await dst.client.hasBlob(dst.repository, blob.digest)) {
      count('exists', blob.size);
      return;
    }
    const progress = new Progress(blob.digest.slice(7, 19), blob.size);
    const r = await dst.client.pushBlob(
      dst.repository,
      src.client.getBlob(src.repository, blob.digest, { size: blob.size }),
      { digest: blob.digest, size: blob.size, onProgress: (n) => progress.update(n) },
    );
    progress.done();
    count(r.how, blob.size);
  };
  const count = (how: 'uploaded' | 'mounted' | 'exists', size: number) => {
    if (how === 'uploaded') {
      report.blobs.uploaded++;
      report.blobs.bytes += size;
    } else if (how === 'mounted') report.blobs.mounted++;
    else report.blobs.existing++;
  };

  const copyManifest = async (reference: string, target: string): Promise<string> => {
    const m = await src.client.getManifest(src.repository, reference);
    const parsed = parseManifest(m.bytes, m.mediaType);
    if (parsed.kind === 'index') {
      for (const child of (parsed.manifest as ImageIndex).manifests) {
        await copyManifest(child.digest, child.digest);
      }
    } else {
      const manifest = parsed.manifest as ImageManifest;
      const blobs = uniqueBlobs([manifest.config, ...manifest.layers]);
      await parallel(blobs, PARALLEL_BLOBS, copyBlob);
    }
    await dst.client.putManifest(dst.repository, target, m.bytes, m.mediaType);
    return m.digest;
  };
  report.digest = await copyManifest(srcReference, dstReference);
  return report;
}

function uniqueBlobs(blobs: Descriptor[]): Descriptor[] {
  const seen = new Map<string, Descriptor>();
  for (const b of blobs) if (!seen.has(b.digest)) seen.set(b.digest, b);
  return [...seen.values()];
}

async function parallel<T>(
  items: T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await run(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
