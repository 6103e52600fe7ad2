import { describe, expect, it } from 'vitest';
import {
  ContentSizeMismatchError,
  DigestMismatchError,
  OciValidationError,
  SizeMismatchError,
} from '../src/index.js';

describe('error classes', () => {
  it('OciValidationError carries code, field and name', () => {
    const error = new OciValidationError(
      'MANIFEST_INVALID',
      'layers[0].size: bad',
      'layers[0].size',
    );
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      name: 'OciValidationError',
      code: 'MANIFEST_INVALID',
      field: 'layers[0].size',
      message: 'layers[0].size: bad',
    });
    const bare = new OciValidationError('NAME_INVALID', 'bad name');
    expect(Object.hasOwn(bare, 'field')).toBe(false);
  });

  it('DigestMismatchError reports both digests and the registry error code', () => {
    const error = new DigestMismatchError('sha256:aa', 'sha256:bb');
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      name: 'DigestMismatchError',
      code: 'DIGEST_INVALID',
      expected: 'sha256:aa',
      actual: 'sha256:bb',
    });
    expect(error.message).toContain('sha256:aa');
    expect(error.message).toContain('sha256:bb');
  });

  it('ContentSizeMismatchError reports both sizes, and says "at least" when cut off', () => {
    const short = new ContentSizeMismatchError(10, 4);
    expect(short).toMatchObject({
      name: 'ContentSizeMismatchError',
      code: 'SIZE_INVALID',
      expected: 10,
      actual: 4,
    });
    expect(short.message).toBe('size mismatch: expected 10 bytes, got 4');
    expect(new ContentSizeMismatchError(10, 12).message).toContain('at least 12');
    expect(new SizeMismatchError(1, 2)).toBeInstanceOf(ContentSizeMismatchError);
  });
});
