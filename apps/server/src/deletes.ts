import { ManifestUnknownError, type Registry } from '@epoch/registry';
import type { Store } from '@epoch/store';

/**
 * Deletes a tag, or a manifest by digest, from storage and then from the index: the one rule for
 * `/v2/` and `/api/`. Storage goes first (it is the truth); if the process dies between the two,
 * the retry finds storage without the reference but the index still listing it, and finishes
 * the delete there.
 *
 * @returns whether either held it (false: nothing to delete, a 404)
 */
export async function deleteReference(
  registry: Registry,
  index: Store,
  name: string,
  reference: string,
  byDigest: boolean,
): Promise<boolean> {
  let digest: string;
  try {
    if (byDigest) {
      // Drop the referrer entry first, so a retry after a failure still finds the manifest.
      const { bytes } = await registry.manifests.get(name, reference);
      const subject = subjectOf(bytes);
      if (subject) await registry.referrers.remove(name, subject, reference);
    }
    ({ digest } = await registry.manifests.delete(name, reference));
  } catch (err) {
    if (!(err instanceof ManifestUnknownError)) throw err;
    return byDigest
      ? (await index.writes.deleteManifest(name, reference)).found
      : index.writes.deleteTag(name, reference);
  }
  if (byDigest) await index.writes.deleteManifest(name, digest);
  else await index.writes.deleteTag(name, reference);
  return true;
}

function subjectOf(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      subject?: { digest?: unknown };
    };
    return typeof doc.subject?.digest === 'string' ? doc.subject.digest : undefined;
  } catch {
    return undefined;
  }
}
