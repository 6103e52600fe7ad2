import { Readable } from 'node:stream';
import { assertRepositoryName, parseDigest } from '@epoch/oci';
import { BlobUnknownError, streamInto } from '@epoch/registry';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import type { Env } from '../http/env.js';
import { HttpProblem } from '../http/errors.js';
import { parseRange } from '../http/range.js';
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
    return sendStream(c, status, headers, source);
  };
}

/**
 * Sends a blob. On Node the bytes go straight from the store into the socket (`streamInto`: from
 * the file through reused buffers on the filesystem driver, piped otherwise), never through a Web
 * stream, which costs about three times as much. If the backend fails after the headers went out,
 * the connection is destroyed rather than ended, so the client sees the short transfer as an
 * error (its Content-Length is not met), never as a clean short body.
 */
function sendStream(
  c: Context<Env>,
  status: 200 | 206,
  headers: Record<string, string>,
  source: Readable,
): Response {
  const outgoing = c.env?.outgoing;
  if (!outgoing) {
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    return c.body(Readable.toWeb(source) as ReadableStream<Uint8Array>, status);
  }
  outgoing.writeHead(status, { ...headers, 'X-Request-Id': c.var.requestId });
  streamInto(source, outgoing).catch((err: unknown) => {
    if (outgoing.writableFinished) return;
    c.var.log.warn({ err }, 'blob stream aborted');
    outgoing.destroy();
  });
  // Tell the access log what was sent; the response object itself is a marker.
  c.set('sentStatus', status);
  return RESPONSE_ALREADY_SENT;
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
