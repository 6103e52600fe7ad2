import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { createGunzip } from 'node:zlib';
import {
  Annotations,
  CocoonMediaTypes,
  type Descriptor,
  type Digest,
  digestOf,
  ENVELOPE_CONFIG_FIELD,
  ENVELOPE_FIELDS,
  MediaTypes,
  mediaTypeForCocoonFile,
  type SnapshotFile,
} from '@epoch/oci';
import type { RegistryClient } from '@epoch/registry/client';
import { extract } from 'tar-stream';
import { CliError } from '../support/errors.js';
import { Progress } from '../support/progress.js';

const SPARSE_MAP = 'COCOON.sparse.map';
const SPARSE_SIZE = 'COCOON.sparse.size';
const ENVELOPE_LIMIT = 4 * 1024 * 1024;

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
 * Pushes a `cocoon snapshot export` tar stream as upstream's snapshot artifact (reference §3.1):
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
  const source = await maybeGunzip(tar);
  const entries = extract();
  source.on('error', (err) => entries.destroy(err));
  source.pipe(entries);

  let envelopeText: string | undefined;
  let envelope: Record<string, unknown> = {};
  const layers: Descriptor[] = [];
  const files: Record<string, SnapshotFile> = {};
  let skipped = 0;
  for await (const entry of entries) {
    const { header } = entry;
    const title = header.name.replace(/^\.\//, '');
    if (envelopeText === undefined) {
      if (title !== 'snapshot.json') {
        throw new CliError(
          `not a cocoon snapshot export: the first entry is ${title}, not snapshot.json`,
        );
      }
      const bytes = await buffer(entry);
      if (bytes.length > ENVELOPE_LIMIT) throw new CliError('snapshot.json is too large');
      envelopeText = bytes.toString('utf8');
      const doc = JSON.parse(envelopeText) as {
        config?: Record<string, unknown>;
        version?: number;
      };
      if (doc.version !== 1)
        throw new CliError(`snapshot.json: version ${String(doc.version)}, expected 1`);
      envelope = doc.config ?? {};
      continue;
    }
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      entry.resume();
      continue;
    }
    if (title.includes('/') || title === 'snapshot.json' || title === '') {
      throw new CliError(`unexpected entry ${header.name} in the snapshot export`);
    }
    const progress = new Progress(title, header.size);
    const known = options.known?.get(title);
    const pushed = await client.pushBlob(repository, entry as unknown as Readable, {
      size: header.size,
      ...(known ? { digest: known } : {}),
      onProgress: (n) => progress.update(n),
    });
    progress.done();
    if (pushed.how !== 'uploaded') {
      skipped++;
      // Not read by the upload: drained so the next entry can be parsed.
      for await (const _ of entry) {
      }
    }
    layers.push({
      mediaType: mediaTypeForCocoonFile(title),
      digest: pushed.digest,
      size: pushed.size,
      annotations: { [Annotations.title]: title },
    });
    const file: SnapshotFile = { mode: header.mode ?? 0o640 };
    const pax = (header.pax ?? {}) as Record<string, string>;
    if (pax[SPARSE_MAP] !== undefined) {
      if (pax[SPARSE_SIZE] === undefined) throw new CliError(`${title}: sparse map without a size`);
      file.sparseMap = pax[SPARSE_MAP];
      file.sparseSize = Number(pax[SPARSE_SIZE]);
    }
    files[title] = file;
  }
  if (envelopeText === undefined) throw new CliError('the snapshot export is empty');

  const config: Record<string, unknown> = { schemaVersion: 'v1' };
  for (const [key, field] of ENVELOPE_FIELDS) {
    if (envelope[key] !== undefined) config[field] = envelope[key];
  }
  config.files = files;
  config.createdAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  config[ENVELOPE_CONFIG_FIELD] = envelopeText;
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = digestOf(configBytes);
  await client.pushBlob(repository, configBytes, { digest: configDigest });

  const annotations: Record<string, string> = { [Annotations.created]: config.createdAt as string };
  if (options.baseImage) annotations[Annotations.baseImage] = options.baseImage;
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: CocoonMediaTypes.snapshotArtifact,
    config: {
      mediaType: CocoonMediaTypes.snapshotConfig,
      digest: configDigest,
      size: configBytes.length,
    },
    layers,
    annotations,
  };
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

/** cocoon exports may be gzipped (`--gzip`); the magic bytes tell. */
async function maybeGunzip(tar: Readable): Promise<Readable> {
  const first: Buffer | null = await new Promise((resolve, reject) => {
    const onReadable = () => {
      const chunk = tar.read() as Buffer | null;
      if (chunk === null && !tar.readableEnded) return;
      cleanup();
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      tar.off('readable', onReadable);
      tar.off('end', onEnd);
      tar.off('error', onError);
    };
    tar.on('readable', onReadable);
    tar.on('end', onEnd);
    tar.on('error', onError);
  });
  if (first === null) throw new CliError('the snapshot export is empty');
  tar.unshift(first);
  if (first[0] === 0x1f && first[1] === 0x8b) {
    const gunzip = createGunzip();
    tar.on('error', (err) => gunzip.destroy(err));
    return tar.pipe(gunzip);
  }
  return tar;
}
