import type { Access } from '../auth/policy.js';
import type { RepositoryAction } from '../auth/principal.js';
import { deleteBlob, getBlob, putBlobDirect } from './blobs.js';
import { listCatalog, listReferrers, listTags, ping } from './listing.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { dispatch, type Route } from './router.js';
import type { V2Services } from './services.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './uploads.js';

/**
 * The whole OCI Distribution API in one table. `<name>` is greedy up to the route's fixed suffix;
 * the handlers validate it (and every other part) with `@epoch/oci` before touching storage.
 */
export function v2Routes(services: V2Services) {
  const name = '(?<name>[^?#]+?)';
  const routes: Route[] = [
    { pattern: /^\/v2\/?$/, methods: { GET: ping() }, access: () => ({ kind: 'registry' }) },
    {
      pattern: /^\/v2\/_catalog$/,
      methods: { GET: listCatalog(services) },
      access: () => ({ kind: 'catalog' }),
    },
    {
      pattern: re(`^/v2/${name}/tags/list$`),
      methods: { GET: listTags(services) },
      access: repository(() => 'pull'),
    },
    {
      pattern: re(`^/v2/${name}/manifests/(?<reference>[^/]+)$`),
      methods: {
        GET: getManifest(services),
        PUT: putManifest(services),
        DELETE: deleteManifest(services),
      },
      access: repository(byMethod),
    },
    {
      pattern: re(`^/v2/${name}/blobs/uploads/?$`),
      methods: { POST: startUpload(services) },
      access: repository(() => 'push'),
    },
    {
      pattern: re(`^/v2/${name}/blobs/uploads/(?<uuid>[^/]+)$`),
      methods: {
        GET: uploadStatus(services),
        PATCH: patchUpload(services),
        PUT: finishUpload(services),
        DELETE: cancelUpload(services),
      },
      // Every step of an upload, cancelling included, is part of a push.
      access: repository(() => 'push'),
    },
    {
      pattern: re(`^/v2/${name}/blobs/(?<digest>[^/]+)$`),
      methods: {
        GET: getBlob(services),
        PUT: putBlobDirect(services),
        DELETE: deleteBlob(services),
      },
      access: repository(byMethod),
    },
    {
      pattern: re(`^/v2/${name}/referrers/(?<digest>[^/]+)$`),
      methods: { GET: listReferrers(services) },
      access: repository(() => 'pull'),
    },
  ];
  return dispatch(routes, { publicUrl: services.config.publicUrl });
}

/** Reads pull, writes push, deletes delete. */
function byMethod(method: string): RepositoryAction {
  if (method === 'DELETE') return 'delete';
  return method === 'GET' || method === 'HEAD' ? 'pull' : 'push';
}

function repository(action: (method: string) => RepositoryAction) {
  return (method: string, params: Record<string, string>): Access => ({
    kind: 'repository',
    name: params.name ?? '',
    action: action(method),
  });
}

function re(source: string): RegExp {
  return new RegExp(source.replaceAll('/', '\\/'));
}
