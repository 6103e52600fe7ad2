import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertRepositoryName,
  assertTag,
  classify,
  cloudImageParts,
  type Descriptor,
  isZstdMediaType,
  parseDigest,
  parseManifest,
  verifyingStream,
} from '@epoch/oci';
import type { Registry } from '@epoch/registry';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import { ApiProblem } from '../api/errors.js';
import { decodePart } from '../api/params.js';
import type { Env } from '../http/env.js';
import { parseRange } from '../http/range.js';

/**
 * `GET /dl/<name>[:tag|@digest]`: a cloud image's disk, its parts concatenated in title order,
 * for `curl … | cocoon image import` and for cocoon's own HTTP image pulls (plain GET, must be
 * 200). Unlike upstream it names a tag or digest (default `latest`), sends `Content-Length` and
 * `Content-Disposition`, answers `Range`, verifies each whole part against its digest while
 * sending, and aborts the connection (never ends it cleanly) if a part fails midway, so a
 * truncated image is never mistaken for a complete one.
 */
export function downloadRoute(registry: Registry) {
  return async (c: Context<Env>): Promise<Response> => {
    const raw = new URL(c.req.url).pathname.slice('/dl/'.length);
    const { name, reference } = parseTarget(decodePart(raw));
    const manifest = await registry.manifests.get(name, reference).catch(() => {
      throw new ApiProblem(404, 'MANIFEST_UNKNOWN', `${name}:${reference} not found`);
    });
    const parsed = parseManifest(manifest.bytes, manifest.mediaType);
    const kind = classify(parsed);
    if (kind !== 'cloud-image' || parsed.kind !== 'manifest') {
      throw new ApiProblem(
        415,
        'UNSUPPORTED_KIND',
        `${name}:${reference} is a ${kind}; /dl/ serves cloud images (pull snapshots with epoch pull)`,
      );
    }
    const parts = cloudImageParts(parsed.manifest);
    if (parts.length === 0)
      throw new ApiProblem(404, 'NO_DISK', 'the cloud image has no disk parts');
    if (parts.some((p) => isZstdMediaType(p.mediaType))) {
      throw new ApiProblem(415, 'UNSUPPORTED_KIND', 'compressed disk parts are not served by /dl/');
    }
    const total = parts.reduce((sum, p) => sum + p.size, 0);
    const range = parseRange(c.req.header('range'), total);
    if (range === 'unsatisfiable') {
      c.header('Content-Range', `bytes */${total}`);
      throw new ApiProblem(416, 'RANGE_INVALID', 'requested range not satisfiable');
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? total - 1;
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(end - start + 1),
      'Content-Disposition': `attachment; filename="${fileName(name, reference, parts)}"`,
      'Accept-Ranges': 'bytes',
      'Docker-Content-Digest': manifest.digest,
      ...(range ? { 'Content-Range': `bytes ${start}-${end}/${total}` } : {}),
    };
    const status = range ? 206 : 200;
    if (c.req.method === 'HEAD') {
      for (const [k, v] of Object.entries(headers)) c.header(k, v);
      return c.body(null, status);
    }
    const body = Readable.from(partStreams(registry, parts, start, end));
    const outgoing = c.env?.outgoing;
    if (!outgoing) {
      for (const [k, v] of Object.entries(headers)) c.header(k, v);
      return c.body(Readable.toWeb(body) as ReadableStream<Uint8Array>, status);
    }
    outgoing.writeHead(status, { ...headers, 'X-Request-Id': c.var.requestId });
    pipeline(body, outgoing).catch((err: unknown) => {
      if (outgoing.writableFinished) return;
      c.var.log.warn({ err, name, reference }, 'download aborted');
      outgoing.destroy();
    });
    c.set('sentStatus', status);
    return RESPONSE_ALREADY_SENT;
  };
}

/** The bytes `start..end` (inclusive) of the concatenated parts; whole parts are verified. */
async function* partStreams(
  registry: Registry,
  parts: Descriptor[],
  start: number,
  end: number,
): AsyncGenerator<Buffer> {
  let offset = 0;
  for (const part of parts) {
    const partStart = offset;
    const partEnd = offset + part.size - 1;
    offset += part.size;
    if (partEnd < start || partStart > end || part.size === 0) continue;
    const from = Math.max(start, partStart) - partStart;
    const to = Math.min(end, partEnd) - partStart;
    const whole = from === 0 && to === part.size - 1;
    const source = await registry.blobs.read(
      part.digest,
      whole ? undefined : { offset: from, length: to - from + 1 },
    );
    const checked = whole
      ? source.pipe(verifyingStream({ digest: part.digest, size: part.size }))
      : source;
    if (whole) source.on('error', (err) => checked.destroy(err));
    for await (const chunk of checked) yield chunk as Buffer;
  }
}

/** `name`, `name:tag` or `name@digest`; tags never contain `/`, so the last `:` splits a tag. */
function parseTarget(target: string): { name: string; reference: string } {
  const at = target.indexOf('@');
  let name = target;
  let reference = 'latest';
  if (at >= 0) {
    name = target.slice(0, at);
    reference = target.slice(at + 1);
  } else {
    const colon = target.lastIndexOf(':');
    if (colon > target.lastIndexOf('/')) {
      name = target.slice(0, colon);
      reference = target.slice(colon + 1);
    }
  }
  try {
    assertRepositoryName(name);
    if (at >= 0) parseDigest(reference);
    else assertTag(reference);
  } catch (err) {
    throw new ApiProblem(400, 'NAME_INVALID', (err as Error).message);
  }
  return { name, reference };
}

function fileName(name: string, reference: string, parts: Descriptor[]): string {
  const base = name.split('/').pop() ?? 'image';
  const ext = parts[0]?.mediaType.includes('raw') ? 'raw' : 'qcow2';
  const ref = reference.includes(':')
    ? reference.slice(reference.indexOf(':') + 1, reference.indexOf(':') + 13)
    : reference;
  return `${base}-${ref}.${ext}`;
}
