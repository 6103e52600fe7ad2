import type { HandlerMap } from '../routes/dispatch.js';
import { deleteBlob, getBlob, putBlobDirect } from './blobs.js';
import { listCatalog, listReferrers, listTags, ping } from './listing.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import type { V2Services } from './services.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './uploads.js';

/**
 * The handlers of the OCI Distribution API, by route (`routes/table.ts` has the paths and the
 * access each needs). The handlers validate every path part with `@epoch/oci` before touching
 * storage.
 */
export function v2Handlers(services: V2Services): HandlerMap {
  return {
    '/v2/': { GET: ping() },
    '/v2/_catalog': { GET: listCatalog(services) },
    '/v2/<name>/tags/list': { GET: listTags(services) },
    '/v2/<name>/manifests/<reference>': {
      GET: getManifest(services),
      PUT: putManifest(services),
      DELETE: deleteManifest(services),
    },
    '/v2/<name>/blobs/uploads/': { POST: startUpload(services) },
    '/v2/<name>/blobs/uploads/<uuid>': {
      GET: uploadStatus(services),
      PATCH: patchUpload(services),
      PUT: finishUpload(services),
      DELETE: cancelUpload(services),
    },
    '/v2/<name>/blobs/<digest>': {
      GET: getBlob(services),
      PUT: putBlobDirect(services),
      DELETE: deleteBlob(services),
    },
    '/v2/<name>/referrers/<digest>': { GET: listReferrers(services) },
  };
}
