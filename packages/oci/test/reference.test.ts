import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Digest,
  formatReference,
  isDigestReference,
  isValidRepositoryName,
  OciValidationError,
  parseManifestTarget,
  parseReference,
  type Reference,
  referenceTarget,
} from '../src/index.js';

const D = `sha256:${'b'.repeat(64)}` as Digest;
const D512 = `sha512:${'c'.repeat(128)}` as Digest;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(OciValidationError);
    return (error as OciValidationError).code;
  }
}

describe('parseReference', () => {
  it.each<[string, Reference]>([
    ['ubuntu', { name: 'ubuntu', tag: 'latest' }],
    ['ubuntu:24.04', { name: 'ubuntu', tag: '24.04' }],
    ['library/ubuntu:24.04', { name: 'library/ubuntu', tag: '24.04' }],
    [`ubuntu@${D}`, { name: 'ubuntu', digest: D }],
    [`ubuntu:24.04@${D}`, { name: 'ubuntu', tag: '24.04', digest: D }],
    [`ubuntu@${D512}`, { name: 'ubuntu', digest: D512 }],
    ['localhost/ubuntu', { host: 'localhost', name: 'ubuntu', tag: 'latest' }],
    [
      'localhost:4300/vm/win11:hibernate',
      { host: 'localhost:4300', name: 'vm/win11', tag: 'hibernate' },
    ],
    [
      'ghcr.io/cocoonstack/windows/win11:25h2',
      { host: 'ghcr.io', name: 'cocoonstack/windows/win11', tag: '25h2' },
    ],
    [
      'registry.example.com:5000/a/b',
      { host: 'registry.example.com:5000', name: 'a/b', tag: 'latest' },
    ],
    ['[::1]:5000/foo:bar', { host: '[::1]:5000', name: 'foo', tag: 'bar' }],
    ['[::1]/foo', { host: '[::1]', name: 'foo', tag: 'latest' }],
    ['127.0.0.1:4300/foo', { host: '127.0.0.1:4300', name: 'foo', tag: 'latest' }],
    ['Registry.Example.COM/foo', { host: 'Registry.Example.COM', name: 'foo', tag: 'latest' }],
    [`h.io:1/a/b:c@${D}`, { host: 'h.io:1', name: 'a/b', tag: 'c', digest: D }],
    // No docker.io/library normalisation, and a first component without '.'/':' is a path.
    ['docker.io/ubuntu', { host: 'docker.io', name: 'ubuntu', tag: 'latest' }],
    ['cocoon/ubuntu', { name: 'cocoon/ubuntu', tag: 'latest' }],
    // Without a slash there is no host: this is name "localhost" with tag "5000", as in Docker.
    ['localhost:5000', { name: 'localhost', tag: '5000' }],
    ['a.b', { name: 'a.b', tag: 'latest' }],
  ])('parses %j', (value, expected) => {
    expect(parseReference(value)).toEqual(expected);
  });

  it('applies, changes or disables the default tag', () => {
    expect(parseReference('ubuntu', { defaultTag: 'stable' })).toEqual({
      name: 'ubuntu',
      tag: 'stable',
    });
    expect(parseReference('ubuntu', { defaultTag: null })).toEqual({ name: 'ubuntu' });
    expect(parseReference('ubuntu', { defaultTag: '' })).toEqual({ name: 'ubuntu' });
    // Never added next to a digest.
    expect(parseReference(`ubuntu@${D}`, { defaultTag: 'stable' })).toEqual({
      name: 'ubuntu',
      digest: D,
    });
    expect(codeOf(() => parseReference('ubuntu', { defaultTag: '-bad' }))).toBe('TAG_INVALID');
  });

  it.each([
    ['', 'REFERENCE_INVALID'],
    ['ghcr.io/', 'REFERENCE_INVALID'],
    ['localhost/', 'REFERENCE_INVALID'],
    [':tag', 'REFERENCE_INVALID'],
    [`@${D}`, 'REFERENCE_INVALID'],
    ['bad_host.-x/foo', 'REFERENCE_INVALID'],
    ['[::1/foo', 'REFERENCE_INVALID'],
    ['host.io:99999/foo', 'REFERENCE_INVALID'],
    ['host.io:port/foo', 'REFERENCE_INVALID'],
    ['ho st.io/foo', 'REFERENCE_INVALID'],
    [`${'a'.repeat(2000)}`, 'REFERENCE_INVALID'],
    ['Ubuntu', 'NAME_INVALID'],
    ['ubuntu/', 'NAME_INVALID'],
    ['a//b', 'NAME_INVALID'],
    // '..' contains a dot, so by Docker's rule it is read as a (malformed) host.
    ['../../etc/passwd', 'REFERENCE_INVALID'],
    ['a/../b', 'NAME_INVALID'],
    ['localhost/../b', 'NAME_INVALID'],
    ['x/_digests:t', 'NAME_INVALID'],
    ['ghcr.io/Foo', 'NAME_INVALID'],
    ['a%2Fb', 'NAME_INVALID'],
    [' ubuntu', 'NAME_INVALID'],
    ['ubuntu:', 'TAG_INVALID'],
    ['ubuntu:-x', 'TAG_INVALID'],
    ['ubuntu:.x', 'TAG_INVALID'],
    [`ubuntu:${'t'.repeat(129)}`, 'TAG_INVALID'],
    ['ubuntu:a b', 'TAG_INVALID'],
    ['ubuntu@', 'DIGEST_INVALID'],
    ['ubuntu@sha256:', 'DIGEST_INVALID'],
    [`ubuntu@sha256:${'a'.repeat(63)}`, 'DIGEST_INVALID'],
    [`ubuntu@sha256:${'A'.repeat(64)}`, 'DIGEST_INVALID'],
    [`ubuntu@md5:${'a'.repeat(32)}`, 'DIGEST_INVALID'],
    [`ubuntu@${D}@${D}`, 'DIGEST_INVALID'],
  ])('rejects %j with %s', (value, code) => {
    expect(codeOf(() => parseReference(value))).toBe(code);
  });

  it('reads a dotted first component as a host, so host-less names should avoid one', () => {
    const ref: Reference = { name: 'a.b/c', tag: 't' };
    expect(parseReference(formatReference(ref))).toEqual({ host: 'a.b', name: 'c', tag: 't' });
  });

  it('names the problem in its messages', () => {
    expect(() => parseReference('ghcr.io/')).toThrow('repository name is missing');
    expect(() => parseReference('host.io:99999/foo')).toThrow('out of range');
    expect(() => parseReference('bad_host.-x/foo')).toThrow('not a valid registry host');
  });

  it('only ever throws OciValidationError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (value) => {
        try {
          const ref = parseReference(value);
          expect(isValidRepositoryName(ref.name)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(OciValidationError);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('round-trips generated references through formatReference', () => {
    const alnum = fc.string({ unit: fc.constantFrom(...'abcxyz0189'), minLength: 1, maxLength: 6 });
    const separator = fc.constantFrom('.', '_', '__', '-', '--');
    const component = fc
      .tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 3 }))
      .map(([head, rest]) => head + rest.map(([s, a]) => s + a).join(''));
    const name = fc
      .array(component, { minLength: 1, maxLength: 4 })
      .map((parts) => parts.join('/'));
    const tag = fc
      .tuple(
        fc.constantFrom(...'aZ09_'),
        fc.string({ unit: fc.constantFrom(...'aZ09_.-'), maxLength: 127 }),
      )
      .map(([head, rest]) => head + rest);
    const digest = fc.oneof(
      fc
        .uint8Array({ minLength: 32, maxLength: 32 })
        .map((b) => `sha256:${Buffer.from(b).toString('hex')}` as Digest),
      fc
        .uint8Array({ minLength: 64, maxLength: 64 })
        .map((b) => `sha512:${Buffer.from(b).toString('hex')}` as Digest),
    );
    const host = fc.constantFrom(
      'localhost',
      'localhost:4300',
      'ghcr.io',
      'a.b.c:5000',
      '[::1]:5000',
      '10.0.0.1',
    );
    const reference = fc
      .record({ host, name, tag, digest }, { requiredKeys: ['name'] })
      .filter((ref) => ref.name.length <= 255)
      // Without a host, a first component with a dot would read back as a host (Docker's rule).
      .filter((ref) => ref.host !== undefined || !(ref.name.split('/')[0] ?? '').includes('.'));

    fc.assert(
      fc.property(reference, (ref) => {
        const text = formatReference(ref);
        const parsed = parseReference(text, { defaultTag: null });
        expect(parsed).toEqual(ref);
        expect(formatReference(parsed)).toBe(text);
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('formatReference', () => {
  it.each<[Reference, string]>([
    [{ name: 'a' }, 'a'],
    [{ name: 'a', tag: 't' }, 'a:t'],
    [{ name: 'a', digest: D }, `a@${D}`],
    [{ host: 'localhost:4300', name: 'a/b', tag: 't', digest: D }, `localhost:4300/a/b:t@${D}`],
  ])('formats %j', (ref, expected) => {
    expect(formatReference(ref)).toBe(expected);
  });
});

describe('referenceTarget', () => {
  it('prefers the digest, falls back to the tag', () => {
    expect(referenceTarget({ name: 'a', tag: 't', digest: D })).toBe(D);
    expect(referenceTarget({ name: 'a', tag: 't' })).toBe('t');
    expect(codeOf(() => referenceTarget({ name: 'a' }))).toBe('REFERENCE_INVALID');
  });
});

describe('manifest path references', () => {
  it.each([
    [D, true],
    [D512, true],
    ['sha256:bad', true],
    ['latest', false],
    ['v1.0', false],
    ['', false],
  ])('isDigestReference(%j) is %s', (ref, expected) => {
    expect(isDigestReference(ref)).toBe(expected);
  });

  it('classifies and validates in one step', () => {
    expect(parseManifestTarget(D)).toEqual({ kind: 'digest', digest: D });
    expect(parseManifestTarget('latest')).toEqual({ kind: 'tag', tag: 'latest' });
    expect(codeOf(() => parseManifestTarget('sha256:bad'))).toBe('DIGEST_INVALID');
    expect(codeOf(() => parseManifestTarget(`sha384:${'a'.repeat(96)}`))).toBe('DIGEST_INVALID');
    expect(codeOf(() => parseManifestTarget('-latest'))).toBe('TAG_INVALID');
    expect(codeOf(() => parseManifestTarget(''))).toBe('TAG_INVALID');
  });
});
