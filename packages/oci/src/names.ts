import { OciValidationError } from './errors.js';
import { quote } from './quote.js';

/** Longest repository name accepted, in characters. */
export const MAX_NAME_LENGTH = 255;

/** Longest tag accepted, in characters. */
export const MAX_TAG_LENGTH = 128;

/**
 * The distribution-spec repository name grammar. Every separator must sit between two
 * alphanumeric runs, which rules out `..`, `/_digests`, leading or trailing separators, empty
 * components and uppercase. Callers check the length first, so the (at worst quadratic)
 * backtracking on runs of `-` is bounded by {@link MAX_NAME_LENGTH}.
 */
export const REPOSITORY_NAME_PATTERN =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

/** The distribution-spec tag grammar. */
export const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Whether `name` is a valid repository name (distribution-spec grammar, at most 255 chars). */
export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && REPOSITORY_NAME_PATTERN.test(name);
}

/**
 * Checks a repository name.
 *
 * @throws {OciValidationError} `NAME_INVALID`, saying what is wrong with it
 */
export function assertRepositoryName(name: string): void {
  if (isValidRepositoryName(name)) return;
  throw new OciValidationError(
    'NAME_INVALID',
    `invalid repository name ${quote(name)}: ${explainName(name)}`,
  );
}

/** Whether `tag` is a valid tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
export function isValidTag(tag: string): boolean {
  return TAG_PATTERN.test(tag);
}

/**
 * Checks a tag.
 *
 * @throws {OciValidationError} `TAG_INVALID`, saying what is wrong with it
 */
export function assertTag(tag: string): void {
  if (isValidTag(tag)) return;
  throw new OciValidationError('TAG_INVALID', `invalid tag ${quote(tag)}: ${explainTag(tag)}`);
}

const alnum = /[a-z0-9]/;
const separatorPattern = /^(?:\.|_|__|-+)$/;

// Walks the name once to name the first rule it breaks; only called on rejected names.
function explainName(name: string): string {
  if (name.length === 0) return 'must not be empty';
  if (name.length > MAX_NAME_LENGTH) {
    return `is ${name.length} characters long, the limit is ${MAX_NAME_LENGTH}`;
  }
  for (const ch of name) {
    if (ch >= 'A' && ch <= 'Z') return 'must be lowercase';
    if (!/[a-z0-9._\-/]/.test(ch)) return `contains the character ${describeChar(ch)}`;
  }
  const components = name.split('/');
  for (const [index, component] of components.entries()) {
    if (component.length === 0) {
      if (index === 0) return 'must not start with "/"';
      if (index === components.length - 1) return 'must not end with "/"';
      return 'must not contain an empty path component ("//")';
    }
    const first = component[0] ?? '';
    const last = component[component.length - 1] ?? '';
    if (!alnum.test(first)) {
      return `path component ${quote(component)} must start with a letter or digit`;
    }
    if (!alnum.test(last)) {
      return `path component ${quote(component)} must end with a letter or digit`;
    }
    for (const separator of component.match(/[^a-z0-9]+/g) ?? []) {
      if (!separatorPattern.test(separator)) {
        return `path component ${quote(component)} has the separator ${quote(separator)} (allowed: ".", "_", "__", or dashes)`;
      }
    }
  }
  return 'does not match the repository name grammar';
}

function explainTag(tag: string): string {
  if (tag.length === 0) return 'must not be empty';
  if (tag.length > MAX_TAG_LENGTH) {
    return `is ${tag.length} characters long, the limit is ${MAX_TAG_LENGTH}`;
  }
  if (tag.startsWith('.') || tag.startsWith('-')) return 'must not start with "." or "-"';
  for (const ch of tag) {
    if (!/[a-zA-Z0-9._-]/.test(ch)) return `contains the character ${describeChar(ch)}`;
  }
  return 'does not match the tag grammar';
}

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  const hex = code.toString(16).toUpperCase().padStart(4, '0');
  return code >= 0x21 && code <= 0x7e ? `${JSON.stringify(ch)} (U+${hex})` : `U+${hex}`;
}
