import type { Descriptor, ParsedManifest } from '@epoch/oci';
import { mapLimited } from '../storage/retry.js';
import type { Registry } from './registry.js';

/** Why a manifest may not name a descriptor. */
export interface ReferenceProblem {
  digest: string;
  /** `missing`: not readable by the repository; `size`: the descriptor's size is not the blob's. */
  reason: 'missing' | 'size';
  /** The size the descriptor declares, for `size`. */
  declared?: number;
  /** The size stored, for `size`. */
  actual?: number;
}

export interface ReferenceCheckOptions {
  /**
   * Sizes already known to be right for some blobs linked to the repository (the index's
   * answer): those are not looked up in storage again. A size that disagrees with a descriptor
   * is looked up rather than trusted, so a stale hint can cost a lookup but never a refusal.
   */
  knownSizes?: ReadonlyMap<string, number>;
  /** Storage lookups in flight at once (default 16): a big manifest never floods the store. */
  concurrency?: number;
  /**
   * Stop looking once this many problems are found (default: find them all): a manifest naming
   * thousands of missing blobs is refused after a bounded amount of work.
   */
  maxProblems?: number;
}

/**
 * What is wrong with the references of a manifest about to be stored in `repository`, in digest
 * order; empty when it may be stored.
 *
 * A manifest may name only what its repository can read: every blob descriptor (config and
 * layers, with or without `urls`) must be a blob linked to the repository with exactly the
 * declared size, and every child of an index a manifest stored in the repository. A foreign
 * layer is no exception: a descriptor's `urls` prove no right to the bytes of its digest, and
 * Epoch would otherwise serve them through downloads and detail pages. A `subject` may name a
 * manifest that does not exist (the referrers API allows pushing a referrer first); it is only
 * ever listed within the same repository, never read.
 */
export async function referenceProblems(
  registry: Registry,
  repository: string,
  parsed: ParsedManifest,
  options: ReferenceCheckOptions = {},
): Promise<ReferenceProblem[]> {
  if (parsed.kind === 'manifest') {
    const { config, layers } = parsed.manifest;
    return blobProblems(registry, repository, [config, ...layers], options);
  }
  const problems: ReferenceProblem[] = [];
  const enough = options.maxProblems ?? Number.POSITIVE_INFINITY;
  const children = [...new Set(parsed.manifest.manifests.map((d) => d.digest))];
  await mapLimited(children, options.concurrency ?? 16, async (digest) => {
    if (problems.length >= enough) return;
    if (!(await registry.manifests.has(repository, digest))) {
      problems.push({ digest, reason: 'missing' });
    }
  });
  return problems.sort(byDigest);
}

/**
 * Which of `descriptors` name a blob `repository` cannot read (not linked there, or gone), or
 * declare another size than the blob's: what a manifest PUT refuses, and what a download checks
 * before it sends the first byte.
 */
export async function blobProblems(
  registry: Registry,
  repository: string,
  descriptors: readonly Descriptor[],
  options: ReferenceCheckOptions = {},
): Promise<ReferenceProblem[]> {
  const declared = new Map<string, Descriptor[]>();
  for (const d of descriptors) {
    const list = declared.get(d.digest);
    if (list) list.push(d);
    else declared.set(d.digest, [d]);
  }
  const problems: ReferenceProblem[] = [];
  const enough = options.maxProblems ?? Number.POSITIVE_INFINITY;
  await mapLimited([...declared], options.concurrency ?? 16, async ([digest, named]) => {
    if (problems.length >= enough) return;
    const hint = options.knownSizes?.get(digest);
    if (hint !== undefined && named.every((d) => d.size === hint)) return;
    const stat = await registry.blobs.stat(repository, digest);
    if (!stat) {
      problems.push({ digest, reason: 'missing' });
      return;
    }
    const wrong = named.find((d) => d.size !== stat.size);
    if (wrong) problems.push({ digest, reason: 'size', declared: wrong.size, actual: stat.size });
  });
  return problems.sort(byDigest);
}

/** How many descriptors a manifest names: config and layers, or children, and its subject. */
export function referenceCount(parsed: ParsedManifest): number {
  const subject = parsed.manifest.subject ? 1 : 0;
  return parsed.kind === 'index'
    ? parsed.manifest.manifests.length + subject
    : 1 + parsed.manifest.layers.length + subject;
}

function byDigest(a: ReferenceProblem, b: ReferenceProblem): number {
  return a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
}
