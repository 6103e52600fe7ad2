/** Credentials as a request presents them. */
export type Credentials =
  | { kind: 'none' }
  /** A long-lived secret: a database token or the static registry token. */
  | { kind: 'secret'; secret: string }
  /** A JWT this server issued (three base64url parts). */
  | { kind: 'jwt'; jwt: string };

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_HEADER = 8192;

/**
 * Reads the `Authorization` header: `Bearer <jwt|secret>`, or `Basic` with any user name and the
 * token as password (`_token:<token>`, as docker and skopeo send after `login`). `undefined` for a
 * header that is present but malformed.
 */
export function parseAuthorization(header: string | undefined): Credentials | undefined {
  if (header === undefined || header.trim() === '') return { kind: 'none' };
  if (header.length > MAX_HEADER) return undefined;
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header.trim());
  if (!match) return undefined;
  const scheme = match[1]?.toLowerCase();
  const value = match[2] ?? '';
  if (scheme === 'bearer') {
    return JWT.test(value) ? { kind: 'jwt', jwt: value } : { kind: 'secret', secret: value };
  }
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const password = decoded.slice(colon + 1);
    if (password === '') return undefined;
    return JWT.test(password)
      ? { kind: 'jwt', jwt: password }
      : { kind: 'secret', secret: password };
  }
  return undefined;
}
