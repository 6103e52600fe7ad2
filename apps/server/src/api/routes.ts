import {
  Annotations,
  type Descriptor,
  type IncrementalStats,
  type ParsedManifest,
  parseManifest,
  parseSnapshotConfig,
  type SnapshotConfig,
} from '@epoch/oci';
import type { Registry } from '@epoch/registry';
import type { TagDetail } from '@epoch/store';
import type { Context } from 'hono';
import { audit } from '../audit.js';
import { canPull, visibleEvents, visibleRepositories } from '../auth/policy.js';
import { deleteReference } from '../deletes.js';
import { checkDeletable, deniedOnApi } from '../gc/protected-tags.js';
import type { Env } from '../http/env.js';
import type { HandlerMap } from '../routes/dispatch.js';
import { ApiProblem } from './errors.js';
import { gcHandlers } from './gc.js';
import { type ApiHandler, type ApiServices, untilDone } from './handler.js';
import { incrementalStats } from './incremental-stats.js';
import { limitParam, repositoryParam, tagParam } from './params.js';
import { pushesPerDay } from './pushes.js';
import { repositorySettingsHandlers } from './repository-settings.js';
import { createToken, listTokens, revokeToken } from './tokens.js';
import { getVersion } from './version.js';

/** Largest snapshot config blob read inline into a tag's detail. */
const SNAPSHOT_CONFIG_LIMIT = 1 << 20;

type Handler = ApiHandler;

/**
 * The handlers of the control API (upstream epoch's paths and JSON shapes, extended), by route
 * (`routes/table.ts` has the paths and the access each needs). Lists keep upstream's bare
 * arrays; the next page is in a `Link` header and `X-Next-Cursor`.
 */
export function apiHandlers(services: ApiServices): HandlerMap {
  return {
    '/api/stats': { GET: stats(services) },
    '/api/stats/pushes': { GET: pushesPerDay(services) },
    '/api/version': { GET: getVersion(services) },
    '/api/events': { GET: events(services) },
    '/api/catalog/sync': { POST: sync(services) },
    '/api/tokens': { GET: listTokens(services), POST: createToken(services) },
    '/api/tokens/<id>': { DELETE: revokeToken(services) },
    ...gcHandlers(services),
    '/api/repositories': { GET: listRepositories(services) },
    '/api/repositories/<name>/tags/<tag>': { GET: getTag(services), DELETE: deleteTag(services) },
    '/api/repositories/<name>/tags': { GET: listTags(services) },
    '/api/repositories/<name>': { GET: getRepository(services) },
    ...repositorySettingsHandlers(services),
  };
}

function stats({ index }: ApiServices): Handler {
  return async (c) => c.json(await index.reads.stats(visibleRepositories(c.var.principal)));
}

/** Upstream's "sync catalog": here a reconcile of the index with storage, and its report. */
function sync({ reconcile }: ApiServices): Handler {
  return async (c) => {
    untilDone(c);
    return c.json({ status: 'synced', ...(await reconcile()) });
  };
}

function events({ index }: ApiServices): Handler {
  return async (c) => {
    const principal = c.var.principal;
    const filter = visibleEvents(principal);
    const page = await index.audit.list({ ...pageOptions(c), ...(filter ? { filter } : {}) });
    // A mount names its source: keep it only when the caller may see that repository too.
    const items = page.items.map((e) => {
      const from = e.detail?.from;
      if (typeof from !== 'string' || canPull(principal, from)) return e;
      const { from: _hidden, ...detail } = e.detail ?? {};
      return { ...e, detail };
    });
    return list(c, items, page.nextCursor);
  };
}

function listRepositories({ index }: ApiServices): Handler {
  return async (c) => {
    const sort = c.req.query('sort') ?? 'name';
    if (sort !== 'name' && sort !== 'updated' && sort !== 'size' && sort !== 'tags') {
      throw new ApiProblem(400, 'BAD_SORT', 'sort must be name, updated, size or tags');
    }
    const search = c.req.query('search')?.slice(0, 255);
    const filter = visibleRepositories(c.var.principal);
    const page = await index.reads.listRepositories({
      ...pageOptions(c),
      sort,
      ...(search ? { search } : {}),
      ...(filter ? { filter } : {}),
    });
    return list(c, page.items, page.nextCursor);
  };
}

function getRepository({ index }: ApiServices): Handler {
  return async (c, params) => {
    const repository = await index.reads.getRepository(repositoryParam(params.name));
    if (!repository) throw new ApiProblem(404, 'NAME_UNKNOWN', 'repository not found');
    return c.json(repository);
  };
}

function listTags({ index }: ApiServices): Handler {
  return async (c, params) => {
    const name = repositoryParam(params.name);
    if (!(await index.reads.repositoryExists(name))) {
      throw new ApiProblem(404, 'NAME_UNKNOWN', 'repository not found');
    }
    const page = await index.reads.listTags(name, pageOptions(c));
    return list(c, page.items, page.nextCursor);
  };
}

function getTag(services: ApiServices): Handler {
  const { index } = services;
  return async (c, params) => {
    const name = repositoryParam(params.name);
    const tag = tagParam(params.tag);
    const detail = await index.reads.getTag(name, tag);
    if (!detail) throw new ApiProblem(404, 'TAG_UNKNOWN', 'tag not found');
    const { manifest: bytes, ...fields } = detail;
    const parsed = parseManifest(bytes, detail.mediaType);
    const layers = parsed.kind === 'manifest' ? parsed.manifest.layers.map(layerRow) : [];
    const children =
      parsed.kind === 'index'
        ? parsed.manifest.manifests.map((d) => ({ ...layerRow(d), platform: d.platform }))
        : [];
    const { snapshotConfig, incremental } = await snapshotFacts(c, services, name, detail, parsed);
    return c.json({
      ...fields,
      repoName: name,
      tag,
      manifest: JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown,
      layers,
      ...(children.length > 0 ? { children } : {}),
      ...(snapshotConfig ? { snapshotConfig } : {}),
      ...(incremental ? { incremental } : {}),
      referrers: await index.reads.listReferrers(name, detail.digest),
    });
  };
}

/** A snapshot's config, and an incremental one's storage against the version before. */
async function snapshotFacts(
  c: Context<Env>,
  { index, registry }: ApiServices,
  name: string,
  detail: TagDetail,
  parsed: ParsedManifest,
): Promise<{ snapshotConfig?: SnapshotConfig; incremental?: IncrementalStats }> {
  if (detail.kind !== 'snapshot' && detail.kind !== 'chunked-snapshot') return {};
  const snapshotConfig = detail.configDigest
    ? await readSnapshotConfig(c, registry, name, detail.configDigest)
    : undefined;
  if (detail.kind !== 'chunked-snapshot' || parsed.kind !== 'manifest') {
    return snapshotConfig ? { snapshotConfig } : {};
  }
  const tag = { name: detail.name, pushedAt: detail.pushedAt };
  const incremental = await incrementalStats(
    index,
    registry,
    name,
    tag,
    parsed.manifest,
    snapshotConfig,
  );
  return { ...(snapshotConfig ? { snapshotConfig } : {}), incremental };
}

function deleteTag({ index, registry }: ApiServices): Handler {
  return async (c, params) => {
    const name = repositoryParam(params.name);
    const tag = tagParam(params.tag);
    await deniedOnApi(checkDeletable(index, name, tag));
    if (!(await deleteReference(registry, index, name, tag, false))) {
      throw new ApiProblem(404, 'TAG_UNKNOWN', 'tag not found');
    }
    await audit(c, index, { action: 'delete', repository: name, reference: tag });
    return c.body(null, 204);
  };
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
  name: string,
  digest: string,
): Promise<SnapshotConfig | undefined> {
  try {
    const bytes = await registry.blobs.readSmall(name, digest, SNAPSHOT_CONFIG_LIMIT);
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
