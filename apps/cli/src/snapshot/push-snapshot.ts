import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  Annotations,
  type Descriptor,
  type Digest,
  digestOf,
  MediaTypes,
  type SnapshotFile,
  snapshotConfig,
  snapshotLayer,
  snapshotManifest,
} from '@epoch/oci';
import type { RegistryClient } from '@epoch/registry/client';
import { extract } from 'tar-stream';
import { Progress } from '../support/progress.js';
import { maybeGunzip, readExportTar } from './export-tar.js';

/** What to push, and where. */
export interface PushSnapshotOptions {
  client: RegistryClient;
  repository: string;
  tag: string;
  baseImage?: string;
  /**
   * Awaited after the last layer and before the manifest is put: e.g. the exporter's exit
   * status, so that an export that failed never becomes a tag.
   */
  beforeManifest?: () => Promise<void>;
  /**
   * Digests of the entries, by title, when the tar could be read once already (a file): the
   * blobs the registry has are then skipped instead of sent again.
   */
  known?: ReadonlyMap<string, Digest>;
}

/** The pushed manifest. */
export interface PushedSnapshot {
  digest: Digest;
  layers: Descriptor[];
  totalSize: number;
  /** Layers the registry had already (not sent). */
  skipped: number;
}

/**
 * Pushes a `cocoon snapshot export` tar stream as the one-blob-per-file snapshot artifact (`@epoch/oci`
 * `snapshot-files.ts`):
 * one blob per regular entry in export order (the entry's bytes as exported, i.e. only the data
 * segments of sparse files), a config recording each file's mode and sparse map plus the
 * verbatim `snapshot.json`, then the manifest. Each entry streams straight into a chunked
 * upload, hashed on the way: nothing is spooled and memory stays at one chunk.
 */
export async function pushSnapshot(
  tar: Readable,
  options: PushSnapshotOptions,
): Promise<PushedSnapshot> {
  const { client, repository } = options;
  const { envelope, files: entries } = await readExportTar(tar);
  const layers: Descriptor[] = [];
  const files: Record<string, SnapshotFile> = {};
  let skipped = 0;
  for await (const entry of entries) {
    const progress = new Progress(entry.name, entry.size);
    const known = options.known?.get(entry.name);
    const pushed = await client.pushBlob(repository, entry.body, {
      size: entry.size,
      ...(known ? { digest: known } : {}),
      onProgress: (n) => progress.update(n),
    });
    progress.done();
    if (pushed.how !== 'uploaded') {
      skipped++;
      // Not read by the upload: drained so the next entry can be parsed.
      for await (const _ of entry.body) {
      }
    }
    layers.push(snapshotLayer(entry.name, pushed.digest, pushed.size));
    files[entry.name] = entry.file;
  }

  const config = snapshotConfig(envelope, files);
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = digestOf(configBytes);
  await client.pushBlob(repository, configBytes, { digest: configDigest });

  const annotations: Record<string, string> = { [Annotations.created]: config.createdAt as string };
  if (options.baseImage) annotations[Annotations.baseImage] = options.baseImage;
  const manifest = snapshotManifest(
    { digest: configDigest, size: configBytes.length },
    layers,
    annotations,
  );
  const bytes = Buffer.from(JSON.stringify(manifest));
  await options.beforeManifest?.();
  const digest = await client.putManifest(repository, options.tag, bytes, MediaTypes.ociManifest);
  return { digest, layers, totalSize: layers.reduce((sum, l) => sum + l.size, 0), skipped };
}

/**
 * First pass over a tar file: the digest of each regular entry by title, hashed as it streams
 * (nothing is kept in memory), so a push can skip what the registry already has.
 */
export async function digestEntries(tar: Readable): Promise<Map<string, Digest>> {
  const digests = new Map<string, Digest>();
  const source = await maybeGunzip(tar);
  const entries = extract();
  source.on('error', (err) => entries.destroy(err));
  source.pipe(entries);
  for await (const entry of entries) {
    const hash = createHash('sha256');
    for await (const chunk of entry) hash.update(chunk as Buffer);
    if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
      digests.set(entry.header.name.replace(/^\.\//, ''), `sha256:${hash.digest('hex')}`);
    }
  }
  return digests;
}
