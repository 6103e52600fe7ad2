import { createHash, timingSafeEqual } from 'node:crypto';
import { hashToken, type Store, type Token } from '@epoch/store';
import type { Logger } from '../log.js';
import type { Credentials } from './credentials.js';
import {
  anonymousPrincipal,
  type Grant,
  type Principal,
  type RepositoryAction,
  ssoPrincipal,
  staticTokenPrincipal,
  tokenPrincipal,
} from './principal.js';
import type { Signer } from './signer.js';

/** Settings the authenticator reads (from `ServerConfig`). */
export interface AuthSettings {
  /** `EPOCH_REGISTRY_TOKEN`. */
  registryToken: string | undefined;
  /** `EPOCH_ANONYMOUS_PULL`. */
  anonymousPull: boolean;
  /** `EPOCH_ANONYMOUS_PUSH`: upstream's open writes, from any host. */
  anonymousPush: boolean;
  /** `SSO_ADMIN_EMAILS`, lower-cased. */
  adminEmails: readonly string[];
}

/** Credentials were presented but are not valid; the reason is safe to show the caller. */
export class InvalidCredentialsError extends Error {
  override readonly name = 'InvalidCredentialsError';
  /** The known token that was refused (revoked or expired), for the audit log. */
  readonly token: string | undefined;

  constructor(message: string, token?: string) {
    super(message);
    this.token = token;
  }
}

/**
 * How long a token lookup is trusted. Revocation must reach every process within 5 s, so a
 * process re-reads a token at most this long after it last did.
 */
const TOKEN_CACHE_MS = 2000;
/** `lastUsed` is written at most this often per token and process, off the request path. */
const TOUCH_EVERY_MS = 60_000;
const CACHE_LIMIT = 10_000;

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;

/** Whether a socket address is a loopback client. */
export function isLoopback(remote: string | undefined): boolean {
  return remote !== undefined && LOOPBACK.test(remote);
}

interface CachedToken {
  token: Token | undefined;
  at: number;
}

/** Claims of a registry access JWT (see `TokenService`). */
export interface AccessClaims {
  /** Who it was issued to, for logs and audit. */
  name: string;
  kind: Principal['kind'];
  tid?: number;
  access: { type: 'repository'; name: string; actions: RepositoryAction[] }[];
}

/** Claims of a session cookie. */
export interface SessionClaims {
  /** `sso` (an SSO login) or `token` (signed in with a token on the sign-in page). */
  via: 'sso' | 'token';
  email?: string;
  tid?: number;
  /** Anti-CSRF value the dashboard echoes in `X-CSRF-Token`. */
  csrf: string;
}

/**
 * Turns credentials into a {@link Principal}: the static token (compared in constant time), a
 * database token (by SHA-256, cached for {@link TOKEN_CACHE_MS}), a JWT this server issued, or a
 * session cookie, each re-checked against its token's revocation and expiry.
 */
export class Authenticator {
  readonly #index: Store;
  readonly #settings: AuthSettings;
  readonly #signer: Signer;
  readonly #log: Logger;
  readonly #staticDigest: Buffer | undefined;
  readonly #byHash = new Map<string, CachedToken>();
  readonly #byId = new Map<number, CachedToken>();
  readonly #touched = new Map<number, number>();
  #tokensExist: { value: boolean; at: number } | undefined;

  constructor(index: Store, settings: AuthSettings, signer: Signer, log: Logger) {
    this.#index = index;
    this.#settings = settings;
    this.#signer = signer;
    this.#log = log;
    this.#staticDigest = settings.registryToken ? sha256(settings.registryToken) : undefined;
  }

  get settings(): AuthSettings {
    return this.#settings;
  }

  get signer(): Signer {
    return this.#signer;
  }

  /**
   * The anonymous principal for a client at `remote`. Writes are open to it when
   * `EPOCH_ANONYMOUS_PUSH` is on, or out of the box: no static token configured and no token
   * ever created, and the client is on loopback.
   */
  async anonymous(remote: string | undefined): Promise<Principal> {
    return anonymousPrincipal({
      pull: this.#settings.anonymousPull,
      write: await this.openWrites(remote),
    });
  }

  /** Whether anonymous writes are accepted from `remote` (see {@link anonymous}). */
  async openWrites(remote: string | undefined): Promise<boolean> {
    if (this.#settings.anonymousPush) return true;
    if (this.#settings.registryToken || !isLoopback(remote)) return false;
    return !(await this.#anyTokens());
  }

  /** The principal behind `credentials`; throws {@link InvalidCredentialsError} if they are bad. */
  async resolve(credentials: Credentials, remote: string | undefined): Promise<Principal> {
    switch (credentials.kind) {
      case 'none':
        return this.anonymous(remote);
      case 'secret':
        return this.fromSecret(credentials.secret);
      case 'jwt':
        return this.fromAccessToken(credentials.jwt);
    }
  }

  /** The static registry token or a database token. */
  async fromSecret(secret: string): Promise<Principal> {
    if (this.#staticDigest && timingSafeEqual(sha256(secret), this.#staticDigest)) {
      return staticTokenPrincipal();
    }
    if (secret.length > 512) throw new InvalidCredentialsError('invalid token');
    const token = await this.#tokenByHash(hashToken(secret));
    return tokenPrincipal(this.#usable(token));
  }

  /** A registry access JWT: exactly the scopes it was issued for, while its token lives. */
  async fromAccessToken(jwt: string): Promise<Principal> {
    const claims = (await this.#signer.verify('access', jwt)) as AccessClaims | undefined;
    if (!claims || !Array.isArray(claims.access)) {
      throw new InvalidCredentialsError('invalid or expired bearer token');
    }
    if (typeof claims.tid === 'number') this.#usable(await this.tokenById(claims.tid));
    // Repository names cannot contain `*` or `?`, so a name is a pattern matching only itself.
    const grants: Grant[] = claims.access.map((a) => ({ pattern: a.name, actions: a.actions }));
    return {
      name: String(claims.name ?? 'anonymous'),
      kind: claims.kind,
      grants,
      api: 'none',
      scoped: true,
      ...(typeof claims.tid === 'number' ? { tokenId: claims.tid } : {}),
    };
  }

  /** The principal a refresh token (from `/v2/token`) stands for, while its token lives. */
  async fromRefreshToken(jwt: string): Promise<Principal> {
    const claims = await this.#signer.verify('refresh', jwt);
    if (claims?.kind === 'token' && typeof claims.tid === 'number') {
      return tokenPrincipal(this.#usable(await this.tokenById(claims.tid)));
    }
    if (claims?.kind === 'static-token' && this.#staticDigest) return staticTokenPrincipal();
    throw new InvalidCredentialsError('invalid or expired refresh token');
  }

  /** A session cookie's principal, or `undefined` when the cookie is not a valid session. */
  async fromSession(cookie: string): Promise<(Principal & { csrf: string }) | undefined> {
    const claims = (await this.#signer.verify('session', cookie)) as SessionClaims | undefined;
    if (!claims || typeof claims.csrf !== 'string') return undefined;
    if (claims.via === 'sso' && typeof claims.email === 'string') {
      const email = claims.email.toLowerCase();
      return {
        ...ssoPrincipal(email, this.#settings.adminEmails.includes(email)),
        csrf: claims.csrf,
      };
    }
    if (claims.via === 'token' && typeof claims.tid === 'number') {
      try {
        const token = this.#usable(await this.tokenById(claims.tid));
        return { ...tokenPrincipal(token), kind: 'session', csrf: claims.csrf };
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** A database token by id, through the same short cache as lookups by hash. */
  async tokenById(id: number): Promise<Token | undefined> {
    const now = Date.now();
    const hit = this.#byId.get(id);
    if (hit && now - hit.at < TOKEN_CACHE_MS) return hit.token;
    const token = await this.#index.findTokenById(id);
    remember(this.#byId, id, { token, at: now });
    return token;
  }

  /** Forgets cached token state in this process (after a revoke here). */
  forget(): void {
    this.#byHash.clear();
    this.#byId.clear();
    this.#tokensExist = undefined;
  }

  async #tokenByHash(hash: string): Promise<Token | undefined> {
    const now = Date.now();
    const hit = this.#byHash.get(hash);
    if (hit && now - hit.at < TOKEN_CACHE_MS) return hit.token;
    // Unknown hashes are cached too: a flood of bad credentials costs one query per 2 s each.
    const token = await this.#index.findTokenByHash(hash);
    remember(this.#byHash, hash, { token, at: now });
    return token;
  }

  /** The token if it is active (and records the use); otherwise why not. */
  #usable(token: Token | undefined): Token {
    if (!token) throw new InvalidCredentialsError('invalid token');
    if (token.revokedAt) {
      throw new InvalidCredentialsError(`token ${token.name} was revoked`, token.name);
    }
    if (token.expiresAt && token.expiresAt.getTime() <= Date.now()) {
      throw new InvalidCredentialsError(`token ${token.name} has expired`, token.name);
    }
    this.#touch(token.id);
    return token;
  }

  #touch(id: number): void {
    const now = Date.now();
    if (now - (this.#touched.get(id) ?? 0) < TOUCH_EVERY_MS) return;
    remember(this.#touched, id, now);
    this.#index
      .touchToken(id)
      .catch((err: unknown) => this.#log.warn({ err }, 'token touch failed'));
  }

  async #anyTokens(): Promise<boolean> {
    const now = Date.now();
    // Once a token exists there always will be one (revoked tokens stay), so `true` is final.
    if (
      this.#tokensExist &&
      (this.#tokensExist.value || now - this.#tokensExist.at < TOKEN_CACHE_MS)
    ) {
      return this.#tokensExist.value;
    }
    const value = await this.#index.hasTokens();
    this.#tokensExist = { value, at: now };
    return value;
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (map.size >= CACHE_LIMIT) map.clear();
  map.set(key, value);
}
