import { describe, expect, it } from 'vitest';
import {
  Annotations,
  ChunkedMediaTypes,
  ChunkIndexError,
  CocoonMediaTypes,
  checkIndexPacks,
  chunkedSnapshotLayout,
  type Digest,
  type ImageManifest,
  MediaTypes,
  OciValidationError,
} from '../src/index.js';

const d = (c: string): Digest => `sha256:${c.repeat(64)}`;
function manifest(
  layers: ImageManifest['layers'],
  extra: Partial<ImageManifest> = {},
): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: ChunkedMediaTypes.snapshotArtifact,
    config: { mediaType: ChunkedMediaTypes.snapshotConfig, digest: d('c'), size: 10 },
    layers,
    ...extra,
  } as ImageManifest;
}
const index = (title: string, c = 'a') => ({
  mediaType: ChunkedMediaTypes.chunkIndex,
  digest: d(c),
  size: 64,
  annotations: { [Annotations.title]: title },
});
const pack = (c: string, size = 100) => ({
  mediaType: ChunkedMediaTypes.chunkPack,
  digest: d(c),
  size,
});

describe('chunkedSnapshotLayout', () => {
  it('sorts layers into files (in order) and packs', () => {
    const layout = chunkedSnapshotLayout(
      manifest([index('memory-ranges', 'a'), index('config.json', 'b'), pack('1'), pack('2')]),
    );
    expect(layout.files.map((f) => f.title)).toEqual(['memory-ranges', 'config.json']);
    expect([...layout.packs.keys()]).toEqual([d('1'), d('2')]);
    checkIndexPacks([{ digest: d('1'), size: 100 }], layout);
    expect(() => checkIndexPacks([{ digest: d('3'), size: 100 }], layout)).toThrow(ChunkIndexError);
    expect(() => checkIndexPacks([{ digest: d('1'), size: 99 }], layout)).toThrow(
      /99 bytes in the index/,
    );
  });

  it.each([
    ['another artifact type', manifest([], { artifactType: CocoonMediaTypes.snapshotArtifact })],
    [
      'the v1 config type',
      manifest([], {
        config: { mediaType: CocoonMediaTypes.snapshotConfig, digest: d('c'), size: 1 },
      }),
    ],
    [
      'a layer of another type',
      manifest([{ mediaType: CocoonMediaTypes.vmMemory, digest: d('e'), size: 1 }]),
    ],
    [
      'an index without title',
      manifest([{ mediaType: ChunkedMediaTypes.chunkIndex, digest: d('e'), size: 1 }]),
    ],
    ['a title with a slash', manifest([index('../etc/passwd')])],
    ['snapshot.json as a title', manifest([index('snapshot.json')])],
    ['a hidden file as a title', manifest([index('.epoch-config.json')])],
    ['two indexes for one file', manifest([index('mem', 'a'), index('mem', 'b')])],
  ])('refuses %s', (_what, m) => {
    expect(() => chunkedSnapshotLayout(m)).toThrow(OciValidationError);
  });
});
