import { assertRepositoryName, MediaTypes, parseDigest } from '@epoch/oci';
import { NameUnknownError } from '@epoch/registry';
import type { Context } from 'hono';
import { canPull, visibleRepositories } from '../auth/policy.js';
import type { Env } from '../http/env.js';
import { intQuery } from '../http/request.js';
import type { V2Handler } from './handler.js';
import type { V2Services } from './services.js';

/** The most entries one page holds, whatever `n` asks: never allocate what a client asks for. */
export const MAX_PAGE = 1000;

/** GET `/v2/` — the API version check. */
export function ping(): V2Handler {
  return async (c) => {
    c.header('Docker-Distribution-API-Version', 'registry/2.0');
    return c.json({}, 200);
  };
}

/** GET `/v2/<name>/tags/list?n=&last=`. */
export function listTags({ registry, index, indexReady }: V2Services): V2Handler {
  return async (c, { name = '' }) => {
    assertRepositoryName(name);
    const { limit, last } = pageParams(c);
    const options = { limit, ...(last !== undefined ? { last } : {}) };
    let page: { items: string[]; next?: string };
    if (indexReady()) {
      if (!(await index.reads.repositoryExists(name))) throw new NameUnknownError(name);
      page = limit === 0 ? { items: [] } : await index.reads.listTagNames(name, options);
    } else {
      page = await registry.manifests.listTags(name, options);
    }
    if (page.next !== undefined) linkNext(c, `/v2/${name}/tags/list`, limit, page.next);
    return c.json({ name, tags: page.items }, 200);
  };
}

/** GET `/v2/_catalog?n=&last=`. */
export function listCatalog({ registry, index, indexReady }: V2Services): V2Handler {
  return async (c) => {
    const { limit, last } = pageParams(c);
    // A caller sees only what it may pull, and the page is cut from those alone: neither the
    // page nor its Link can carry another repository's name.
    const principal = c.var.principal;
    const filter = visibleRepositories(principal);
    const from = { limit, ...(last !== undefined ? { last } : {}) };
    const page =
      limit === 0
        ? { items: [] as string[] }
        : indexReady()
          ? await index.reads.listRepositoryNames({ ...from, ...(filter ? { filter } : {}) })
          : await registry.manifests.listRepositories({
              ...from,
              ...(filter ? { accept: (n: string) => canPull(principal, n) } : {}),
            });
    if (page.next !== undefined) linkNext(c, '/v2/_catalog', limit, page.next);
    return c.json({ repositories: page.items }, 200);
  };
}

/** GET `/v2/<name>/referrers/<digest>?artifactType=`: an index of the subject's referrers. */
export function listReferrers({ registry, index, indexReady }: V2Services): V2Handler {
  return async (c, { name = '', digest = '' }) => {
    assertRepositoryName(name);
    parseDigest(digest);
    const artifactType = c.req.query('artifactType') || undefined;
    let manifests: { digest: string; artifactType?: string }[];
    if (indexReady()) {
      manifests = await index.reads.listReferrers(name, digest, artifactType);
    } else {
      manifests = await registry.referrers.list(name, digest);
      if (artifactType) manifests = manifests.filter((d) => d.artifactType === artifactType);
    }
    if (artifactType) c.header('OCI-Filters-Applied', 'artifactType');
    manifests.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    c.header('Content-Type', MediaTypes.ociIndex);
    return c.body(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }),
      200,
    );
  };
}

function pageParams(c: Context<Env>): { limit: number; last: string | undefined } {
  const n = intQuery(c, 'n');
  return { limit: Math.min(n ?? MAX_PAGE, MAX_PAGE), last: c.req.query('last') || undefined };
}

function linkNext(c: Context<Env>, path: string, limit: number, last: string): void {
  const query = new URLSearchParams({ n: String(limit), last });
  c.header('Link', `<${path}?${query.toString()}>; rel="next"`);
}
