import {
  compareBytes,
  type Digest,
  digestOf,
  isDigestReference,
  MediaTypes,
  type ParsedManifest,
  parseDigest,
  parseManifest,
} from '@epoch/oci';
import { ManifestDigestMismatchError, ManifestUnknownError, NameUnknownError } from '../errors.js';
import { ObjectNotFoundError, StorageError } from '../storage/errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import { Layout, parseManifestKey } from './layout.js';
import { readAll } from './streams.js';

/** A manifest as stored: its exact bytes, their digest and the media type to serve them as. */
export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  bytes: Uint8Array;
}

/** A page of a sorted listing; `next` is the `last` value for the following page, if any. */
export interface Page<T> {
  items: T[];
  next?: string;
}

export interface PageOptions {
  /** Largest page; the caller caps what clients ask for. */
  limit?: number;
  /** Exclusive start: the last item of the previous page. */
  last?: string;
  /**
   * Only items it accepts are listed; the page and its `next` are cut from those alone, so a
   * caller's filter never leaks a name through a page marker.
   */
  accept?: (item: string) => boolean;
}

export interface ManifestsOptions {
  /**
   * Largest manifest read back from storage. Larger than the PUT cap on purpose: upstream epoch
   * accepted 50 MiB manifests, and its buckets must stay readable.
   */
  maxStoredManifestBytes?: number;
}

const MEDIA_TYPE_CACHE_LIMIT = 10_000;

/**
 * Manifests by digest and by tag, in the upstream layout. A tag object is a full copy of the
 * manifest bytes (so upstream tools can read it); its digest is recomputed from those bytes.
 * This class stores only documents that `@epoch/oci` validated; checks that need the index
 * (referenced blobs present and linked) belong to the caller.
 */
export class Manifests {
  readonly #store: ObjectStore;
  readonly #maxBytes: number;
  // Content-addressed, so an entry can never go stale: digest → media type to serve.
  readonly #mediaTypes = new Map<string, string>();

  constructor(store: ObjectStore, options: ManifestsOptions = {}) {
    this.#store = store;
    this.#maxBytes = options.maxStoredManifestBytes ?? 64 << 20;
  }

  /** The manifest `reference` (a tag or a digest) of `repository`. */
  async get(repository: string, reference: string): Promise<StoredManifest> {
    const key = isDigestReference(reference)
      ? Layout.manifestByDigest(repository, reference)
      : Layout.tag(repository, reference);
    let bytes: Uint8Array;
    try {
      bytes = await readAll(await this.#store.read(key), this.#maxBytes);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new ManifestUnknownError(repository, reference);
      throw err;
    }
    const digest = isDigestReference(reference)
      ? storedDigest(bytes, reference, key)
      : digestOf(bytes, 'sha256');
    return { digest, mediaType: this.#mediaTypeOf(digest, bytes), bytes };
  }

  /**
   * Validates and stores a manifest under its digest and, when `reference` is a tag, under the
   * tag. When `reference` is a digest the bytes must hash to it. A caller that already parsed the
   * bytes (to check references first) passes `parsed` so they are not parsed twice. Returns the
   * parsed document so the caller can index it.
   */
  async put(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    contentType?: string,
    parsed: ParsedManifest = parseManifest(bytes, contentType),
  ): Promise<{ digest: Digest; parsed: ParsedManifest }> {
    let digest: Digest;
    if (isDigestReference(reference)) {
      digest = checkedDigest(bytes, reference);
    } else {
      Layout.tag(repository, reference);
      digest = digestOf(bytes, 'sha256');
    }
    await this.#store.put(Layout.manifestByDigest(repository, digest), bytes, {
      ifAbsent: true,
      contentType: parsed.mediaType,
    });
    if (!isDigestReference(reference)) await this.tag(repository, reference, bytes);
    this.#remember(digest, parsed.mediaType);
    return { digest, parsed };
  }

  /** Points `tag` at manifest bytes already stored by digest (a retag or a multi-tag push). */
  async tag(repository: string, tag: string, bytes: Uint8Array): Promise<void> {
    await this.#store.put(Layout.tag(repository, tag), bytes, { contentType: 'application/json' });
  }

  /**
   * Deletes a tag, or a manifest by digest together with every tag of `repository` that points
   * at it (tags first, so an interrupted delete can be retried and never leaves a tag whose
   * manifest is gone). `tagsOf` may supply the tags pointing at the digest from an index;
   * without it, every tag of the repository is read to find them.
   */
  async delete(
    repository: string,
    reference: string,
    tagsOf?: (digest: Digest) => Promise<string[]>,
  ): Promise<{ digest: Digest; untagged: string[] }> {
    if (!isDigestReference(reference)) {
      const { digest } = await this.get(repository, reference);
      await this.#store.delete(Layout.tag(repository, reference));
      return { digest, untagged: [reference] };
    }
    const key = Layout.manifestByDigest(repository, reference);
    if (!(await this.#store.stat(key))) throw new ManifestUnknownError(repository, reference);
    const digest = reference as Digest;
    const tags = tagsOf ? await tagsOf(digest) : await this.#tagsPointingAt(repository, digest);
    for (const tag of tags) await this.#store.delete(Layout.tag(repository, tag));
    await this.#store.delete(key);
    return { digest, untagged: tags };
  }

  /** Whether `repository` holds a manifest with this digest. */
  async has(repository: string, digest: string): Promise<boolean> {
    return (await this.#store.stat(Layout.manifestByDigest(repository, digest))) !== undefined;
  }

  /**
   * The repository's tags in lexical order, one page at a time, read from storage. Throws
   * `NameUnknownError` when the repository holds no manifest at all.
   */
  async listTags(repository: string, options: PageOptions = {}): Promise<Page<string>> {
    const tags: string[] = [];
    let hasManifests = false;
    for await (const key of this.#keys(Layout.repository(repository), '/')) {
      if (key.endsWith('/')) {
        hasManifests ||= key.endsWith('/_digests/');
        continue;
      }
      const parsed = parseManifestKey(key);
      if (parsed?.type === 'tag' && parsed.repository === repository) tags.push(parsed.tag);
    }
    if (tags.length === 0 && !hasManifests) throw new NameUnknownError(repository);
    return paginate(tags.sort(compareBytes), options);
  }

  /** Every repository that holds at least one manifest, in lexical order, one page at a time. */
  async listRepositories(options: PageOptions = {}): Promise<Page<string>> {
    const repositories = new Set<string>();
    for await (const key of this.#keys(Layout.manifestsPrefix)) {
      const parsed = parseManifestKey(key);
      if (parsed) repositories.add(parsed.repository);
    }
    return paginate([...repositories].sort(compareBytes), options);
  }

  async #tagsPointingAt(repository: string, digest: Digest): Promise<string[]> {
    const tags: string[] = [];
    let last: string | undefined;
    for (;;) {
      const page = await this.listTags(repository, last ? { last } : {});
      for (const tag of page.items) {
        const current = await this.get(repository, tag).catch(() => undefined);
        if (current?.digest === digest) tags.push(tag);
      }
      if (!page.next) return tags;
      last = page.next;
    }
  }

  async *#keys(prefix: string, delimiter?: '/'): AsyncGenerator<string> {
    let cursor: string | undefined;
    do {
      const page = await this.#store.list(prefix, {
        ...(delimiter ? { delimiter } : {}),
        ...(cursor ? { cursor } : {}),
      });
      for (const p of page.prefixes) yield p;
      for (const o of page.objects) yield o.key;
      cursor = page.cursor;
    } while (cursor);
  }

  #mediaTypeOf(digest: string, bytes: Uint8Array): string {
    const known = this.#mediaTypes.get(digest);
    if (known) return known;
    const mediaType = storedMediaType(bytes);
    this.#remember(digest, mediaType);
    return mediaType;
  }

  #remember(digest: string, mediaType: string): void {
    if (this.#mediaTypes.size >= MEDIA_TYPE_CACHE_LIMIT) this.#mediaTypes.clear();
    this.#mediaTypes.set(digest, mediaType);
  }
}

/**
 * The media type a stored manifest is served as: its own `mediaType` field, as upstream did, or
 * the OCI type its shape implies when the field is absent (allowed by the image spec).
 */
function storedMediaType(bytes: Uint8Array): string {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType;
    return Array.isArray(doc.manifests) ? MediaTypes.ociIndex : MediaTypes.ociManifest;
  } catch {
    return MediaTypes.ociManifest;
  }
}

/**
 * Stored bytes that no longer hash to the digest they are stored under are corruption on the
 * storage side, never served: an internal error, not a client's mistake.
 */
function storedDigest(bytes: Uint8Array, reference: string, key: string): Digest {
  const { algorithm } = parseDigest(reference);
  const actual = digestOf(bytes, algorithm);
  if (actual !== reference) {
    throw new StorageError(`stored manifest ${key} hashes to ${actual}, not ${reference}`);
  }
  return actual;
}

function checkedDigest(bytes: Uint8Array, reference: string): Digest {
  const { algorithm } = parseDigest(reference);
  const actual = digestOf(bytes, algorithm);
  if (actual !== reference) throw new ManifestDigestMismatchError(reference, actual);
  return actual;
}

function paginate(all: string[], { limit, last, accept }: PageOptions): Page<string> {
  const sorted = accept ? all.filter(accept) : all;
  const start = last === undefined ? 0 : sorted.findIndex((item) => compareBytes(item, last) > 0);
  const from = start < 0 ? sorted.length : start;
  const to = limit === undefined ? sorted.length : Math.min(sorted.length, from + limit);
  const items = sorted.slice(from, to);
  const lastItem = items[items.length - 1];
  return to < sorted.length && lastItem !== undefined ? { items, next: lastItem } : { items };
}
