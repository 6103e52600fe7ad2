import { assertRepositoryName, assertTag, type Digest, parseDigest } from '@epoch/oci';

/**
 * The bucket layout, in one place. It is upstream epoch's, so an existing upstream bucket is
 * served as it is and upstream tools can read what Epoch writes:
 *
 * ```
 * blobs/<alg>/<hex>                                  content, deduplicated across repositories
 * manifests/<repo>/_digests/<alg>-<hex>.json         a manifest by digest
 * manifests/<repo>/<tag>.json                        a tag: a full copy of its manifest's bytes
 * manifests/<repo>/_layers/<alg>-<hex>               empty marker: the blob is linked to <repo>
 * manifests/<repo>/_referrers/<alg>-<hex>/<alg>-<hex>.json
 *                                                    descriptor of a manifest whose subject is
 *                                                    the first digest (the referrers API)
 * catalog.json                                       compatibility snapshot; written, never read to serve
 * _uploads/<id>/session.json, _uploads/<id>/data     upload sessions, never visible as blobs
 * ```
 *
 * Every builder validates its inputs with `@epoch/oci` first, so no name, tag or digest a client
 * sent can produce a key outside its own place (`_digests` is not a legal name component, and
 * tags cannot contain `/`).
 */
export const Layout = {
  blobsPrefix: 'blobs/',
  manifestsPrefix: 'manifests/',
  uploadsPrefix: '_uploads/',
  catalogKey: 'catalog.json',

  blob(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return `blobs/${algorithm}/${hex}`;
  },

  repository(repo: string): string {
    assertRepositoryName(repo);
    return `manifests/${repo}/`;
  },

  manifestByDigest(repo: string, digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${Layout.repository(repo)}_digests/${algorithm}-${hex}.json`;
  },

  tag(repo: string, tag: string): string {
    assertTag(tag);
    return `${Layout.repository(repo)}${tag}.json`;
  },

  link(repo: string, digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${Layout.repository(repo)}_layers/${algorithm}-${hex}`;
  },

  referrers(repo: string, subject: string): string {
    const { algorithm, hex } = parseDigest(subject);
    return `${Layout.repository(repo)}_referrers/${algorithm}-${hex}/`;
  },

  referrer(repo: string, subject: string, digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${Layout.referrers(repo, subject)}${algorithm}-${hex}.json`;
  },

  uploadPrefix(id: string): string {
    return `_uploads/${id}/`;
  },
  uploadSession(id: string): string {
    return `_uploads/${id}/session.json`;
  },
  uploadData(id: string): string {
    return `_uploads/${id}/data`;
  },
} as const;

/** What a key under `manifests/` stands for, or `undefined` for anything else found there. */
export type ManifestKey =
  | { type: 'tag'; repository: string; tag: string }
  | { type: 'digest'; repository: string; digest: Digest };

/**
 * Parses a key found by listing `manifests/` back into a repository and a tag or digest. Keys
 * that are not something Epoch or upstream wrote (wrong suffix, invalid names) yield `undefined`
 * and are ignored rather than trusted.
 */
export function parseManifestKey(key: string): ManifestKey | undefined {
  if (!key.startsWith(Layout.manifestsPrefix) || !key.endsWith('.json')) return undefined;
  const path = key.slice(Layout.manifestsPrefix.length, -'.json'.length);
  const digestMarker = path.lastIndexOf('/_digests/');
  try {
    if (digestMarker >= 0) {
      const repository = path.slice(0, digestMarker);
      const file = path.slice(digestMarker + '/_digests/'.length);
      const dash = file.indexOf('-');
      if (dash < 0) return undefined;
      const digest = `${file.slice(0, dash)}:${file.slice(dash + 1)}`;
      const parsed = parseDigest(digest);
      assertRepositoryName(repository);
      return { type: 'digest', repository, digest: `${parsed.algorithm}:${parsed.hex}` };
    }
    const slash = path.lastIndexOf('/');
    if (slash < 0) return undefined;
    const repository = path.slice(0, slash);
    const tag = path.slice(slash + 1);
    assertRepositoryName(repository);
    assertTag(tag);
    return { type: 'tag', repository, tag };
  } catch {
    return undefined;
  }
}
