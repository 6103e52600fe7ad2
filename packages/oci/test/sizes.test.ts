import { describe, expect, it } from 'vitest';
import {
  type Descriptor,
  type Digest,
  digestOf,
  type ImageIndex,
  type ImageManifest,
  indexTotalSize,
  layerCount,
  MediaTypes,
  manifestTotalSize,
  platformSizes,
} from '../src/index.js';
import { sized } from './fixtures.js';

function image(config: Descriptor, layers: Descriptor[]): ImageManifest {
  return { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers };
}

const sharedBase = sized(MediaTypes.ociLayerGzip, 'base', 1000);
const amd64 = image(sized(MediaTypes.ociConfig, 'cfg-amd64', 10), [
  sharedBase,
  sized(MediaTypes.ociLayerGzip, 'amd64-app', 200),
]);
const arm64 = image(sized(MediaTypes.ociConfig, 'cfg-arm64', 20), [
  sharedBase,
  sized(MediaTypes.ociLayerGzip, 'arm64-app', 300),
  sized(MediaTypes.ociLayerGzip, 'arm64-extra', 4),
]);
const amd64Digest: Digest = digestOf('amd64-manifest');
const arm64Digest: Digest = digestOf('arm64-manifest');

const index: ImageIndex = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociIndex,
  manifests: [
    {
      mediaType: MediaTypes.ociManifest,
      digest: amd64Digest,
      size: 500,
      platform: { architecture: 'amd64', os: 'linux' },
    },
    {
      mediaType: MediaTypes.ociManifest,
      digest: arm64Digest,
      size: 600,
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
    },
  ],
};

describe('manifest sizes', () => {
  it('adds config and layer sizes', () => {
    expect(manifestTotalSize(amd64)).toBe(10 + 1000 + 200);
    expect(manifestTotalSize(arm64)).toBe(20 + 1000 + 300 + 4);
  });

  it('counts a manifest without layers as its config', () => {
    expect(manifestTotalSize(image(sized(MediaTypes.ociEmpty, '{}', 2), []))).toBe(2);
    expect(layerCount(image(sized(MediaTypes.ociEmpty, '{}', 2), []))).toBe(0);
  });

  it('counts layers', () => {
    expect(layerCount(amd64)).toBe(2);
    expect(layerCount(arm64)).toBe(3);
  });

  it('handles multi-GiB sizes exactly', () => {
    const big = image(sized(MediaTypes.ociConfig, 'c', 1), [
      sized('application/vnd.cocoonstack.vm.memory', 'm', 64 * 1024 ** 3),
      sized('application/vnd.cocoonstack.disk.raw', 'd', 2 ** 40 + 3),
    ]);
    expect(manifestTotalSize(big)).toBe(64 * 1024 ** 3 + 2 ** 40 + 4);
  });
});

describe('platformSizes', () => {
  it('reports each child in index order, not deduplicated', () => {
    const children = new Map<string, ImageManifest>([
      [arm64Digest, arm64],
      [amd64Digest, amd64],
    ]);
    expect(platformSizes(index, children)).toEqual([
      {
        digest: amd64Digest,
        platform: { architecture: 'amd64', os: 'linux' },
        size: 1210,
        layerCount: 2,
      },
      {
        digest: arm64Digest,
        platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
        size: 1324,
        layerCount: 3,
      },
    ]);
  });

  it('leaves out children it was not given and omits a missing platform', () => {
    const noPlatform: ImageIndex = {
      ...index,
      manifests: [
        { mediaType: MediaTypes.ociManifest, digest: amd64Digest, size: 500 },
        ...index.manifests.slice(1),
      ],
    };
    const sizes = platformSizes(noPlatform, new Map([[amd64Digest, amd64]]));
    expect(sizes).toEqual([{ digest: amd64Digest, size: 1210, layerCount: 2 }]);
    expect(Object.hasOwn(sizes[0] ?? {}, 'platform')).toBe(false);
  });
});

describe('indexTotalSize', () => {
  it('counts a blob shared between children once', () => {
    // 10 + 200 + 20 + 300 + 4 + the shared 1000 once.
    expect(indexTotalSize([amd64, arm64])).toBe(1534);
    expect(indexTotalSize([amd64, arm64])).toBeLessThan(
      manifestTotalSize(amd64) + manifestTotalSize(arm64),
    );
  });

  it('dedupes within one child and across a repeated child', () => {
    const twice = image(sized(MediaTypes.ociConfig, 'c', 5), [sharedBase, sharedBase]);
    expect(indexTotalSize([twice])).toBe(1005);
    expect(indexTotalSize([twice, twice])).toBe(1005);
  });

  it('dedupes a config that is also used as a layer', () => {
    const cfg = sized(MediaTypes.ociConfig, 'same', 7);
    const m = image(cfg, [{ ...cfg, mediaType: MediaTypes.ociLayer }]);
    expect(indexTotalSize([m])).toBe(7);
  });

  it('accepts any iterable and is zero for none', () => {
    expect(indexTotalSize(new Map([['a', amd64]]).values())).toBe(1210);
    expect(indexTotalSize([])).toBe(0);
  });
});
