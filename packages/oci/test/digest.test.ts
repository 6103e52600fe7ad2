import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Digester,
  digestOf,
  formatDigest,
  isDigest,
  OciValidationError,
  parseDigest,
} from '../src/index.js';

const hex64 = 'a'.repeat(64);
const hex128 = '0123456789abcdef'.repeat(8);
const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('parseDigest / isDigest', () => {
  it.each([
    [`sha256:${hex64}`, 'sha256', hex64],
    [EMPTY_SHA256, 'sha256', EMPTY_SHA256.slice(7)],
    [`sha512:${hex128}`, 'sha512', hex128],
  ])('accepts %s', (value, algorithm, hex) => {
    expect(isDigest(value)).toBe(true);
    expect(parseDigest(value)).toEqual({ algorithm, hex });
  });

  it.each([
    ['', 'empty'],
    ['sha256:', 'algorithm alone'],
    ['sha256', 'no colon'],
    [hex64, 'hex without algorithm'],
    [`sha256:${'a'.repeat(63)}`, '63 hex chars'],
    [`sha256:${'a'.repeat(65)}`, '65 hex chars'],
    [`sha256:${'A'.repeat(64)}`, 'uppercase hex'],
    [`SHA256:${hex64}`, 'uppercase algorithm'],
    [`sha256:${'g'.repeat(64)}`, 'non-hex'],
    [`sha512:${hex64}`, 'sha512 with 64 chars'],
    [`sha256:${hex128}`, 'sha256 with 128 chars'],
    [`md5:${'a'.repeat(32)}`, 'md5'],
    [`blake3:${hex64}`, 'blake3'],
    [`sha384:${'a'.repeat(96)}`, 'sha384'],
    [` sha256:${hex64}`, 'leading space'],
    [`sha256:${hex64} `, 'trailing space'],
    [`sha256:${hex64}\n`, 'trailing newline'],
    [`sha256 :${hex64}`, 'space before colon'],
    [`sha256::${hex64}`, 'double colon'],
    [`sha256:${hex64.slice(1)}\u0000`, 'NUL'],
    [`sha256:${'а'.repeat(64)}`, 'cyrillic lookalikes'],
    [`sha256:${hex64}/../x`, 'path suffix'],
  ])('rejects %j (%s)', (value) => {
    expect(isDigest(value)).toBe(false);
    try {
      parseDigest(value);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(OciValidationError);
      expect((error as OciValidationError).code).toBe('DIGEST_INVALID');
    }
  });

  it.each([
    [`md5:${'a'.repeat(32)}`, 'unsupported algorithm "md5"'],
    [`sha256:${'a'.repeat(63)}`, 'needs 64 hex characters, got 63'],
    [`sha256:${'A'.repeat(64)}`, 'lowercase hex'],
    ['sha256', 'expected <algorithm>:<hex>'],
  ])('explains why %j is invalid', (value, fragment) => {
    expect(() => parseDigest(value)).toThrow(fragment);
  });

  it('never throws anything but DIGEST_INVALID on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        try {
          const parsed = parseDigest(value);
          expect(`${parsed.algorithm}:${parsed.hex}`).toBe(value);
        } catch (error) {
          expect(error).toBeInstanceOf(OciValidationError);
          expect((error as OciValidationError).code).toBe('DIGEST_INVALID');
        }
      }),
    );
  });
});

describe('formatDigest', () => {
  it('joins algorithm and hex', () => {
    expect(formatDigest('sha256', hex64)).toBe(`sha256:${hex64}`);
    expect(formatDigest('sha512', hex128)).toBe(`sha512:${hex128}`);
  });

  it('refuses hex of the wrong shape', () => {
    expect(() => formatDigest('sha256', 'abc')).toThrow(OciValidationError);
    expect(() => formatDigest('sha512', hex64)).toThrow(OciValidationError);
  });

  it('round-trips with parseDigest', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('sha256' as const, 'sha512' as const),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        (algorithm, bytes) => {
          const hex = Buffer.from(bytes)
            .toString('hex')
            .slice(0, algorithm === 'sha256' ? 64 : 128);
          expect(parseDigest(formatDigest(algorithm, hex))).toEqual({ algorithm, hex });
        },
      ),
    );
  });
});

describe('digestOf', () => {
  it('matches known vectors', () => {
    expect(digestOf('')).toBe(EMPTY_SHA256);
    expect(digestOf(new Uint8Array())).toBe(EMPTY_SHA256);
    expect(digestOf('{}')).toBe(
      'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
    );
    expect(digestOf('abc', 'sha512')).toBe(
      'sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    );
  });

  it('hashes strings as UTF-8', () => {
    expect(digestOf('é')).toBe(digestOf(new Uint8Array([0xc3, 0xa9])));
  });
});

describe('Digester', () => {
  it('equals digestOf for any split of the input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }),
        fc.constantFrom('sha256' as const, 'sha512' as const),
        (chunks, algorithm) => {
          const digester = new Digester(algorithm);
          for (const chunk of chunks) digester.update(chunk);
          const whole = Buffer.concat(chunks);
          expect(digester.bytes).toBe(whole.length);
          expect(digester.digest()).toBe(digestOf(whole, algorithm));
        },
      ),
    );
  });

  it('defaults to sha256 and is stable after digest()', () => {
    const digester = new Digester();
    digester.update(new TextEncoder().encode('hello'));
    const first = digester.digest();
    expect(first).toBe(`sha256:${createHash('sha256').update('hello').digest('hex')}`);
    expect(digester.digest()).toBe(first);
    expect(() => digester.update(new Uint8Array([1]))).toThrow(/after digest/);
  });

  it('refuses an unknown algorithm', () => {
    expect(() => new Digester('md5' as 'sha256')).toThrow(OciValidationError);
  });
});

describe('Digester.copy', () => {
  it('forks the state: both continue independently from the same point', () => {
    const base = new Digester();
    base.update(Buffer.from('hello '));
    const fork = base.copy();
    base.update(Buffer.from('world'));
    fork.update(Buffer.from('there'));
    expect(base.digest()).toBe(digestOf('hello world'));
    expect(fork.digest()).toBe(digestOf('hello there'));
    expect(fork.bytes).toBe(11);
  });
});
