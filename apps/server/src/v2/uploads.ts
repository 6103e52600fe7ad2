import { assertRepositoryName, parseDigest } from '@epoch/oci';
import type { UploadStatus } from '@epoch/registry';
import type { Context } from 'hono';
import { canPull } from '../auth/policy.js';
import type { Env } from '../http/env.js';
import { HttpProblem } from '../http/errors.js';
import { bodyStream, contentLength, hasBody } from '../http/request.js';
import type { V2Handler } from './handler.js';
import type { V2Services } from './services.js';

/** POST `/v2/<name>/blobs/uploads/`: mount, monolithic upload, or a new session. */
export function startUpload({ registry, index }: V2Services): V2Handler {
  return async (c, { name = '' }) => {
    assertRepositoryName(name);
    const mount = c.req.query('mount');
    const from = c.req.query('from');
    if (mount) {
      parseDigest(mount);
      if (from) assertRepositoryName(from);
      // Mount only from a repository the caller may pull and that really has the blob linked;
      // otherwise fall back to a normal upload, as the spec allows. A refused mount writes
      // nothing; an allowed one first tells the collector this push needs the blob.
      const mountable = from !== undefined && canPull(c.var.principal, from);
      if (mountable) await index.gc.reviveForPush(name, [mount], []); // see gc/revive.ts
      const blob = mountable ? await registry.blobs.stat(from, mount) : undefined;
      if (blob) {
        await linkBlob({ registry, index }, name, mount, blob.size);
        return blobCreated(c, name, mount);
      }
    }

    const digest = c.req.query('digest');
    if (digest !== undefined) {
      parseDigest(digest);
      await putWholeBlob({ registry, index }, c, name, digest);
      return blobCreated(c, name, digest);
    }

    const status = await registry.uploads.start(name);
    return uploadAccepted(c, status, 202);
  };
}

/** PATCH `/v2/<name>/blobs/uploads/<uuid>`: one chunk, or the whole blob streamed. */
export function patchUpload({ registry }: V2Services): V2Handler {
  return async (c, { name = '', uuid = '' }) => {
    assertRepositoryName(name);
    const range = contentRange(c);
    const status = await registry.uploads.append(
      name,
      uuid,
      bodyStream(c),
      range ? { offset: range.start } : {},
    );
    if (range && status.size !== range.end + 1) {
      throw new HttpProblem(
        400,
        'BLOB_UPLOAD_INVALID',
        'chunk length does not match Content-Range',
      );
    }
    return uploadAccepted(c, status, 202);
  };
}

/** PUT `/v2/<name>/blobs/uploads/<uuid>?digest=`: optional last chunk, verify, commit. */
export function finishUpload({ registry, index }: V2Services): V2Handler {
  return async (c, { name = '', uuid = '' }) => {
    assertRepositoryName(name);
    const digest = c.req.query('digest');
    if (!digest)
      throw new HttpProblem(400, 'DIGEST_INVALID', 'the digest query parameter is required');
    parseDigest(digest);
    await index.gc.reviveForPush(name, [digest], []); // GC: this push needs it (see gc/revive.ts)
    const range = contentRange(c);
    const result = await registry.uploads.finish(name, uuid, digest, {
      ...(hasBody(c) ? { finalChunk: bodyStream(c) } : {}),
      ...(range ? { offset: range.start } : {}),
    });
    await linkBlob({ registry, index }, name, result.digest, result.size);
    return blobCreated(c, name, result.digest);
  };
}

/** GET `/v2/<name>/blobs/uploads/<uuid>`: how much has been received. */
export function uploadStatus({ registry }: V2Services): V2Handler {
  return async (c, { name = '', uuid = '' }) => {
    assertRepositoryName(name);
    return uploadAccepted(c, await registry.uploads.status(name, uuid), 204);
  };
}

/** DELETE `/v2/<name>/blobs/uploads/<uuid>`: cancel. */
export function cancelUpload({ registry }: V2Services): V2Handler {
  return async (c, { name = '', uuid = '' }) => {
    assertRepositoryName(name);
    await registry.uploads.cancel(name, uuid);
    return c.body(null, 204);
  };
}

/** A whole blob in one request body (monolithic POST, upstream's PUT): verified, stored, linked. */
export async function putWholeBlob(
  services: Pick<V2Services, 'registry' | 'index'>,
  c: Context<Env>,
  name: string,
  digest: string,
): Promise<void> {
  await services.index.gc.reviveForPush(name, [digest], []); // GC: this push needs it
  const size = contentLength(c);
  const result = await services.registry.uploads.putBlob(
    name,
    digest,
    bodyStream(c),
    size === undefined ? {} : { size },
  );
  await linkBlob(services, name, result.digest, result.size);
}

/** A finished upload is linked to its repository in storage and in the index. */
export async function linkBlob(
  { registry, index }: Pick<V2Services, 'registry' | 'index'>,
  name: string,
  digest: string,
  size: number,
): Promise<void> {
  await registry.links.add(name, digest);
  await index.writes.linkBlob(name, digest, size);
}

function blobCreated(c: Context<Env>, name: string, digest: string): Response {
  c.header('Location', `/v2/${name}/blobs/${digest}`);
  c.header('Docker-Content-Digest', digest);
  c.header('Content-Length', '0');
  return c.body(null, 201);
}

function uploadAccepted(c: Context<Env>, status: UploadStatus, code: 202 | 204): Response {
  c.header('Location', `/v2/${status.repository}/blobs/uploads/${status.id}`);
  c.header('Docker-Upload-UUID', status.id);
  // Inclusive range of bytes received; "0-0" also stands for an empty upload, as registries do.
  c.header('Range', `0-${Math.max(0, status.size - 1)}`);
  c.header('OCI-Chunk-Min-Length', '1');
  c.header('Content-Length', '0');
  return c.body(null, code);
}

/** `Content-Range: <start>-<end>` (also `bytes <start>-<end>/<total>`); absent means "append". */
function contentRange(c: Context<Env>): { start: number; end: number } | undefined {
  const header = c.req.header('content-range');
  if (header === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d{1,16})-(\d{1,16})(?:\/(?:\d{1,16}|\*))?$/.exec(header.trim());
  const start = Number(match?.[1]);
  const end = Number(match?.[2]);
  if (!match || end < start) {
    throw new HttpProblem(
      416,
      'BLOB_UPLOAD_INVALID',
      `malformed Content-Range ${JSON.stringify(header.slice(0, 64))}`,
    );
  }
  const length = contentLength(c);
  if (length !== undefined && length !== end - start + 1) {
    throw new HttpProblem(
      416,
      'BLOB_UPLOAD_INVALID',
      'Content-Range does not match Content-Length',
    );
  }
  return { start, end };
}
