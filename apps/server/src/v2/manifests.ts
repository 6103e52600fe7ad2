import {
  assertRepositoryName,
  assertTag,
  type Descriptor,
  isDigestReference,
  type ParsedManifest,
  parseDigest,
  parseManifest,
} from '@epoch/oci';
import { RegistryError } from '@epoch/registry';
import { checkDeletable, checkTagsWritable, deniedOnV2 } from '../gc/protected-tags.js';
import { reviveForPush } from '../gc/revive.js';
import { HttpProblem } from '../http/errors.js';
import { readSmallBody } from '../http/request.js';
import type { V2Handler } from './handler.js';
import type { V2Services } from './services.js';

/** The most `?tag=` parameters one manifest PUT may carry. */
const MAX_TAGS_PER_PUT = 16;

/** GET and HEAD `/v2/<name>/manifests/<reference>`. */
export function getManifest({ registry }: V2Services): V2Handler {
  return async (c, { name = '', reference = '' }) => {
    assertRepositoryName(name);
    checkReference(reference);
    const manifest = await registry.manifests.get(name, reference);
    if (!acceptable(c.req.header('accept'), manifest.mediaType)) {
      throw new RegistryError(
        'MANIFEST_UNKNOWN',
        `manifest ${name}:${reference} is ${manifest.mediaType}, which the request does not accept`,
      );
    }
    c.header('Content-Type', manifest.mediaType);
    c.header('Docker-Content-Digest', manifest.digest);
    c.header('ETag', `"${manifest.digest}"`);
    c.header('Content-Length', String(manifest.bytes.length));
    if (c.req.method === 'HEAD') return c.body(null, 200);
    return c.body(manifest.bytes as Uint8Array<ArrayBuffer>, 200);
  };
}

/** PUT `/v2/<name>/manifests/<reference>[?tag=…]`. */
export function putManifest({ registry, index, config }: V2Services): V2Handler {
  return async (c, { name = '', reference = '' }) => {
    assertRepositoryName(name);
    checkReference(reference);
    const extraTags = c.req.queries('tag') ?? [];
    if (extraTags.length > MAX_TAGS_PER_PUT) {
      throw new HttpProblem(
        400,
        'TAG_INVALID',
        `at most ${MAX_TAGS_PER_PUT} tag parameters per request`,
      );
    }
    for (const tag of extraTags) assertTag(tag);
    const bytes = await readSmallBody(c, config.maxManifestBytes, 'manifest');
    const contentType = c.req.header('content-type')?.split(';')[0]?.trim();

    // Validate everything (document, references) before anything is written.
    const parsed = parseManifest(bytes, contentType || undefined);
    const tags = isDigestReference(reference) ? extraTags : [reference, ...extraTags];
    await deniedOnV2(checkTagsWritable(index, name, tags, bytes));
    await reviveForPush(index, name, bytes, parsed, tags);
    await checkReferencesPresent(registry, name, parsed);

    const { digest } = await registry.manifests.put(
      name,
      reference,
      bytes,
      contentType || undefined,
      parsed,
    );
    for (const tag of extraTags) await registry.manifests.tag(name, tag, bytes);
    const subject = parsed.manifest.subject;
    if (subject) {
      await registry.referrers.add(
        name,
        subject.digest,
        referrerDescriptor(parsed, digest, bytes.length),
      );
      c.header('OCI-Subject', subject.digest);
    }
    // Storage first (the truth), then the index, before the response: a push is listed at once.
    await index.recordManifest(name, {
      digest,
      mediaType: parsed.mediaType,
      bytes,
      parsed,
      tags,
    });
    c.header('Location', `/v2/${name}/manifests/${digest}`);
    c.header('Docker-Content-Digest', digest);
    return c.body(null, 201);
  };
}

/** DELETE `/v2/<name>/manifests/<reference>`. */
export function deleteManifest({ registry, index }: V2Services): V2Handler {
  return async (c, { name = '', reference = '' }) => {
    assertRepositoryName(name);
    checkReference(reference);
    await deniedOnV2(checkDeletable(index, name, reference));
    if (isDigestReference(reference)) {
      // Drop the referrer entry first, so a retry after a failure still finds the manifest.
      const { bytes } = await registry.manifests.get(name, reference);
      const subject = subjectOf(bytes);
      if (subject) await registry.referrers.remove(name, subject, reference);
    }
    const { digest } = await registry.manifests.delete(name, reference);
    if (isDigestReference(reference)) await index.deleteManifest(name, digest);
    else await index.deleteTag(name, reference);
    return c.body(null, 202);
  };
}

function checkReference(reference: string): void {
  if (isDigestReference(reference)) parseDigest(reference);
  else assertTag(reference);
}

/**
 * Accept negotiation: no header, a wildcard, or the stored type itself is acceptable. A client that
 * lists only other types gets 404, as the spec asks, instead of bytes it cannot parse.
 */
function acceptable(accept: string | undefined, mediaType: string): boolean {
  if (!accept || accept.trim() === '') return true;
  const [type] = mediaType.split('/');
  return accept.split(',').some((part) => {
    const range = part.split(';')[0]?.trim().toLowerCase();
    return range === '*/*' || range === `${type}/*` || range === mediaType.toLowerCase();
  });
}

/** Every blob (config, layers) or child manifest the new manifest names must be in this repository. */
async function checkReferencesPresent(
  registry: V2Services['registry'],
  name: string,
  parsed: ParsedManifest,
): Promise<void> {
  const missing: string[] = [];
  if (parsed.kind === 'index') {
    await Promise.all(
      parsed.manifest.manifests.map(async (child) => {
        if (!(await registry.manifests.has(name, child.digest))) missing.push(child.digest);
      }),
    );
  } else {
    const blobs = [parsed.manifest.config, ...parsed.manifest.layers].filter(
      (d) => !(d.urls && d.urls.length > 0),
    );
    await Promise.all(
      blobs.map(async (blob) => {
        const linked = await registry.links.has(name, blob.digest);
        if (!linked || !(await registry.blobs.stat(blob.digest))) missing.push(blob.digest);
      }),
    );
  }
  if (missing.length > 0) {
    throw new RegistryError(
      'MANIFEST_BLOB_UNKNOWN',
      `manifest references ${missing.length} blob(s) not present in ${name}`,
      { digests: missing.sort() },
    );
  }
}

function referrerDescriptor(parsed: ParsedManifest, digest: string, size: number): Descriptor {
  const m = parsed.manifest;
  const artifactType =
    m.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config.mediaType : undefined);
  return {
    mediaType: parsed.mediaType,
    digest: digest as Descriptor['digest'],
    size,
    ...(artifactType ? { artifactType } : {}),
    ...(m.annotations ? { annotations: m.annotations } : {}),
  };
}

function subjectOf(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as {
      subject?: { digest?: unknown };
    };
    return typeof doc.subject?.digest === 'string' ? doc.subject.digest : undefined;
  } catch {
    return undefined;
  }
}
