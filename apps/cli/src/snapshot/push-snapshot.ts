import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  Annotations,
  type ByteSink,
  type Descriptor,
  type Digest,
  digestOf,
  MediaTypes,
  type SnapshotFile,
  snapshotConfig,
  snapshotLayer,
  snapshotManifest,
} from '@epoch/oci';
import type { PushBlobResult, RegistryClient } from '@epoch/registry/client';
import type { ByteSource } from '../support/byte-source.js';
import { Progress } from '../support/progress.js';
import { readExport } from './export-tar.js';

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
 * Pushes a `cocoon snapshot export` tar as the one-blob-per-file snapshot artifact (`@epoch/oci`
 * `snapshot-files.ts`): one blob per regular entry in export order (the entry's bytes as
 * exported, i.e. only the data segments of sparse files), a config recording each file's mode
 * and sparse map plus the verbatim `snapshot.json`, then the manifest. Each entry streams
 * straight into a chunked upload, hashed on the way: nothing is spooled and memory stays at one
 * chunk and the upload's read-ahead.
 */
export async function pushSnapshot(
  source: ByteSource,
  options: PushSnapshotOptions,
): Promise<PushedSnapshot> {
  const { client, repository } = options;
  const layers: Descriptor[] = [];
  const files: Record<string, SnapshotFile> = {};
  let skipped = 0;
  const envelope = await readExport(source, (entry) => {
    const progress = new Progress(entry.name, entry.size);
    const known = options.known?.get(entry.name);
    return uploadSink(
      (body) =>
        client.pushBlob(repository, body, {
          size: entry.size,
          ...(known ? { digest: known } : {}),
          onProgress: (n) => progress.update(n),
        }),
      (pushed) => {
        progress.done();
        if (pushed.how !== 'uploaded') skipped++;
        layers.push(snapshotLayer(entry.name, pushed.digest, pushed.size));
        files[entry.name] = entry.file;
      },
    );
  });

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

/** How far an upload's body reads ahead of the upload. */
const READ_AHEAD = 1024 * 1024;

/**
 * A file's bytes as the body of an upload started at once: each write is copied in (the bytes
 * may be a view of a reused buffer) and waits while the body holds {@link READ_AHEAD}; `end`
 * waits for the upload and hands its result to `done`. An upload that needs no body (the blob
 * is there) lets the rest of the file pass unread; one that fails fails the next write.
 */
function uploadSink(
  upload: (body: Readable) => Promise<PushBlobResult>,
  done: (pushed: PushBlobResult) => void,
): ByteSink {
  let wake: (() => void) | undefined;
  const body = new Readable({
    highWaterMark: READ_AHEAD,
    read() {
      wake?.();
    },
  });
  let state: 'running' | 'done' | 'failed' = 'running';
  let failure: unknown;
  const pushed = upload(body);
  pushed.then(
    () => {
      state = 'done';
      wake?.();
    },
    (err: unknown) => {
      state = 'failed';
      failure = err;
      wake?.();
    },
  );
  return {
    write(bytes) {
      if (state === 'failed') throw failure;
      if (state === 'done' || body.push(Buffer.from(bytes))) return;
      return new Promise<void>((resolve) => {
        wake = () => {
          wake = undefined;
          resolve();
        };
      }).then(() => {
        if (state === 'failed') throw failure;
      });
    },
    async end() {
      body.push(null);
      const result = await pushed;
      body.destroy();
      done(result);
    },
  };
}

/**
 * First pass over a tar that can be read twice: the digest of each regular entry by title,
 * hashed as it streams (nothing is kept in memory), so a push can skip what the registry
 * already has.
 */
export async function digestEntries(source: ByteSource): Promise<Map<string, Digest>> {
  const digests = new Map<string, Digest>();
  await readExport(source, (entry) => {
    const hash = createHash('sha256');
    return {
      write: (bytes) => {
        hash.update(bytes);
      },
      end: () => {
        digests.set(entry.name, `sha256:${hash.digest('hex')}`);
      },
    };
  });
  return digests;
}
