import { digestOf, OciValidationError } from '@epoch/oci';
import { describe, expect, it } from 'vitest';
import { Layout, parseManifestKey } from '../../src/core/layout.js';

const digest = digestOf('x');
const hex = digest.slice(7);

describe('layout', () => {
  it('builds the upstream keys', () => {
    expect(Layout.blob(digest)).toBe(`blobs/sha256/${hex}`);
    expect(Layout.tag('team/app', 'v1.0')).toBe('manifests/team/app/v1.0.json');
    expect(Layout.manifestByDigest('app', digest)).toBe(
      `manifests/app/_digests/sha256-${hex}.json`,
    );
  });

  it.each([
    ['../etc', 'latest'],
    ['a/../b', 'latest'],
    ['a/_digests', 'latest'],
    ['/abs', 'latest'],
    ['app', '../x'],
    ['app', 'a/b'],
    ['app', ''],
  ])('refuses name %j with tag %j', (name, tag) => {
    expect(() => Layout.tag(name, tag)).toThrow(OciValidationError);
  });

  it('refuses digests that are not digests', () => {
    for (const bad of ['sha256:../../x', `sha256:${hex.toUpperCase()}`, 'md5:abc', hex]) {
      expect(() => Layout.blob(bad)).toThrow(OciValidationError);
    }
  });

  it('parses keys back, and ignores what it did not write', () => {
    expect(parseManifestKey('manifests/team/app/v1.json')).toEqual({
      type: 'tag',
      repository: 'team/app',
      tag: 'v1',
    });
    expect(parseManifestKey(`manifests/team/app/_digests/sha256-${hex}.json`)).toEqual({
      type: 'digest',
      repository: 'team/app',
      digest,
    });
    for (const junk of [
      'manifests/latest.json',
      'manifests/App/v1.json',
      'manifests/app/v1.txt',
      'manifests/app/_digests/sha256-zz.json',
      'blobs/sha256/abc',
      'manifests/app/_digests/nodash.json',
    ]) {
      expect(parseManifestKey(junk)).toBeUndefined();
    }
  });
});
