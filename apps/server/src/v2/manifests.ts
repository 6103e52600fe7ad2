import {
  assertRepositoryName,
  assertTag,
  type Descriptor,
  isDigestReference,
  OciValidationError,
  type ParsedManifest,
  parseDigest,
  parseManifest,
} from '@epoch/oci';
import {
  ManifestUnknownError,
  RegistryError,
  referenceCount,
  referenceProblems,
} from '@epoch/registry';
import type { Context } from 'hono';
import { deleteReference } from '../deletes.js';
import { checkDeletable, checkTagsWritable, deniedOnV2 } from '../gc/protected-tags.js';
import { reviveForPush } from '../gc/revive.js';
import type { Env } from '../http/env.js';
import { HttpProblem } from '../http/errors.js';
import { readSmallBody } from '../http/request.js';
import { TurnTaking } from '../http/turns.js';
import type { V2Handler } from './handler.js';
import type { V2Services } from './services.js';

/** The most `?tag=` parameters one manifest PUT may carry. */
const MAX_TAGS_PER_PUT = 16;
/** Manifests above this size are accepted one at a time (a typical manifest is a few KiB). */
const BIG_MANIFEST_BYTES = 64 << 10;
const bigManifests = new TurnTaking();

/** GET and HEAD `/v2/<name>/manifests/<reference>`. */
export function getManifest({ registry }: V2Services): V2Handler {
  return async (c, { name = '', reference = '' }) => {
    assertRepositoryName(name);
    readableReference(name, reference);
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

/**
 * PUT `/v2/<name>/manifests/<reference>[?tag=…]`. Everything that can refuse the push is
 * decided before anything is written: the document, the number of descriptors, protected tags,
 * and every reference (from the index, confirmed in storage where the index does not know).
 * Only then does the push announce its digests to the collector and check storage again (a
 * collection may have run in between), write storage, and index it.
 */
export function putManifest(services: V2Services): V2Handler {
  const { config } = services;
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
    const contentType = c.req.header('content-type')?.split(';')[0]?.trim() || undefined;
    const accept = () =>
      acceptManifest(services, c, name, reference, extraTags, bytes, contentType);
    // A big manifest costs tens of milliseconds of CPU at several steps: take turns (TurnTaking).
    return bytes.length > BIG_MANIFEST_BYTES ? bigManifests.run(accept) : accept();
  };
}

/** The part of a manifest PUT after the body is read: validate, check, write, index. */
async function acceptManifest(
  { registry, index, config }: V2Services,
  c: Context<Env>,
  name: string,
  reference: string,
  extraTags: string[],
  bytes: Uint8Array,
  contentType: string | undefined,
): Promise<Response> {
  const parsed = parseManifest(bytes, contentType);
  const count = referenceCount(parsed);
  if (count > config.maxManifestReferences) {
    throw new RegistryError(
      'MANIFEST_INVALID',
      `the manifest names ${count} descriptors; at most ${config.maxManifestReferences} are accepted (EPOCH_MAX_MANIFEST_REFERENCES)`,
      { descriptors: count, limit: config.maxManifestReferences },
    );
  }
  const tags = isDigestReference(reference) ? extraTags : [reference, ...extraTags];
  await deniedOnV2(checkTagsWritable(index, name, tags, bytes));
  await checkReferences({ registry, index }, name, parsed);

  // From here the push writes. Announce what it needs, then confirm it is still there.
  await reviveForPush(index, name, bytes, parsed, tags);
  await checkReferences({ registry, index }, name, parsed);

  const { digest } = await registry.manifests.put(name, reference, bytes, contentType, parsed);
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
  // If the index write fails the push fails (a retry writes the same objects again) and the
  // next reconcile indexes what storage holds.
  await index.writes.recordManifest(name, {
    digest,
    mediaType: parsed.mediaType,
    bytes,
    parsed,
    tags,
  });
  c.header('Location', `/v2/${name}/manifests/${digest}`);
  c.header('Docker-Content-Digest', digest);
  return c.body(null, 201);
}

/** DELETE `/v2/<name>/manifests/<reference>`. */
export function deleteManifest({ registry, index }: V2Services): V2Handler {
  return async (c, { name = '', reference = '' }) => {
    assertRepositoryName(name);
    readableReference(name, reference);
    await deniedOnV2(checkDeletable(index, name, reference));
    const byDigest = isDigestReference(reference);
    if (!(await deleteReference(registry, index, name, reference, byDigest))) {
      throw new ManifestUnknownError(name, reference);
    }
    return c.body(null, 202);
  };
}

/** A reference a PUT may name: a well-formed tag or digest, else 400. */
function checkReference(reference: string): void {
  if (isDigestReference(reference)) parseDigest(reference);
  else assertTag(reference);
}

/**
 * A reference a read or delete names: one that cannot exist (an invalid tag or digest) is
 * simply unknown, 404 `MANIFEST_UNKNOWN`, as the distribution spec's conformance suite expects.
 */
function readableReference(name: string, reference: string): void {
  try {
    checkReference(reference);
  } catch (err) {
    if (err instanceof OciValidationError) throw new ManifestUnknownError(name, reference);
    throw err;
  }
}

/** Problems reported (and looked for) at most: the refusal of a big manifest costs little. */
const MAX_PROBLEMS = 100;

/**
 * Refuses the manifest unless everything it names is in the repository (`referenceProblems`).
 * The index answers first, with one query per 500 blobs, and storage is asked only about what
 * the index does not confirm. That is enough after the push announced its digests, too: a
 * collection deletes the index rows of what it condemns before it deletes any object, and the
 * announcement cancels deletions not yet done (`gc/revive.ts`).
 */
async function checkReferences(
  { registry, index }: Pick<V2Services, 'registry' | 'index'>,
  name: string,
  parsed: ParsedManifest,
): Promise<void> {
  const knownSizes =
    parsed.kind === 'manifest'
      ? await index.reads.linkedBlobSizes(
          name,
          [parsed.manifest.config, ...parsed.manifest.layers].map((d) => d.digest),
        )
      : undefined;
  const problems = await referenceProblems(registry, name, parsed, {
    ...(knownSizes ? { knownSizes } : {}),
    maxProblems: MAX_PROBLEMS,
  });
  if (problems.length === 0) return;
  const many = problems.length >= MAX_PROBLEMS ? 'at least ' : '';
  const missing = problems.filter((p) => p.reason === 'missing').map((p) => p.digest);
  if (missing.length > 0) {
    throw new RegistryError(
      'MANIFEST_BLOB_UNKNOWN',
      `manifest references ${many}${missing.length} blob(s) or manifest(s) not present in ${name}`,
      { digests: missing },
    );
  }
  const sizes = problems.filter((p) => p.reason === 'size');
  throw new RegistryError(
    'MANIFEST_INVALID',
    `${sizes.length} descriptor(s) declare a size other than their blob's`,
    {
      sizes: sizes
        .slice(0, 100)
        .map(({ digest, declared, actual }) => ({ digest, declared, actual })),
    },
  );
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
