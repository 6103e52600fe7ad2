import { type Digest, parseDigest } from './digest.js';
import { OciValidationError } from './errors.js';
import { assertRepositoryName, assertTag } from './names.js';
import { quote } from './quote.js';

/** A parsed image reference: `[host/]name[:tag][@digest]`. */
export interface Reference {
  /** Registry host with optional port, as written: `localhost:4300`, `ghcr.io`, `[::1]:5000`. */
  host?: string;
  /** Repository name, as written (no `docker.io/library/` normalisation). */
  name: string;
  /** Tag, if the reference has one (or the default tag was applied). */
  tag?: string;
  /** Digest, if the reference pins one. */
  digest?: Digest;
}

/** Options of {@link parseReference}. */
export interface ParseReferenceOptions {
  /**
   * Tag to use when the reference has neither tag nor digest. Defaults to `latest`; `null` or
   * `''` leaves such a reference without a tag.
   */
  defaultTag?: string | null;
}

/** The `<reference>` of a `/v2/<name>/manifests/<reference>` path, classified. */
export type ManifestTarget = { kind: 'digest'; digest: Digest } | { kind: 'tag'; tag: string };

// Longest host + name + tag + digest, with room to spare: longer input is refused before any
// regular expression runs on it.
const MAX_REFERENCE_LENGTH = 1024;
const MAX_HOST_LENGTH = 255;
const hostComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const hostPattern = new RegExp(
  `^(?:${hostComponent}(?:\\.${hostComponent})*|\\[[a-fA-F0-9:]+\\])(?::([0-9]{1,5}))?$`,
);

/**
 * Parses `[host/]name[:tag][@digest]`. As in Docker, the first path component is a host iff it
 * contains `.` or `:` or is `localhost`; unlike Docker, names are not rewritten to
 * `docker.io/library/…`.
 *
 * @throws {OciValidationError} `REFERENCE_INVALID` for a malformed reference or host, and
 *   `NAME_INVALID`, `TAG_INVALID` or `DIGEST_INVALID` for a bad part
 */
export function parseReference(value: string, options: ParseReferenceOptions = {}): Reference {
  if (value.length === 0) throw invalid(value, 'it is empty');
  if (value.length > MAX_REFERENCE_LENGTH) {
    throw invalid(value, `it is longer than ${MAX_REFERENCE_LENGTH} characters`);
  }

  let rest = value;
  const reference: Reference = { name: '' };

  const at = rest.indexOf('@');
  if (at >= 0) {
    const digest = rest.slice(at + 1);
    parseDigest(digest);
    reference.digest = digest as Digest;
    rest = rest.slice(0, at);
  }

  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      assertHost(value, first);
      reference.host = first;
      rest = rest.slice(slash + 1);
    }
  }

  // Names never contain ':', so the last one (if any) starts the tag.
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    const tag = rest.slice(colon + 1);
    assertTag(tag);
    reference.tag = tag;
    rest = rest.slice(0, colon);
  }

  if (rest.length === 0) throw invalid(value, 'the repository name is missing');
  assertRepositoryName(rest);
  reference.name = rest;

  const defaultTag = options.defaultTag === undefined ? 'latest' : options.defaultTag;
  if (reference.tag === undefined && reference.digest === undefined && defaultTag) {
    assertTag(defaultTag);
    reference.tag = defaultTag;
  }
  return reference;
}

function assertHost(value: string, host: string): void {
  const match = host.length <= MAX_HOST_LENGTH ? hostPattern.exec(host) : null;
  if (match === null) throw invalid(value, `${quote(host)} is not a valid registry host`);
  const port = match[1];
  if (port !== undefined && Number(port) > 65535) {
    throw invalid(value, `port ${port} of ${quote(host)} is out of range`);
  }
}

function invalid(value: string, reason: string): OciValidationError {
  return new OciValidationError(
    'REFERENCE_INVALID',
    `invalid reference ${quote(value)}: ${reason}`,
  );
}

/**
 * Writes a reference back as `[host/]name[:tag][@digest]`. Without a host, a name whose first
 * component contains `.` reads back as `host/rest`: that ambiguity is Docker's grammar.
 */
export function formatReference(ref: Reference): string {
  const host = ref.host ? `${ref.host}/` : '';
  const tag = ref.tag ? `:${ref.tag}` : '';
  const digest = ref.digest ? `@${ref.digest}` : '';
  return `${host}${ref.name}${tag}${digest}`;
}

/**
 * The part after the name in API paths (`/v2/<name>/manifests/<target>`): the digest if the
 * reference has one, since it is exact, else the tag.
 *
 * @throws {OciValidationError} `REFERENCE_INVALID` if the reference has neither
 */
export function referenceTarget(ref: Reference): string {
  const target = ref.digest ?? ref.tag;
  if (target === undefined) {
    throw new OciValidationError(
      'REFERENCE_INVALID',
      `reference ${quote(formatReference(ref))} has neither tag nor digest`,
    );
  }
  return target;
}

/**
 * Whether a `manifests/<reference>` path segment is meant as a digest rather than a tag. Tags
 * can never contain `:`, so anything with one is a digest candidate; it still has to pass
 * {@link parseDigest}. Use {@link parseManifestTarget} to classify and validate in one step.
 */
export function isDigestReference(ref: string): boolean {
  return ref.includes(':');
}

/**
 * Classifies and validates a `manifests/<reference>` path segment.
 *
 * @throws {OciValidationError} `DIGEST_INVALID` or `TAG_INVALID`
 */
export function parseManifestTarget(ref: string): ManifestTarget {
  if (isDigestReference(ref)) {
    parseDigest(ref);
    return { kind: 'digest', digest: ref as Digest };
  }
  assertTag(ref);
  return { kind: 'tag', tag: ref };
}
