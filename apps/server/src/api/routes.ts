import {
  Annotations,
  type Descriptor,
  parseManifest,
  parseSnapshotConfig,
  type SnapshotConfig,
} from '@epoch/oci';
import { ManifestUnknownError, type Registry } from '@epoch/registry';
import { InvalidCursorError } from '@epoch/store';
import type { Context } from 'hono';
import { audit } from '../audit.js';
import { requireAccess } from '../auth/guard.js';
import { canPull } from '../auth/policy.js';
import { checkDeletable, deniedOnApi } from '../gc/protected-tags.js';
import type { Env } from '../http/env.js';
import { ApiProblem } from './errors.js';
import { gcRoutes } from './gc.js';
import type { ApiHandler, ApiServices } from './handler.js';
import { limitParam, repositoryParam, tagParam } from './params.js';
import { pushesPerDay } from './pushes.js';
import { createToken, listTokens, revokeToken } from './tokens.js';
import { getVersion } from './version.js';

/** Largest snapshot config blob read inline into a tag's detail. */
const SNAPSHOT_CONFIG_LIMIT = 1 << 20;

type Handler = ApiHandler;

/**
 * The control API (upstream epoch's paths and JSON shapes, extended). Lists keep upstream's bare
 * arrays; the next page is in a `Link` header and `X-Next-Cursor`. Repository names work plain
 * (`team/live`) and percent-encoded (`team%2Flive`): the table matches the raw path, tag routes
 * first, so `…/tags/<tag>` always means a tag.
 */
export function apiRoutes(services: ApiServices) {
  // Reads need `/api/` read rights (repository routes also pull rights on that repository);
  // every write is an admin action.
  const table: [RegExp, Partial<Record<string, Handler>>][] = [
    [/^\/api\/stats$/, { GET: stats(services) }],
    [/^\/api\/stats\/pushes$/, { GET: pushesPerDay(services) }],
    [/^\/api\/version$/, { GET: getVersion(services) }],
    [/^\/api\/events$/, { GET: events(services) }],
    [/^\/api\/catalog\/sync$/, { POST: sync(services) }],
    [/^\/api\/tokens$/, { GET: listTokens(services), POST: createToken(services) }],
    [/^\/api\/tokens\/([^/]+)$/, { DELETE: revokeToken(services) }],
    ...gcRoutes(services),
    [/^\/api\/repositories$/, { GET: listRepositories(services) }],
    [
      /^\/api\/repositories\/(.+)\/tags\/([^/]+)$/,
      { GET: getTag(services), DELETE: deleteTag(services) },
    ],
    [/^\/api\/repositories\/(.+)\/tags$/, { GET: listTags(services) }],
    [/^\/api\/repositories\/(.+)$/, { GET: getRepository(services) }],
  ];
  return async (c: Context<Env>): Promise<Response> => {
    const path = new URL(c.req.url).pathname;
    for (const [pattern, methods] of table) {
      const match = pattern.exec(path);
      if (!match) continue;
      const method = c.req.method === 'HEAD' ? 'GET' : c.req.method;
      const handler = methods[method];
      if (!handler) throw new ApiProblem(405, 'METHOD_NOT_ALLOWED', 'method not allowed');
      const admin = method !== 'GET' || path === '/api/tokens';
      requireAccess(c, { kind: 'api', level: admin ? 'admin' : 'read' });
      // A GC run or a reconcile of a big bucket answers only when done: exempt these admin
      // requests from the connection idle timeout meant for stalled clients.
      if (method === 'POST') c.env?.incoming?.socket?.setTimeout(0);
      try {
        return await handler(c, match);
      } catch (err) {
        if (err instanceof InvalidCursorError) throw new ApiProblem(400, 'BAD_CURSOR', err.message);
        throw err;
      }
    }
    throw new ApiProblem(404, 'NOT_FOUND', `no such endpoint: ${c.req.method} ${path}`);
  };
}

function stats({ index }: ApiServices): Handler {
  return async (c) => c.json(await index.stats());
}

/** Upstream's "sync catalog": here a reconcile of the index with storage, and its report. */
function sync({ reconcile }: ApiServices): Handler {
  return async (c) => c.json({ status: 'synced', ...(await reconcile()) });
}

function events({ index }: ApiServices): Handler {
  return async (c) => {
    const page = await index.listEvents(pageOptions(c));
    return list(c, page.items, page.nextCursor);
  };
}

function listRepositories({ index }: ApiServices): Handler {
  return async (c) => {
    const sort = c.req.query('sort') ?? 'name';
    if (sort !== 'name' && sort !== 'updated' && sort !== 'size' && sort !== 'tags') {
      throw new ApiProblem(400, 'BAD_SORT', 'sort must be name, updated, size or tags');
    }
    const search = c.req.query('search')?.slice(0, 255);
    const page = await index.listRepositories({
      ...pageOptions(c),
      sort,
      ...(search ? { search } : {}),
    });
    const principal = c.var.principal;
    const items = page.items.filter((r) => canPull(principal, r.name));
    return list(c, items, page.nextCursor);
  };
}

function getRepository({ index }: ApiServices): Handler {
  return async (c, match) => {
    const repository = await index.getRepository(pullable(c, repositoryParam(match[1] ?? '')));
    if (!repository) throw new ApiProblem(404, 'NAME_UNKNOWN', 'repository not found');
    return c.json(repository);
  };
}

function listTags({ index }: ApiServices): Handler {
  return async (c, match) => {
    const name = pullable(c, repositoryParam(match[1] ?? ''));
    if (!(await index.repositoryExists(name))) {
      throw new ApiProblem(404, 'NAME_UNKNOWN', 'repository not found');
    }
    const page = await index.listTags(name, pageOptions(c));
    return list(c, page.items, page.nextCursor);
  };
}

function getTag({ index, registry }: ApiServices): Handler {
  return async (c, match) => {
    const name = pullable(c, repositoryParam(match[1] ?? ''));
    const tag = tagParam(match[2] ?? '');
    const detail = await index.getTag(name, tag);
    if (!detail) throw new ApiProblem(404, 'TAG_UNKNOWN', 'tag not found');
    const { manifest: bytes, ...fields } = detail;
    const parsed = parseManifest(bytes, detail.mediaType);
    const layers = parsed.kind === 'manifest' ? parsed.manifest.layers.map(layerRow) : [];
    const children =
      parsed.kind === 'index'
        ? parsed.manifest.manifests.map((d) => ({ ...layerRow(d), platform: d.platform }))
        : [];
    const snapshotConfig =
      detail.kind === 'snapshot' && detail.configDigest
        ? await readSnapshotConfig(c, registry, detail.configDigest)
        : undefined;
    return c.json({
      ...fields,
      repoName: name,
      tag,
      manifest: JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown,
      layers,
      ...(children.length > 0 ? { children } : {}),
      ...(snapshotConfig ? { snapshotConfig } : {}),
      referrers: await index.listReferrers(name, detail.digest),
    });
  };
}

function deleteTag({ index, registry }: ApiServices): Handler {
  return async (c, match) => {
    const name = repositoryParam(match[1] ?? '');
    const tag = tagParam(match[2] ?? '');
    await deniedOnApi(checkDeletable(index, name, tag));
    try {
      await registry.manifests.delete(name, tag);
    } catch (err) {
      if (err instanceof ManifestUnknownError)
        throw new ApiProblem(404, 'TAG_UNKNOWN', 'tag not found');
      throw err;
    }
    await index.deleteTag(name, tag);
    await audit(c, index, { action: 'delete', repository: name, reference: tag });
    return c.body(null, 204);
  };
}

/** The repository name, after checking the caller may pull it (404 hides nothing it may see). */
function pullable(c: Context<Env>, name: string): string {
  requireAccess(c, { kind: 'repository', name, action: 'pull' });
  return name;
}

function layerRow(d: Descriptor) {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.annotations?.[Annotations.title] ? { title: d.annotations[Annotations.title] } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
  };
}

/** The snapshot's config blob, parsed; a failure is logged and leaves the field out. */
async function readSnapshotConfig(
  c: Context<Env>,
  registry: Registry,
  digest: string,
): Promise<SnapshotConfig | undefined> {
  try {
    const bytes = await registry.blobs.readSmall(digest, SNAPSHOT_CONFIG_LIMIT);
    return parseSnapshotConfig(bytes);
  } catch (err) {
    c.var.log?.warn({ err, digest }, 'snapshot config unreadable');
    return undefined;
  }
}

function pageOptions(c: Context<Env>): { cursor?: string; limit?: number } {
  const cursor = c.req.query('cursor');
  const limit = limitParam(c.req.query('limit'));
  return { ...(cursor ? { cursor } : {}), ...(limit ? { limit } : {}) };
}

/** A bare array (upstream's shape), with the next page in `Link` and `X-Next-Cursor`. */
function list(c: Context<Env>, items: unknown[], nextCursor: string | undefined): Response {
  if (nextCursor) {
    const url = new URL(c.req.url);
    url.searchParams.set('cursor', nextCursor);
    c.header('Link', `<${url.pathname}${url.search}>; rel="next"`);
    c.header('X-Next-Cursor', nextCursor);
  }
  return c.json(items);
}
