import { randomBytes } from 'node:crypto';
import {
  Annotations,
  CocoonMediaTypes,
  type Digest,
  digestOf,
  MediaTypes,
  type SnapshotFile,
  snapshotConfig,
  snapshotLayer,
  snapshotManifest,
} from '@epoch/oci';
import type { RegistryClient } from '@epoch/registry';

/** A file of a test snapshot: its name and bytes (random unless given). */
export interface FixtureFile {
  name: string;
  bytes: Buffer;
  /** Sparse file: the data segments `bytes` holds and the logical size. */
  sparse?: { map: { o: number; l: number }[]; size: number };
  /** The config's record of the file, instead of the one made from `sparse`. */
  record?: SnapshotFile;
}

/** Random bytes, `size` of them. */
export function random(size: number): Buffer {
  return randomBytes(size);
}

/**
 * Pushes a snapshot artifact as `epoch push` writes it (`@epoch/oci` `snapshot-files.ts`): one layer per file,
 * titled, a config with the files' modes and the verbatim snapshot.json envelope.
 */
export async function pushSnapshot(
  client: RegistryClient,
  repository: string,
  tag: string,
  files: FixtureFile[],
): Promise<Digest> {
  const layers = [];
  for (const file of files) {
    const digest = digestOf(file.bytes);
    await client.pushBlob(repository, file.bytes, { digest });
    layers.push(snapshotLayer(file.name, digest, file.bytes.length));
  }
  const envelope = `${JSON.stringify({ config: { name: repository, cpu: 2, queue_size: 7 }, version: 1 })}\n`;
  const config = Buffer.from(
    JSON.stringify(
      snapshotConfig(
        envelope,
        Object.fromEntries(
          files.map((f) => [
            f.name,
            f.record ??
              (f.sparse
                ? {
                    mode: 0o600,
                    sparseMap: JSON.stringify(f.sparse.map),
                    sparseSize: f.sparse.size,
                  }
                : { mode: 0o640 }),
          ]),
        ),
      ),
    ),
  );
  const configDigest = digestOf(config);
  await client.pushBlob(repository, config, { digest: configDigest });
  const manifest = snapshotManifest({ digest: configDigest, size: config.length }, layers);
  return client.putManifest(
    repository,
    tag,
    Buffer.from(JSON.stringify(manifest)),
    MediaTypes.ociManifest,
  );
}

/** Pushes a cloud image of disk parts (title order is reassembly order). */
export async function pushCloudImage(
  client: RegistryClient,
  repository: string,
  tag: string,
  parts: FixtureFile[],
): Promise<Digest> {
  const layers = [];
  for (const part of parts) {
    const digest = digestOf(part.bytes);
    await client.pushBlob(repository, part.bytes, { digest });
    layers.push({
      mediaType: CocoonMediaTypes.diskQcow2Part,
      digest,
      size: part.bytes.length,
      annotations: { [Annotations.title]: part.name },
    });
  }
  const empty = Buffer.from('{}');
  await client.pushBlob(repository, empty, { digest: digestOf(empty) });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.osImageArtifact,
      config: { mediaType: MediaTypes.ociEmpty, digest: digestOf(empty), size: 2 },
      layers,
    }),
  );
  return client.putManifest(repository, tag, manifest, MediaTypes.ociManifest);
}
