import type { Registry } from './registry.js';
import type { RegistryScan } from './storage-scan.js';

/** What {@link adoptReferencedBlobs} did. */
export interface AdoptReport {
  /** Link markers written. */
  adopted: number;
  /** References left unlinked: foreign layers (`urls`) and blobs storage does not have. */
  skipped: number;
}

/**
 * Links each blob that a repository's stored manifests reference but that has no link marker,
 * and marks it linked in `scan`.
 *
 * Upstream epoch served every blob to every repository and wrote no markers, so its buckets
 * reach Epoch with manifests whose blobs no repository may read. Epoch itself stores a manifest
 * only when every blob it names is linked to its repository, so an unlinked reference in
 * storage was written by upstream (or is a blob the repository's owner unlinked by hand): the
 * manifest's own repository may read it, as it could upstream. A reference with `urls` (a
 * foreign layer) is never adopted: naming a digest next to a URL proves no right to the bytes.
 */
export async function adoptReferencedBlobs(
  registry: Registry,
  scan: RegistryScan,
  options: { signal?: AbortSignal } = {},
): Promise<AdoptReport> {
  const report: AdoptReport = { adopted: 0, skipped: 0 };
  for (const repo of scan.repositories) {
    for (const [digest, blob] of repo.blobs) {
      options.signal?.throwIfAborted();
      if (blob.linked) continue;
      if (blob.foreign || (await registry.blobs.storedSize(digest)) === undefined) {
        report.skipped++;
        continue;
      }
      await registry.links.add(repo.name, digest);
      blob.linked = true;
      blob.linkedAt = new Date();
      report.adopted++;
    }
  }
  return report;
}
