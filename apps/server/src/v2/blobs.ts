import { assertRepositoryName, parseDigest } from '@epoch/oci';
import { BlobUnknownError } from '@epoch/registry';
import { HttpProblem } from '../http/errors.js';
import { parseRange } from '../http/range.js';
import { sendStream } from '../http/send.js';
import type { V2Handler } from './handler.js';
import type { V2Services } from './services.js';
import { putWholeBlob } from './uploads.js';

/** How long a presigned redirect URL stays valid. */
const PRESIGN_SECONDS = 20 * 60;

/** GET and HEAD `/v2/<name>/blobs/<digest>`, with `Range` and the optional S3 redirect. */
export function getBlob({ registry, config }: V2Services): V2Handler {
  return async (c, { name = '', digest = '' }) => {
    assertRepositoryName(name);
    parseDigest(digest);
    // Repository-scoped: a blob that exists only for other repositories is unknown here.
    const stat = await registry.blobs.stat(name, digest);
    if (!stat) throw new BlobUnknownError(digest);

    if (config.s3Redirect && c.req.method === 'GET') {
      const url = await registry.blobs.presign(name, digest, PRESIGN_SECONDS);
      if (url) {
        c.header('Location', url);
        c.header('Docker-Content-Digest', digest);
        return c.body(null, 307);
      }
    }

    const range = parseRange(c.req.header('range'), stat.size);
    const headers: Record<string, string> = {
      'Accept-Ranges': 'bytes',
      'Docker-Content-Digest': digest,
      ETag: `"${digest}"`,
      'Content-Type': 'application/octet-stream',
    };
    if (range === 'unsatisfiable') {
      throw new HttpProblem(416, 'BLOB_UNKNOWN', 'requested range not satisfiable', undefined, {
        'Content-Range': `bytes */${stat.size}`,
      });
    }
    const length = range ? range.end - range.start + 1 : stat.size;
    headers['Content-Length'] = String(length);
    if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${stat.size}`;
    const status = range ? 206 : 200;
    if (c.req.method === 'HEAD') {
      for (const [k, v] of Object.entries(headers)) c.header(k, v);
      return c.body(null, status);
    }
    const source = await registry.blobs.read(
      name,
      digest,
      range ? { offset: range.start, length } : undefined,
    );
    return sendStream(c, status, headers, source, 'blob stream aborted');
  };
}

/** DELETE `/v2/<name>/blobs/<digest>`: unlinks the blob from the repository; GC reclaims bytes. */
export function deleteBlob({ registry, index }: V2Services): V2Handler {
  return async (c, { name = '', digest = '' }) => {
    assertRepositoryName(name);
    parseDigest(digest);
    if (!(await registry.links.has(name, digest))) throw new BlobUnknownError(digest);
    await registry.links.remove(name, digest);
    await index.writes.unlinkBlob(name, digest);
    return c.body(null, 202);
  };
}

/** Upstream epoch's non-standard monolithic `PUT /v2/<name>/blobs/<digest>` (raw body, 201). */
export function putBlobDirect({ registry, index }: V2Services): V2Handler {
  return async (c, { name = '', digest = '' }) => {
    assertRepositoryName(name);
    parseDigest(digest);
    await putWholeBlob({ registry, index }, c, name, digest);
    c.header('Location', `/v2/${name}/blobs/${digest}`);
    c.header('Docker-Content-Digest', digest);
    return c.body(null, 201);
  };
}
