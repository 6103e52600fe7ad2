import { describe, expect, it } from 'vitest';
import {
  Annotations,
  type ArtifactKind,
  ChunkedMediaTypes,
  CocoonMediaTypes,
  classify,
  cloudImageParts,
  type Descriptor,
  descriptorTitle,
  type ImageManifest,
  MediaTypes,
  parseManifest,
} from '../src/index.js';
import { blob, bytesOf, sized } from './fixtures.js';

const emptyConfig = { mediaType: MediaTypes.ociEmpty, digest: blob('a/b', '{}').digest, size: 2 };
const layer = blob(MediaTypes.ociLayerGzip, 'layer');

function manifest(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: emptyConfig,
    layers: [layer],
    ...fields,
  };
}

function kindOf(doc: Record<string, unknown>, declared?: string): ArtifactKind {
  return classify(parseManifest(bytesOf(doc), declared));
}

describe('classify', () => {
  it.each<[string, Record<string, unknown>, ArtifactKind]>([
    [
      'os-image artifact',
      manifest({ artifactType: CocoonMediaTypes.osImageArtifact }),
      'cloud-image',
    ],
    [
      'legacy windows-image artifact',
      manifest({ artifactType: CocoonMediaTypes.windowsImageArtifact }),
      'cloud-image',
    ],
    [
      'snapshot v1',
      manifest({
        artifactType: CocoonMediaTypes.snapshotArtifact,
        config: blob(CocoonMediaTypes.snapshotConfig, 'cfg'),
      }),
      'snapshot',
    ],
    [
      'snapshot v2',
      manifest({
        artifactType: CocoonMediaTypes.snapshotArtifactV2,
        config: blob(CocoonMediaTypes.snapshotConfig, 'cfg'),
      }),
      'snapshot',
    ],
    [
      'incremental (chunked) snapshot: a kind of its own, never taken for a v1 snapshot',
      manifest({
        artifactType: ChunkedMediaTypes.snapshotArtifact,
        config: blob(ChunkedMediaTypes.snapshotConfig, 'cfg'),
      }),
      'chunked-snapshot',
    ],
    ['OCI image config', manifest({ config: blob(MediaTypes.ociConfig, 'c') }), 'container-image'],
    [
      'Docker v2',
      {
        schemaVersion: 2,
        mediaType: MediaTypes.dockerManifest,
        config: blob(MediaTypes.dockerConfig, 'c'),
        layers: [blob(MediaTypes.dockerLayerGzip, 'l')],
      },
      'container-image',
    ],
    [
      'OCI index',
      {
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: [blob(MediaTypes.ociManifest, 'm')],
      },
      'image-index',
    ],
    [
      'Docker manifest list',
      {
        schemaVersion: 2,
        mediaType: MediaTypes.dockerManifestList,
        manifests: [blob(MediaTypes.dockerManifest, 'm')],
      },
      'image-index',
    ],
    ['no discriminator (oras without --artifact-type)', manifest({}), 'unknown'],
    [
      'custom config type (OCI 1.1 artifact)',
      manifest({ config: blob('application/vnd.example.config+json', 'c') }),
      'unknown',
    ],
    [
      'unknown artifactType',
      manifest({
        artifactType: 'application/vnd.example+json',
        config: blob(MediaTypes.ociConfig, 'c'),
      }),
      'container-image',
    ],
    // Upstream does not look at the config type for snapshots: artifactType decides.
    [
      'snapshot config without artifactType',
      manifest({ config: blob(CocoonMediaTypes.snapshotConfig, 'c') }),
      'unknown',
    ],
    // artifactType wins over an OCI image config.
    [
      'os-image with an OCI image config',
      manifest({
        artifactType: CocoonMediaTypes.osImageArtifact,
        config: blob(MediaTypes.ociConfig, 'c'),
      }),
      'cloud-image',
    ],
    [
      'snapshot artifactType on an index',
      {
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        artifactType: CocoonMediaTypes.snapshotArtifact,
        manifests: [],
      },
      'snapshot',
    ],
  ])('%s → %s', (_label, doc, expected) => {
    expect(kindOf(doc)).toBe(expected);
  });

  it('classifies an index without a mediaType field, known only from its Content-Type', () => {
    expect(kindOf({ schemaVersion: 2, manifests: [] }, MediaTypes.ociIndex)).toBe('image-index');
  });
});

describe('cloudImageParts', () => {
  const part = (title: string, seed = title) =>
    sized(CocoonMediaTypes.diskQcow2Part, seed, 10, title);
  const sums = sized('text/plain', 'sums', 100, 'SHA256SUMS');

  function image(layers: Descriptor[]): ImageManifest {
    return {
      schemaVersion: 2,
      artifactType: CocoonMediaTypes.osImageArtifact,
      config: emptyConfig,
      layers,
    };
  }

  it('orders parts by title and skips non-disk layers such as SHA256SUMS', () => {
    const layers = [
      part('win11.qcow2.02.qcow2.part'),
      sums,
      part('win11.qcow2.00.qcow2.part'),
      part('win11.qcow2.01.qcow2.part'),
    ];
    expect(cloudImageParts(image(layers)).map(descriptorTitle)).toEqual([
      'win11.qcow2.00.qcow2.part',
      'win11.qcow2.01.qcow2.part',
      'win11.qcow2.02.qcow2.part',
    ]);
  });

  it('keeps every disk media type, including legacy windows and +zstd ones', () => {
    const layers = [
      sized(CocoonMediaTypes.windowsDiskRawPart, 'c', 1, 'c'),
      sized(`${CocoonMediaTypes.diskRaw}+zstd`, 'b', 1, 'b'),
      sized(CocoonMediaTypes.vmMemory, 'm', 1, 'a-memory'),
      sized(CocoonMediaTypes.diskQcow2, 'a', 1, 'a'),
    ];
    expect(cloudImageParts(image(layers)).map(descriptorTitle)).toEqual(['a', 'b', 'c']);
  });

  it('sorts stably: equal titles keep manifest order', () => {
    const first = part('same', 'first');
    const second = part('same', 'second');
    const untitledA = sized(CocoonMediaTypes.diskQcow2, 'u1', 1);
    const untitledB = sized(CocoonMediaTypes.diskQcow2, 'u2', 1);
    expect(cloudImageParts(image([second, untitledA, first, untitledB]))).toEqual([
      untitledA,
      untitledB,
      second,
      first,
    ]);
  });

  it('compares titles byte-wise (UTF-8), not by UTF-16 code units', () => {
    // U+FF5E is one UTF-16 unit above U+D83D (the lead surrogate of 😀) yet sorts below 😀 in UTF-8.
    const emoji = part('😀');
    const fullwidth = part('～');
    const upper = part('Z');
    const lower = part('a');
    expect(cloudImageParts(image([emoji, fullwidth, lower, upper])).map(descriptorTitle)).toEqual([
      'Z',
      'a',
      '～',
      '😀',
    ]);
  });

  it('does not reorder the manifest it was given', () => {
    const layers = [part('b'), part('a')];
    cloudImageParts(image(layers));
    expect(layers.map(descriptorTitle)).toEqual(['b', 'a']);
  });

  it('returns nothing for an image without disk layers', () => {
    expect(cloudImageParts(image([sums]))).toEqual([]);
  });
});

describe('Annotations', () => {
  it('carry the keys upstream reads and writes', () => {
    expect(Annotations.title).toBe('org.opencontainers.image.title');
    expect(Annotations.created).toBe('org.opencontainers.image.created');
    expect(Annotations.baseImage).toBe('cocoonstack.snapshot.baseimage');
    expect(Annotations.chunkIndex).toBe('cocoonstack.chunk.index');
  });

  it('descriptorTitle reads the title or gives an empty string', () => {
    expect(descriptorTitle(sized('a/b', 'x', 1, 'disk.qcow2'))).toBe('disk.qcow2');
    expect(descriptorTitle(sized('a/b', 'x', 1))).toBe('');
  });
});
