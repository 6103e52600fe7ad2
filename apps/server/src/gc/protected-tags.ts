import { digestOf, isDigestReference } from '@epoch/oci';
import type { Store } from '@epoch/store';
import { ApiProblem } from '../api/errors.js';
import { HttpProblem } from '../http/errors.js';

/** A tag matched a protected (immutable) pattern and the request would move or delete it. */
export class ProtectedTagError extends Error {
  override readonly name = 'ProtectedTagError';
  constructor(
    readonly repository: string,
    readonly tag: string,
    readonly pattern: string,
  ) {
    super(
      `tag ${repository}:${tag} is protected (pattern ${JSON.stringify(pattern)}) and cannot be overwritten or deleted`,
    );
  }
}

/**
 * Refuses a manifest PUT that would point an existing protected tag at other bytes. Creating a
 * protected tag, and re-pushing the very manifest it holds, are allowed.
 */
export async function checkTagsWritable(
  index: Store,
  repository: string,
  tags: readonly string[],
  bytes: Uint8Array,
): Promise<void> {
  let digest: string | undefined;
  for (const tag of tags) {
    const pattern = await index.retention.protectedTagPattern(repository, tag);
    if (!pattern) continue;
    const current = await index.reads.getTag(repository, tag);
    digest ??= digestOf(bytes);
    if (current && current.digest !== digest) throw new ProtectedTagError(repository, tag, pattern);
  }
}

/**
 * Refuses deleting a protected tag, or a manifest (by digest) that a protected tag points at
 * (deleting it would delete the tag).
 */
export async function checkDeletable(
  index: Store,
  repository: string,
  reference: string,
): Promise<void> {
  const tags = isDigestReference(reference)
    ? await index.reads.tagsOf(repository, reference)
    : [reference];
  for (const tag of tags) {
    const pattern = await index.retention.protectedTagPattern(repository, tag);
    if (pattern) throw new ProtectedTagError(repository, tag, pattern);
  }
}

/** On `/v2/`: a protected tag is the spec's `DENIED`, 403, with the tag and pattern as detail. */
export async function deniedOnV2(check: Promise<void>): Promise<void> {
  try {
    await check;
  } catch (err) {
    if (err instanceof ProtectedTagError) {
      throw new HttpProblem(403, 'DENIED', err.message, { tag: err.tag, pattern: err.pattern });
    }
    throw err;
  }
}

/** On `/api/`: 403 with code `TAG_PROTECTED`. */
export async function deniedOnApi(check: Promise<void>): Promise<void> {
  try {
    await check;
  } catch (err) {
    if (err instanceof ProtectedTagError) throw new ApiProblem(403, 'TAG_PROTECTED', err.message);
    throw err;
  }
}
