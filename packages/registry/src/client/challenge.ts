/** A parsed `WWW-Authenticate` challenge: its scheme and parameters (lower-cased keys). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

// auth-param = token "=" ( token / quoted-string ). Challenges and their parameters are both
// comma-separated, so a new challenge starts at a token that is not followed by "=".
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/**
 * Parses a `WWW-Authenticate` header (RFC 7235) into its challenges, e.g.
 * `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let rest = header.trim();
  let current: Challenge | undefined;
  while (rest.length > 0) {
    const token = TOKEN.exec(rest)?.[0];
    if (!token) {
      rest = rest.slice(1).trimStart();
      continue;
    }
    rest = rest.slice(token.length).trimStart();
    if (!rest.startsWith('=')) {
      // A token not followed by "=" names the scheme of a new challenge.
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
      continue;
    }
    rest = rest.slice(1).trimStart();
    let value = '';
    if (rest.startsWith('"')) {
      let i = 1;
      while (i < rest.length && rest[i] !== '"') {
        if (rest[i] === '\\' && i + 1 < rest.length) i++;
        value += rest[i];
        i++;
      }
      rest = rest.slice(i + 1);
    } else {
      value = /^[^,\s]*/.exec(rest)?.[0] ?? '';
      rest = rest.slice(value.length);
    }
    if (current) current.params[token.toLowerCase()] = value;
    rest = rest.replace(/^\s*,?\s*/, '');
  }
  return out;
}

/**
 * The `rel="next"` target of a `Link` header (distribution-spec pagination), resolved against
 * the request URL.
 */
export function nextLink(header: string | undefined, base: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m?.[1] !== undefined && /rel="?next"?/.test(m[2] ?? '')) return new URL(m[1], base).href;
  }
  return undefined;
}
