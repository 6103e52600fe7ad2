import {
  assertRepositoryName,
  type Digest,
  digestOf,
  type ParsedManifest,
  parseDigest,
  parseManifest,
  type RepositoryPresence,
  referencedBlobs,
  type ScanError,
  type ScannedBlob,
  type ScannedManifest,
  type ScannedTag,
  type StorageScan,
} from '@epoch/oci';
import type { ObjectInfo, OpOptions } from '../storage/object-store.js';
import { Layout, parseManifestKey } from './layout.js';
import type { Registry } from './registry.js';
import { readAll } from './streams.js';

/** A blob of a {@link RegistryScan}: `adoptReferencedBlobs` marks the ones it links. */
export type ScannedBlobEntry = { -readonly [K in keyof ScannedBlob]: ScannedBlob[K] };

/** A {@link StorageScan} as {@link readStorageScan} builds it, its maps still open to updates. */
export interface RegistryScan extends StorageScan {
  readonly repositories: {
    readonly name: string;
    readonly manifests: Map<string, ScannedManifest>;
    readonly tags: Map<string, ScannedTag>;
    readonly blobs: Map<string, ScannedBlobEntry>;
  }[];
  readonly errors: ScanError[];
  readonly recheck: (repository: string) => Promise<RepositoryPresence>;
}

/** Options of {@link readStorageScan}. */
export interface ScanOptions {
  signal?: AbortSignal;
  /** Object reads in flight at once (default 16). */
  concurrency?: number;
  /** Largest manifest read (default 64 MiB, like `Manifests`: upstream accepted 50 MiB). */
  maxManifestBytes?: number;
}

/** Everything the listing found for one repository, before any object is read. */
interface RepositoryKeys {
  digests: Map<string, ObjectInfo>;
  tags: Map<string, ObjectInfo>;
  links: Map<string, ObjectInfo>;
}

const LINK_KEY = /^manifests\/(.+)\/_layers\/([a-z0-9]+)-([a-zA-Z0-9=_-]+)$/;

/**
 * Reads the registry's whole state from storage: one listing of `manifests/`, then every
 * manifest and tag object (at most `concurrency` reads at once), and a stat for linked blobs
 * no manifest describes. Reads an upstream epoch bucket as it is: with no `_layers` markers the
 * repository's blobs are those its manifests reference, and a tag whose `_digests` copy is
 * missing contributes its own bytes as the manifest. Unreadable, unparseable or mis-hashed
 * objects are reported in `errors` and left out, never fatal to the run.
 */
export async function readStorageScan(
  registry: Registry,
  options: ScanOptions = {},
): Promise<RegistryScan> {
  const startedAt = new Date();
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const maxBytes = options.maxManifestBytes ?? 64 << 20;
  const op: OpOptions = options.signal ? { signal: options.signal } : {};
  const errors: ScanError[] = [];
  const repos = await listRepositoryKeys(registry, op);

  const read = async (key: string): Promise<Uint8Array> =>
    readAll(await registry.store.read(key, undefined, op), maxBytes);

  const repositories: RegistryScan['repositories'] = [];
  for (const [name, keys] of [...repos].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    options.signal?.throwIfAborted();
    const repo = {
      name,
      manifests: new Map<string, ScannedManifest>(),
      tags: new Map<string, ScannedTag>(),
      blobs: new Map<string, ScannedBlobEntry>(),
    };
    await forEachLimit([...keys.digests], concurrency, async ([digest, info]) => {
      const bytes = await read(info.key).catch((err: unknown) => fail(info.key, err));
      if (bytes === undefined) return;
      const actual = digestOf(bytes, parseDigest(digest).algorithm);
      if (actual !== digest) {
        errors.push({ repository: name, key: info.key, message: `hashes to ${actual}` });
        return;
      }
      const parsed = parse(bytes, info.key);
      if (parsed) repo.manifests.set(digest, manifest(actual, bytes, parsed, info));
    });
    await forEachLimit([...keys.tags], concurrency, async ([tag, info]) => {
      const bytes = await read(info.key).catch((err: unknown) => fail(info.key, err));
      if (bytes === undefined) return;
      const digest = digestOf(bytes, 'sha256');
      if (!repo.manifests.has(digest)) {
        // An upstream bucket may hold a tag without its `_digests` copy: the tag's bytes are
        // the manifest. A `_digests` copy that failed to parse fails here the same way.
        const parsed = parse(bytes, info.key);
        if (!parsed) return;
        repo.manifests.set(digest, manifest(digest, bytes, parsed, info));
      }
      repo.tags.set(tag, { digest, pushedAt: info.lastModified });
    });
    for (const m of repo.manifests.values()) {
      if (m.parsed.kind !== 'manifest') continue;
      for (const d of referencedBlobs(m.parsed.manifest)) {
        const foreign = (d.urls?.length ?? 0) > 0;
        const known = repo.blobs.get(d.digest);
        if (!known) {
          repo.blobs.set(d.digest, {
            size: d.size,
            mediaType: d.mediaType,
            linked: false,
            ...(foreign ? { foreign } : {}),
          });
        } else if (foreign) {
          known.foreign = true;
        }
      }
    }
    await forEachLimit([...keys.links], concurrency, async ([digest, info]) => {
      const known = repo.blobs.get(digest);
      if (known) {
        known.linked = true;
        known.linkedAt = info.lastModified;
        return;
      }
      // Linked but named by no manifest (an upload not yet referenced, a mount): only the
      // blob itself knows its size. A marker whose blob is gone would serve nothing; skip it.
      const size = await registry.blobs
        .storedSize(digest)
        .catch((err: unknown) => fail(info.key, err));
      if (size === undefined) {
        errors.push({ repository: name, key: info.key, message: `linked blob ${digest} missing` });
        return;
      }
      repo.blobs.set(digest, { size, linked: true, linkedAt: info.lastModified });
    });
    repositories.push(repo);
  }
  const recheck = async (repository: string): Promise<RepositoryPresence> => {
    const prefix = `${Layout.manifestsPrefix}${repository}/`;
    // The prefix also lists repositories nested under this one's name: keep this one's keys.
    const keys = (await listRepositoryKeys(registry, op, prefix)).get(repository);
    return { manifests: new Set(keys?.digests.keys()), tags: new Set(keys?.tags.keys()) };
  };
  return { startedAt, repositories, errors, recheck };

  function fail(key: string, err: unknown): undefined {
    options.signal?.throwIfAborted();
    errors.push({ key, message: err instanceof Error ? err.message : String(err) });
    return undefined;
  }

  function parse(bytes: Uint8Array, key: string): ParsedManifest | undefined {
    try {
      return parseManifest(bytes);
    } catch (err) {
      errors.push({ key, message: err instanceof Error ? err.message : String(err) });
      return undefined;
    }
  }
}

function manifest(
  digest: Digest,
  bytes: Uint8Array,
  parsed: ParsedManifest,
  info: ObjectInfo,
): ScannedManifest {
  return { digest, bytes, parsed, pushedAt: info.lastModified };
}

/** One listing of `manifests/` (or a part of it), grouped by repository. Keys Epoch did not write are ignored. */
async function listRepositoryKeys(
  registry: Registry,
  op: OpOptions,
  prefix: string = Layout.manifestsPrefix,
): Promise<Map<string, RepositoryKeys>> {
  const repos = new Map<string, RepositoryKeys>();
  const repoKeys = (name: string): RepositoryKeys => {
    let keys = repos.get(name);
    if (!keys) {
      keys = { digests: new Map(), tags: new Map(), links: new Map() };
      repos.set(name, keys);
    }
    return keys;
  };
  let cursor: string | undefined;
  do {
    const page = await registry.store.list(prefix, { ...op, ...(cursor ? { cursor } : {}) });
    for (const info of page.objects) {
      const entry = parseManifestKey(info.key);
      if (entry?.type === 'digest') repoKeys(entry.repository).digests.set(entry.digest, info);
      else if (entry?.type === 'tag') repoKeys(entry.repository).tags.set(entry.tag, info);
      else {
        const link = parseLinkKey(info.key);
        if (link) repoKeys(link.repository).links.set(link.digest, info);
      }
    }
    cursor = page.cursor;
  } while (cursor);
  return repos;
}

function parseLinkKey(key: string): { repository: string; digest: Digest } | undefined {
  const match = LINK_KEY.exec(key);
  if (!match?.[1]) return undefined;
  try {
    assertRepositoryName(match[1]);
    const { algorithm, hex } = parseDigest(`${match[2]}:${match[3]}`);
    return { repository: match[1], digest: `${algorithm}:${hex}` };
  } catch {
    return undefined;
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
