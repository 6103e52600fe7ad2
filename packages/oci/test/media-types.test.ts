import { describe, expect, it } from 'vitest';
import {
  CocoonMediaTypes,
  isDiskMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSupportedManifestMediaType,
  isValidMediaType,
  isZstdMediaType,
  ManifestMediaTypes,
  MediaTypes,
  mediaTypeForCocoonFile,
  stripZstdSuffix,
} from '../src/index.js';

describe('media type constants', () => {
  it('carry the exact wire strings', () => {
    expect(MediaTypes.ociManifest).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(MediaTypes.ociIndex).toBe('application/vnd.oci.image.index.v1+json');
    expect(MediaTypes.ociConfig).toBe('application/vnd.oci.image.config.v1+json');
    expect(MediaTypes.ociEmpty).toBe('application/vnd.oci.empty.v1+json');
    expect(MediaTypes.ociLayerGzip).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    expect(MediaTypes.dockerManifest).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(MediaTypes.dockerManifestList).toBe(
      'application/vnd.docker.distribution.manifest.list.v2+json',
    );
    expect(MediaTypes.dockerConfig).toBe('application/vnd.docker.container.image.v1+json');
    expect(MediaTypes.dockerLayerGzip).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
    expect(CocoonMediaTypes.snapshotArtifact).toBe('application/vnd.cocoonstack.snapshot.v1+json');
    expect(CocoonMediaTypes.snapshotArtifactV2).toBe(
      'application/vnd.cocoonstack.snapshot.v2+json',
    );
    expect(CocoonMediaTypes.snapshotConfig).toBe(
      'application/vnd.cocoonstack.snapshot.config.v1+json',
    );
    expect(CocoonMediaTypes.osImageArtifact).toBe('application/vnd.cocoonstack.os-image.v1+json');
    expect(CocoonMediaTypes.windowsImageArtifact).toBe(
      'application/vnd.cocoonstack.windows-image.v1+json',
    );
    expect(CocoonMediaTypes.windowsDiskQcow2Part).toBe(
      'application/vnd.cocoonstack.windows.disk.qcow2.part',
    );
  });

  it('are all syntactically valid media types', () => {
    for (const mt of [...Object.values(MediaTypes), ...Object.values(CocoonMediaTypes)]) {
      expect(isValidMediaType(mt), mt).toBe(true);
    }
  });

  it('list exactly the four manifest types a registry accepts', () => {
    expect([...ManifestMediaTypes].sort()).toEqual(
      [
        MediaTypes.ociManifest,
        MediaTypes.ociIndex,
        MediaTypes.dockerManifest,
        MediaTypes.dockerManifestList,
      ].sort(),
    );
    expect(Object.isFrozen(ManifestMediaTypes)).toBe(true);
  });
});

describe('manifest media type predicates', () => {
  it.each([
    [MediaTypes.ociManifest, false, true],
    [MediaTypes.dockerManifest, false, true],
    [MediaTypes.ociIndex, true, false],
    [MediaTypes.dockerManifestList, true, false],
    ['application/vnd.docker.distribution.manifest.v1+prettyjws', false, false],
    [MediaTypes.ociConfig, false, false],
    ['application/json', false, false],
    ['', false, false],
    [`${MediaTypes.ociManifest} `, false, false],
  ])('%j: index %s, manifest %s', (mt, index, manifest) => {
    expect(isIndexMediaType(mt)).toBe(index);
    expect(isManifestMediaType(mt)).toBe(manifest);
    expect(isSupportedManifestMediaType(mt)).toBe(index || manifest);
  });
});

describe('isDiskMediaType', () => {
  it.each([
    CocoonMediaTypes.diskQcow2,
    CocoonMediaTypes.diskQcow2Part,
    CocoonMediaTypes.diskRaw,
    CocoonMediaTypes.diskRawPart,
    CocoonMediaTypes.windowsDiskQcow2,
    CocoonMediaTypes.windowsDiskQcow2Part,
    CocoonMediaTypes.windowsDiskRaw,
    CocoonMediaTypes.windowsDiskRawPart,
    `${CocoonMediaTypes.diskQcow2}+zstd`,
    `${CocoonMediaTypes.diskRawPart}+zstd`,
  ])('accepts %s', (mt) => {
    expect(isDiskMediaType(mt)).toBe(true);
  });

  it.each([
    'text/plain',
    MediaTypes.octetStream,
    CocoonMediaTypes.vmMemory,
    CocoonMediaTypes.vmConfig,
    `${CocoonMediaTypes.vmMemory}+zstd`,
    `${CocoonMediaTypes.diskQcow2}+zstd+zstd`,
    `${CocoonMediaTypes.diskQcow2}+gzip`,
    'application/vnd.cocoon.disk.qcow2',
    'application/vnd.cocoonstack.disk.vmdk',
    '',
  ])('rejects %s', (mt) => {
    expect(isDiskMediaType(mt)).toBe(false);
  });
});

describe('zstd suffix helpers', () => {
  it('recognise and strip +zstd', () => {
    expect(isZstdMediaType(`${CocoonMediaTypes.vmMemory}+zstd`)).toBe(true);
    expect(isZstdMediaType(CocoonMediaTypes.vmMemory)).toBe(false);
    expect(stripZstdSuffix(`${CocoonMediaTypes.vmMemory}+zstd`)).toBe(CocoonMediaTypes.vmMemory);
    expect(stripZstdSuffix(CocoonMediaTypes.vmMemory)).toBe(CocoonMediaTypes.vmMemory);
  });
});

describe('mediaTypeForCocoonFile', () => {
  it.each([
    ['config.json', CocoonMediaTypes.vmConfig],
    ['state.json', CocoonMediaTypes.vmState],
    ['memory-ranges', CocoonMediaTypes.vmMemory],
    ['cidata.img', CocoonMediaTypes.vmCidata],
    ['overlay.qcow2', CocoonMediaTypes.diskQcow2],
    ['base.qcow2', CocoonMediaTypes.diskQcow2],
    ['cow.raw', CocoonMediaTypes.diskRaw],
    ['data-vol1.raw', CocoonMediaTypes.diskRaw],
    ['cocoon.json', MediaTypes.octetStream],
    ['vmstate', MediaTypes.octetStream],
    ['mem', MediaTypes.octetStream],
    ['snapshot.json', MediaTypes.octetStream],
    ['Config.json', MediaTypes.octetStream],
    ['disk.qcow2.part', MediaTypes.octetStream],
    ['raw', MediaTypes.octetStream],
    ['', MediaTypes.octetStream],
  ])('%j → %s', (filename, expected) => {
    expect(mediaTypeForCocoonFile(filename)).toBe(expected);
  });
});

describe('isValidMediaType', () => {
  it.each([
    'text/plain',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.cocoonstack.disk.qcow2.part',
    'a/b',
  ])('accepts %s', (mt) => {
    expect(isValidMediaType(mt)).toBe(true);
  });

  it.each([
    '',
    'text',
    'text/',
    '/plain',
    'text/plain; charset=utf-8',
    'text/plain ',
    'text/pl ain',
    'a/b/c',
    '-a/b',
    `a/${'b'.repeat(128)}`,
    'téxt/plain',
  ])('rejects %j', (mt) => {
    expect(isValidMediaType(mt)).toBe(false);
  });
});
