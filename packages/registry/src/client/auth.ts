import { type Challenge, parseChallenges } from './challenge.js';
import { RegistryProtocolError, RegistryUnauthorizedError } from './errors.js';
import { errorFor, readText, type Transport } from './transport.js';

/**
 * How the client authenticates.
 * - `{ token }`: an Epoch (or any) registry token. Answering a Bearer challenge, it is sent to
 *   the token realm as Basic `_token:<token>`; if the realm refuses it, it is tried as a plain
 *   bearer token (upstream epoch's static `EPOCH_REGISTRY_TOKEN`). Basic challenges get it as
 *   `_token:<token>` too.
 * - `{ token, mode: 'bearer' }`: always sent as `Authorization: Bearer <token>`, no token dance.
 * - `{ username, password }`: Basic for Basic registries, and for the realm of Bearer ones.
 */
export type Credentials =
  | { token: string; mode?: 'auto' | 'bearer' }
  | { username: string; password: string };

/** A pull/push scope of the token flow, e.g. `repository:team/vm:pull,push`. */
export function repositoryScope(name: string, actions: readonly ('pull' | 'push')[]): string {
  return `repository:${name}:${actions.join(',')}`;
}

interface CachedToken {
  header: string;
  expires: number;
}

// Tokens are refreshed this long before they expire, so a long upload does not start with a
// token about to lapse.
const EXPIRY_MARGIN_MS = 10_000;
const DEFAULT_TOKEN_LIFETIME_S = 60;

/**
 * Answers authentication challenges and remembers the answers: a bearer token per scope set,
 * or the Basic header once the registry has asked for Basic.
 */
export class Authenticator {
  readonly #transport: Transport;
  readonly #credentials: Credentials | undefined;
  readonly #tokens = new Map<string, CachedToken>();
  #basic: string | undefined;

  constructor(transport: Transport, credentials?: Credentials) {
    this.#transport = transport;
    this.#credentials = credentials;
  }

  /** The header to send up front for a request needing `scopes`, if one is known. */
  authorization(scopes: readonly string[]): string | undefined {
    const c = this.#credentials;
    if (c && 'token' in c && c.mode === 'bearer') return `Bearer ${c.token}`;
    if (this.#basic) return this.#basic;
    const cached = this.#tokens.get(scopeKey(scopes));
    if (cached && cached.expires > Date.now()) return cached.header;
    return undefined;
  }

  /**
   * The header for Epoch's control API (`/api/`), which answers no challenge (a 401 there carries
   * no `WWW-Authenticate`), so credentials go up front: a token as the bearer itself (Epoch
   * accepts its tokens directly), a user name and password as Basic.
   */
  direct(): string | undefined {
    const c = this.#credentials;
    if (!c) return undefined;
    return 'token' in c ? `Bearer ${c.token}` : basicHeader(c);
  }

  /**
   * The header to retry a request with after a 401 carrying `wwwAuthenticate`, or `undefined`
   * when there is nothing new to try (the 401 stands).
   */
  async answer(
    wwwAuthenticate: string | undefined,
    scopes: readonly string[],
  ): Promise<string | undefined> {
    const c = this.#credentials;
    if (c && 'token' in c && c.mode === 'bearer') return undefined;
    const challenges = parseChallenges(wwwAuthenticate ?? '');
    const bearer = challenges.find((ch) => ch.scheme === 'bearer' && ch.params.realm);
    if (bearer) return this.#fetchToken(bearer, scopes);
    if (challenges.some((ch) => ch.scheme === 'basic') && c && this.#basic === undefined) {
      this.#basic = basicHeader(c);
      return this.#basic;
    }
    return undefined;
  }

  async #fetchToken(challenge: Challenge, scopes: readonly string[]): Promise<string | undefined> {
    const wanted = new Set(scopes);
    for (const s of (challenge.params.scope ?? '').split(' ')) if (s) wanted.add(s);
    const url = new URL(challenge.params.realm as string);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    for (const s of wanted) url.searchParams.append('scope', s);
    const c = this.#credentials;
    const res = await this.#transport.send({
      method: 'GET',
      url: url.href,
      headers: { accept: 'application/json', ...(c ? { authorization: basicHeader(c) } : {}) },
    });
    if (res.status !== 200) {
      const err = await errorFor('GET', res);
      // Upstream epoch and other static-token registries take the token itself as the bearer.
      if (c && 'token' in c && [401, 403, 404].includes(res.status)) {
        return `Bearer ${c.token}`;
      }
      if (res.status === 401 || res.status === 403) {
        throw new RegistryUnauthorizedError('GET', url.href, res.status, []);
      }
      throw err;
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(await readText(res.body, 1024 * 1024));
    } catch {
      throw new RegistryProtocolError(`GET ${url.href}: the token response is not JSON`);
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : doc.access_token;
    if (typeof token !== 'string' || token === '') {
      // An anonymous realm may answer with no token at all: then there is nothing to send.
      return undefined;
    }
    const lifetime =
      typeof doc.expires_in === 'number' && doc.expires_in > 0
        ? doc.expires_in
        : DEFAULT_TOKEN_LIFETIME_S;
    const header = `Bearer ${token}`;
    this.#tokens.set(scopeKey(scopes), {
      header,
      expires: Date.now() + lifetime * 1000 - EXPIRY_MARGIN_MS,
    });
    return header;
  }
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}

function basicHeader(c: Credentials): string {
  const pair = 'token' in c ? `_token:${c.token}` : `${c.username}:${c.password}`;
  return `Basic ${Buffer.from(pair).toString('base64')}`;
}
