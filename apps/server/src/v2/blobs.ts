import { Readable } from 'node:stream';
import { assertRepositoryName, parseDigest } from '@epoch/oci';
import { BlobUnknownError } from '@epoch/registry';
import type { Context } from 'hono';
import type { Env } from '../http/env.js';
import { HttpProblem } from '../http/errors.js';
import { bodyStream, contentLength } from '../http/request.js';
import type { V2Handler } from './handler.js';
import type { V2Services } from './services.js';

/** How long a presigned redirect URL stays valid. */
const PRESIGN_SECONDS = 20 * 60;

/** GET and HEAD `/v2/<name>/blobs/<digest>`, with `Range` and the optional S3 redirect. */
export function getBlob({ registry, config }: V2Services): V2Handler {
  return async (c, { name = '', digest = '' }) => {
    assertRepositoryName(name);
    parseDigest(digest);
    // Repository-scoped: a blob that exists only for other repositories is unknown here.
    const stat = (await registry.links.has(name, digest))
      ? await registry.blobs.stat(digest)
      : undefined;
    if (!stat) throw new BlobUnknownError(digest);

    if (config.s3Redirect && c.req.method === 'GET') {
      const url = await registry.blobs.presign(digest, PRESIGN_SECONDS);
      if (url) {
        c.header('Location', url);
        c.header('Docker-Content-Digest', digest);
        return c.body(null, 307);
      }
    }

    const range = parseRange(c.req.header('range'), stat.size);
    c.header('Accept-Ranges', 'bytes');
    c.header('Docker-Content-Digest', digest);
    c.header('ETag', `"${digest}"`);
    c.header('Content-Type', 'application/octet-stream');
    if (range === 'unsatisfiable') {
      c.header('Content-Range', `bytes */${stat.size}`);
      throw new HttpProblem(416, 'BLOB_UNKNOWN', 'requested range not satisfiable', undefined, {
        'Content-Range': `bytes */${stat.size}`,
      });
    }
    const status = range ? 206 : 200;
    const length = range ? range.end - range.start + 1 : stat.size;
    c.header('Content-Length', String(length));
    if (range) c.header('Content-Range', `bytes ${range.start}-${range.end}/${stat.size}`);
    if (c.req.method === 'HEAD') return c.body(null, status);
    return streamBlob(c, range ? 206 : 200, () =>
      registry.blobs.read(digest, range ? { offset: range.start, length } : undefined),
    );
  };
}

/**
 * Streams the blob as the response body. If the backend fails after the headers went out,
 * @hono/node-server destroys the connection rather than ending it, so the client sees a short
 * transfer as an error (its Content-Length is not met), never as a clean short body.
 */
async function streamBlob(
  c: Context<Env>,
  status: 200 | 206,
  open: () => Promise<Readable>,
): Promise<Response> {
  const source = await open();
  return c.body(Readable.toWeb(source) as ReadableStream<Uint8Array>, status);
}

/** DELETE `/v2/<name>/blobs/<digest>`: unlinks the blob from the repository; GC reclaims bytes. */
export function deleteBlob({ registry }: V2Services): V2Handler {
  return async (c, { name = '', digest = '' }) => {
    assertRepositoryName(name);
    parseDigest(digest);
    if (!(await registry.links.has(name, digest))) throw new BlobUnknownError(digest);
    await registry.links.remove(name, digest);
    return c.body(null, 202);
  };
}

/** Upstream epoch's non-standard monolithic `PUT /v2/<name>/blobs/<digest>` (raw body, 201). */
export function putBlobDirect({ registry }: V2Services): V2Handler {
  return async (c, { name = '', digest = '' }) => {
    assertRepositoryName(name);
    parseDigest(digest);
    const size = contentLength(c);
    await registry.uploads.putBlob(name, digest, bodyStream(c), size === undefined ? {} : { size });
    await registry.links.add(name, digest);
    c.header('Location', `/v2/${name}/blobs/${digest}`);
    c.header('Docker-Content-Digest', digest);
    return c.body(null, 201);
  };
}

/**
 * Parses a single `bytes=` range (RFC 9110). No header, a malformed one or several ranges mean the
 * whole blob; a range that starts past the end is unsatisfiable.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return { start, end };
}
