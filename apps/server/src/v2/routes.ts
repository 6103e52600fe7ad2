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
    { pattern: /^\/v2\/?$/, methods: { GET: ping() } },
    { pattern: /^\/v2\/_catalog$/, methods: { GET: listCatalog(services) } },
    { pattern: re(`^/v2/${name}/tags/list$`), methods: { GET: listTags(services) } },
    {
      pattern: re(`^/v2/${name}/manifests/(?<reference>[^/]+)$`),
      methods: {
        GET: getManifest(services),
        PUT: putManifest(services),
        DELETE: deleteManifest(services),
      },
    },
    {
      pattern: re(`^/v2/${name}/blobs/uploads/?$`),
      methods: { POST: startUpload(services) },
    },
    {
      pattern: re(`^/v2/${name}/blobs/uploads/(?<uuid>[^/]+)$`),
      methods: {
        GET: uploadStatus(services),
        PATCH: patchUpload(services),
        PUT: finishUpload(services),
        DELETE: cancelUpload(services),
      },
    },
    {
      pattern: re(`^/v2/${name}/blobs/(?<digest>[^/]+)$`),
      methods: {
        GET: getBlob(services),
        PUT: putBlobDirect(services),
        DELETE: deleteBlob(services),
      },
    },
    {
      pattern: re(`^/v2/${name}/referrers/(?<digest>[^/]+)$`),
      methods: { GET: listReferrers(services) },
    },
  ];
  return dispatch(routes);
}

function re(source: string): RegExp {
  return new RegExp(source.replaceAll('/', '\\/'));
}
