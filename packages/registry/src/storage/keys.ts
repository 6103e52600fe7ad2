import { compareBytes } from '@epoch/oci';
import { InvalidKeyError } from './errors.js';

/**
 * The filesystem driver keeps its temporary files in `<root>/.tmp/`; the name is reserved on every
 * driver so that a store's keys stay portable between them.
 */
export const RESERVED_TOP_LEVEL = '.tmp';

/** S3's limit on the UTF-8 length of a key; applied to both drivers so a key works on either. */
export const MAX_KEY_BYTES = 1024;

// C0 controls and DEL: they have no business in a key, and NUL in particular would truncate a
// path at the syscall boundary.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks an object key and returns it unchanged, or throws `InvalidKeyError`. A key is a
 * `/`-separated relative path whose segments are non-empty and neither `.` nor `..`, with no
 * backslash and no control character, so that no key can address anything outside the store's root
 * (filesystem) or prefix (S3), and every key means the same object on both drivers.
 */
export function validateKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError(String(key));
  if (key.startsWith('/') || key.endsWith('/')) throw new InvalidKeyError(key);
  checkCommon(key);
  const segments = key.split('/');
  for (const segment of segments) checkSegment(key, segment);
  if (segments[0] === RESERVED_TOP_LEVEL) throw new InvalidKeyError(key);
  return key;
}

/**
 * Checks a listing prefix: empty (the whole store), a key, or a key followed by `/`. The last
 * segment may be partial (`blobs/sha256/ab` lists the digests starting with `ab`).
 */
export function validatePrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new InvalidKeyError(String(prefix));
  if (prefix === '') return prefix;
  validateKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}

function checkCommon(key: string): void {
  if (key.includes('\\') || CONTROL_CHARS.test(key)) throw new InvalidKeyError(key);
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new InvalidKeyError(key);
  // Lone surrogates cannot be encoded in UTF-8, so the key would silently change on the way to S3
  // or the filesystem.
  if (LONE_SURROGATE.test(key)) throw new InvalidKeyError(key);
}

function checkSegment(key: string, segment: string): void {
  if (segment === '' || segment === '.' || segment === '..') throw new InvalidKeyError(key);
}

/** Keys sort by their UTF-8 bytes, like S3 listings. */
export const compareKeys = compareBytes;
