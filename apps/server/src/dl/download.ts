import { Readable } from 'node:stream';
import {
  assertRepositoryName,
  assertTag,
  classify,
  cloudImageParts,
  type Descriptor,
  type ImageManifest,
  isZstdMediaType,
  type ParsedManifest,
  parseDigest,
  parseManifest,
  parseSnapshotConfig,
  type SnapshotConfig,
  tarLength,
  tarStream,
} from '@epoch/oci';
import { blobProblems, type Registry } from '@epoch/registry';
import type { Context } from 'hono';
import { ApiProblem } from '../api/errors.js';
import type { Env } from '../http/env.js';
import { parseRange } from '../http/range.js';
import { sendStream } from '../http/send.js';
import type { RouteHandler } from '../routes/dispatch.js';
import { downloadTarget } from '../routes/table.js';
import { chunkedSnapshotTarEntries, snapshotTarEntries, verified } from './snapshot-tar.js';

/**
 * `GET /dl/<name>[:tag|@digest]`: a snapshot as the tar `cocoon snapshot import` reads, or a cloud
 * image's disk, its parts concatenated in title order,
 * for `curl … | cocoon image import` and for cocoon's own HTTP image pulls (plain GET, must be
 * 200). Unlike upstream it names a tag or digest (default `latest`), sends `Content-Length` and
 * `Content-Disposition`, answers `Range`, verifies each whole part against its digest while
 * sending, and aborts the connection (never ends it cleanly) if a part fails midway, so a
 * truncated image is never mistaken for a complete one.
 */
export function downloadRoute(registry: Registry): RouteHandler {
  return async (c, params) => {
    const { name, reference } = parseTarget(params.target ?? '');
    const manifest = await registry.manifests.get(name, reference).catch(() => {
      throw new ApiProblem(404, 'MANIFEST_UNKNOWN', `${name}:${reference} not found`);
    });
    const parsed = await resolveIndex(
      registry,
      name,
      parseManifest(manifest.bytes, manifest.mediaType),
    );
    const kind = classify(parsed);
    if ((kind === 'snapshot' || kind === 'chunked-snapshot') && parsed.kind === 'manifest') {
      const target = { name, reference, digest: manifest.digest };
      return sendSnapshot(c, registry, target, parsed.manifest, kind === 'chunked-snapshot');
    }
    if (kind !== 'cloud-image' || parsed.kind !== 'manifest') {
      throw new ApiProblem(
        415,
        'UNSUPPORTED_KIND',
        `${name}:${reference} is a ${kind}; /dl/ serves cloud images and snapshots (also incremental)`,
      );
    }
    const parts = cloudImageParts(parsed.manifest);
    if (parts.length === 0)
      throw new ApiProblem(404, 'NO_DISK', 'the cloud image has no disk parts');
    if (parts.some((p) => isZstdMediaType(p.mediaType))) {
      throw new ApiProblem(415, 'UNSUPPORTED_KIND', 'compressed disk parts are not served by /dl/');
    }
    await requireReadable(registry, name, reference, parts);
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
    return sendStream(
      c,
      status,
      headers,
      Readable.from(partStreams(registry, name, parts, start, end)),
      'download aborted',
    );
  };
}

/**
 * A snapshot, one blob per file or incremental (`chunked`), as the tar `cocoon snapshot import`
 * reads, named after the repository.
 */
async function sendSnapshot(
  c: Context<Env>,
  registry: Registry,
  { name, reference, digest }: { name: string; reference: string; digest: string },
  manifest: ImageManifest,
  chunked: boolean,
): Promise<Response> {
  let config: SnapshotConfig;
  try {
    config = parseSnapshotConfig(
      await registry.blobs.readSmall(name, manifest.config.digest, 1 << 20),
    );
  } catch (err) {
    c.var.log?.warn({ err, name, reference }, 'snapshot config unreadable');
    throw new ApiProblem(415, 'UNSUPPORTED_KIND', 'the snapshot config cannot be read');
  }
  await requireReadable(registry, name, reference, manifest.layers);
  const entries = chunked
    ? await chunkedSnapshotTarEntries(registry, name, manifest, config, name)
    : snapshotTarEntries(registry, name, manifest, config, name);
  const headers = {
    'Content-Type': 'application/x-tar',
    'Content-Length': String(tarLength(entries)),
    'Content-Disposition': `attachment; filename="${name.split('/').pop() ?? 'snapshot'}-${shortRef(reference)}.tar"`,
    'Docker-Content-Digest': digest,
  };
  if (c.req.method === 'HEAD') {
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    return c.body(null, 200);
  }
  return sendStream(c, 200, headers, Readable.from(tarStream(entries)), 'download aborted');
}

/**
 * Refuses the download before its first byte unless every part is a blob the repository can
 * read, with the size the manifest declares: what `Content-Length` promises must be deliverable.
 */
async function requireReadable(
  registry: Registry,
  name: string,
  reference: string,
  parts: readonly Descriptor[],
): Promise<void> {
  const problems = await blobProblems(registry, name, parts);
  if (problems.length > 0) {
    throw new ApiProblem(
      404,
      'BLOB_UNKNOWN',
      `${name}:${reference} names ${problems.length} part(s) this repository does not hold`,
    );
  }
}

/** An index stands for its linux/amd64 child (else its first child of a known platform). */
async function resolveIndex(
  registry: Registry,
  name: string,
  parsed: ParsedManifest,
): Promise<ParsedManifest> {
  if (parsed.kind !== 'index') return parsed;
  const children = parsed.manifest.manifests;
  const child =
    children.find((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64') ??
    children.find((d) => d.platform && d.platform.architecture !== 'unknown');
  if (!child) return parsed;
  const stored = await registry.manifests.get(name, child.digest);
  return parseManifest(stored.bytes, stored.mediaType);
}

function shortRef(reference: string): string {
  const colon = reference.indexOf(':');
  return colon >= 0 ? reference.slice(colon + 1, colon + 13) : reference;
}

/** The bytes `start..end` (inclusive) of the concatenated parts; whole parts are verified. */
async function* partStreams(
  registry: Registry,
  name: string,
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
      name,
      part.digest,
      whole ? undefined : { offset: from, length: to - from + 1 },
    );
    const checked = whole ? verified(source, part.digest, part.size) : source;
    for await (const chunk of checked) yield chunk as Buffer;
  }
}

/** A `/dl/` target (see `downloadTarget`), validated: 400 `NAME_INVALID` when malformed. */
function parseTarget(target: string): { name: string; reference: string } {
  const { name, reference } = downloadTarget(target);
  const at = target.indexOf('@');
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
