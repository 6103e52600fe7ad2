import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertRepositoryName,
  assertTag,
  isValidRepositoryName,
  isValidTag,
  MAX_NAME_LENGTH,
  OciValidationError,
} from '../src/index.js';

// Written out independently from the implementation, straight from the distribution spec.
const SPEC_NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const SPEC_TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(OciValidationError);
    return (error as OciValidationError).code;
  }
}

function messageOf(fn: () => void): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a throw');
}

describe('repository names', () => {
  const valid = [
    'a',
    '0',
    'ubuntu',
    'library/ubuntu',
    'cocoonstack/windows/win11',
    'a.b',
    'a_b',
    'a__b',
    'a-b',
    'a---b',
    'a1/b2/c3',
    'foo.bar_baz__qux-quux',
    'x'.repeat(MAX_NAME_LENGTH),
    `${'a/'.repeat(127)}a`,
  ];
  const invalid: [string, string][] = [
    ['', 'empty'],
    [' ', 'space'],
    ['ubuntu ', 'trailing space'],
    ['ubu ntu', 'inner space'],
    ['\tubuntu', 'tab'],
    ['Ubuntu', 'uppercase'],
    ['library/Ubuntu', 'uppercase component'],
    ['a..b', 'double dot'],
    ['a._b', 'mixed separators'],
    ['a___b', 'triple underscore'],
    ['a-.b', 'dash then dot'],
    ['..', 'dot dot'],
    ['../../etc/passwd', 'path traversal'],
    ['a/../b', 'dot-dot component'],
    ['a/./b', 'dot component'],
    ['x/_digests', '_digests component'],
    ['_digests', 'leading underscore'],
    ['-a', 'leading dash'],
    ['a-', 'trailing dash'],
    ['.a', 'leading dot'],
    ['a.', 'trailing dot'],
    ['a_', 'trailing underscore'],
    ['/a', 'leading slash'],
    ['a/', 'trailing slash'],
    ['a//b', 'empty component'],
    ['/', 'slash alone'],
    ['x'.repeat(MAX_NAME_LENGTH + 1), '256 chars'],
    ['ubuntu\u0000', 'NUL'],
    ['a%2Fb', 'percent-encoded slash'],
    ['a:b', 'colon'],
    ['a@b', 'at sign'],
    ['ubuntu\n', 'newline'],
    ['ubuntu\u200b', 'zero-width space'],
    ['ubuntu\u2215x', 'division slash lookalike'],
    ['\u0430bc', 'cyrillic a lookalike'],
    ['ｕｂｕｎｔｕ', 'fullwidth letters'],
    ['a\\b', 'backslash'],
    ['<script>', 'markup'],
  ];

  it.each(valid)('accepts %j', (name) => {
    expect(isValidRepositoryName(name)).toBe(true);
    expect(() => assertRepositoryName(name)).not.toThrow();
  });

  it.each(invalid)('rejects %j (%s)', (name) => {
    expect(isValidRepositoryName(name)).toBe(false);
    expect(codeOf(() => assertRepositoryName(name))).toBe('NAME_INVALID');
  });

  it.each([
    ['', 'must not be empty'],
    ['Ubuntu', 'must be lowercase'],
    ['a..b', 'separator ".."'],
    ['a//b', 'empty path component'],
    ['/a', 'must not start with "/"'],
    ['a/', 'must not end with "/"'],
    ['x/_digests', 'must start with a letter or digit'],
    ['a-', 'must end with a letter or digit'],
    ['a b', 'U+0020'],
    ['a\u0000b', 'U+0000'],
    ['a%2Fb', '"%"'],
    ['x'.repeat(256), '256 characters long'],
  ])('explains why %j is invalid', (name, fragment) => {
    expect(messageOf(() => assertRepositoryName(name))).toContain(fragment);
  });

  it('keeps error messages short for hostile input', () => {
    const message = messageOf(() => assertRepositoryName(`${'a'.repeat(10_000)}!`));
    expect(message.length).toBeLessThan(200);
  });

  it('rejects a 10k-character hostile name without catastrophic backtracking', () => {
    const hostile = `${'a-'.repeat(5_000)}!`;
    const started = performance.now();
    expect(isValidRepositoryName(hostile)).toBe(false);
    expect(() => assertRepositoryName(hostile)).toThrow(OciValidationError);
    // Also just under the limit, where the regex actually runs on the whole string.
    const nearLimit = `${'a-'.repeat(127)}!`;
    expect(isValidRepositoryName(nearLimit)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('agrees with the spec regex on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'ab0-._/A:') }), (name) => {
        const expected = name.length <= MAX_NAME_LENGTH && SPEC_NAME.test(name);
        expect(isValidRepositoryName(name)).toBe(expected);
      }),
      { numRuns: 2_000 },
    );
  });

  it('only ever throws NAME_INVALID, and only for names it rejects', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (name) => {
        const code = codeOf(() => assertRepositoryName(name));
        if (isValidRepositoryName(name)) {
          expect(code).toBeUndefined();
          expect(SPEC_NAME.test(name)).toBe(true);
        } else {
          expect(code).toBe('NAME_INVALID');
        }
      }),
    );
  });
});

describe('tags', () => {
  const valid = [
    'latest',
    'v1.0.0',
    '_',
    '_hidden',
    'A',
    '0',
    'a.b-c_d',
    'x'.repeat(128),
    'hibernate',
  ];
  const invalid: [string, string][] = [
    ['', 'empty'],
    ['x'.repeat(129), '129 chars'],
    ['.hidden', 'leading dot'],
    ['-rc', 'leading dash'],
    ['a b', 'space'],
    [' latest', 'leading space'],
    ['latest\n', 'newline'],
    ['a/b', 'slash'],
    ['a:b', 'colon'],
    ['a@b', 'at'],
    ['sha256:abc', 'digest-like'],
    ['t\u0000', 'NUL'],
    ['lat\u0435st', 'cyrillic e lookalike'],
    ['%2F', 'percent'],
    ['..', 'dot dot'],
  ];

  it.each(valid)('accepts %j', (tag) => {
    expect(isValidTag(tag)).toBe(true);
    expect(() => assertTag(tag)).not.toThrow();
  });

  it.each(invalid)('rejects %j (%s)', (tag) => {
    expect(isValidTag(tag)).toBe(false);
    expect(codeOf(() => assertTag(tag))).toBe('TAG_INVALID');
  });

  it.each([
    ['', 'must not be empty'],
    ['x'.repeat(129), '129 characters long'],
    ['.a', 'must not start with "." or "-"'],
    ['a/b', '"/"'],
  ])('explains why %j is invalid', (tag, fragment) => {
    expect(messageOf(() => assertTag(tag))).toContain(fragment);
  });

  it('agrees with the spec regex on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 140 }), (tag) => {
        expect(isValidTag(tag)).toBe(SPEC_TAG.test(tag));
        expect(codeOf(() => assertTag(tag))).toBe(SPEC_TAG.test(tag) ? undefined : 'TAG_INVALID');
      }),
    );
  });
});
