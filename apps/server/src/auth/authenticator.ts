import { createHash, timingSafeEqual } from 'node:crypto';
import { hashToken, type Store, type Token } from '@epoch/store';
import type { Logger } from '../log.js';
import type { Credentials } from './credentials.js';
import {
  allowedActions,
  anonymousPrincipal,
  type Grant,
  type Principal,
  type RepositoryAction,
  ssoPrincipal,
  staticTokenPrincipal,
  tokenPrincipal,
} from './principal.js';
import type { Signer } from './signer.js';
import { type SsoAllowList, ssoAllows } from './sso.js';

/** Settings the authenticator reads (from `ServerConfig`). */
export interface AuthSettings {
  /** `EPOCH_REGISTRY_TOKEN`. */
  registryToken: string | undefined;
  /** `EPOCH_ANONYMOUS_PULL`. */
  anonymousPull: boolean;
  /** `EPOCH_ANONYMOUS_PUSH`: upstream's open writes, from any host. */
  anonymousPush: boolean;
  /** Who may sign in with SSO and who is admin; undefined when SSO is off. */
  sso: SsoAllowList | undefined;
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

interface CachedToken {
  token: Token | undefined;
  at: number;
}

/**
 * What a JWT this server issued says about the credential it was issued for, so that each use
 * can check that credential still stands (see `Authenticator.issuer`): a database token by id,
 * the static registry token by a keyed fingerprint, or the anonymous policy, which is simply
 * applied again as it is now.
 */
export interface IssuerClaims {
  /** Who it was issued to, for logs and audit. */
  name: string;
  kind: Principal['kind'];
  /** The database token, for `token`. */
  tid?: number;
  /** Fingerprint of the static registry token, for `static-token`. */
  sfp?: string;
}

/** Claims of a registry access JWT (issued by `/v2/token`). */
export interface AccessClaims extends IssuerClaims {
  access: { type: 'repository'; name: string; actions: RepositoryAction[] }[];
}

/** Claims of a session cookie. */
export interface SessionClaims {
  /** `sso` (an SSO login) or `token` (signed in with a token on the sign-in page). */
  via: 'sso' | 'token';
  email?: string;
  /** Google hosted domain of an SSO account, for the allow-list check on each use. */
  hd?: string;
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
  /** What JWTs issued to the static token carry: a keyed hash, safe to put in a token. */
  readonly #staticFingerprint: string | undefined;
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
    this.#staticFingerprint = settings.registryToken
      ? signer.fingerprint(settings.registryToken)
      : undefined;
  }

  get settings(): AuthSettings {
    return this.#settings;
  }

  get signer(): Signer {
    return this.#signer;
  }

  /**
   * The CSRF value of the local open mode (see `RequestAuth.localCsrf`): the same in every
   * process sharing the signing secret, readable only by a same-origin page through `/auth/me`.
   */
  get localCsrf(): string {
    return this.#signer.fingerprint('local anonymous csrf');
  }

  /**
   * The anonymous principal. Writes are open to it when `EPOCH_ANONYMOUS_PUSH` is on, or out of
   * the box for a `local` client (see `isLocalClient`): no static token is configured and no
   * token was ever created. That local client then also administers the registry through
   * `/api/` and the dashboard, as it could through `/v2/`.
   */
  async anonymous(local: boolean): Promise<Principal> {
    const open = local && (await this.#openLocally());
    return anonymousPrincipal({
      pull: this.#settings.anonymousPull,
      write: this.#settings.anonymousPush || open,
      admin: open,
    });
  }

  /** Whether the out-of-the-box open mode is on: no static token, no token created yet. */
  async #openLocally(): Promise<boolean> {
    if (this.#settings.registryToken) return false;
    return !(await this.#anyTokens());
  }

  /** Whether anonymous writes are accepted from a client (see {@link anonymous}). */
  async openWrites(local: boolean): Promise<boolean> {
    return this.#settings.anonymousPush || (local && (await this.#openLocally()));
  }

  /** The principal behind `credentials`; throws {@link InvalidCredentialsError} if they are bad. */
  async resolve(credentials: Credentials, local: boolean): Promise<Principal> {
    switch (credentials.kind) {
      case 'none':
        return this.anonymous(local);
      case 'secret':
        return this.fromSecret(credentials.secret);
      case 'jwt':
        return this.fromAccessToken(credentials.jwt, local);
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

  /**
   * A registry access JWT: the scopes it was issued for, but never more than the credential it
   * was issued for grants now. A JWT of a revoked or expired token, or of a static token that
   * has since been changed, is refused; an anonymous JWT carries only what the anonymous policy
   * grants this client today.
   */
  async fromAccessToken(jwt: string, local: boolean): Promise<Principal> {
    const claims = (await this.#signer.verify('access', jwt)) as AccessClaims | undefined;
    if (!claims || !Array.isArray(claims.access)) {
      throw new InvalidCredentialsError('invalid or expired bearer token');
    }
    const issuer = await this.#issuer(claims, local);
    // Repository names cannot contain `*` or `?`, so a name is a pattern matching only itself.
    const grants: Grant[] = claims.access.map((a) => {
      const now = allowedActions(issuer, a.name);
      return { pattern: a.name, actions: a.actions.filter((action) => now.has(action)) };
    });
    return {
      name: String(claims.name ?? 'anonymous'),
      kind: issuer.kind,
      grants,
      api: 'none',
      scoped: true,
      ...(issuer.tokenId !== undefined ? { tokenId: issuer.tokenId } : {}),
    };
  }

  /** The principal a refresh token (from `/v2/token`) stands for, while its credential does. */
  async fromRefreshToken(jwt: string): Promise<Principal> {
    const claims = (await this.#signer.verify('refresh', jwt)) as IssuerClaims | undefined;
    if (!claims || claims.kind === 'anonymous') {
      throw new InvalidCredentialsError('invalid or expired refresh token');
    }
    return this.#issuer(claims, false);
  }

  /** What a JWT issued to `principal` must carry to be checked again on each use. */
  issuerClaims(principal: Principal): IssuerClaims {
    return {
      name: principal.name,
      kind: principal.kind,
      ...(principal.tokenId !== undefined ? { tid: principal.tokenId } : {}),
      ...(principal.kind === 'static-token' && this.#staticFingerprint
        ? { sfp: this.#staticFingerprint }
        : {}),
    };
  }

  /**
   * The credential a JWT was issued for, as it stands now; refused when it no longer does.
   * Only these kinds of principal are ever issued JWTs (sessions use their cookie).
   */
  async #issuer(claims: IssuerClaims, local: boolean): Promise<Principal> {
    switch (claims.kind) {
      case 'token':
        if (typeof claims.tid === 'number') {
          return tokenPrincipal(this.#usable(await this.tokenById(claims.tid)));
        }
        break;
      case 'static-token':
        if (
          this.#staticFingerprint &&
          typeof claims.sfp === 'string' &&
          constantTimeEquals(claims.sfp, this.#staticFingerprint)
        ) {
          return staticTokenPrincipal();
        }
        throw new InvalidCredentialsError('the registry token this was issued for has changed');
      case 'anonymous':
        return this.anonymous(local);
    }
    throw new InvalidCredentialsError('invalid or expired token');
  }

  /** A session cookie's principal, or `undefined` when the cookie is not a valid session. */
  async fromSession(cookie: string): Promise<(Principal & { csrf: string }) | undefined> {
    const claims = (await this.#signer.verify('session', cookie)) as SessionClaims | undefined;
    if (!claims || typeof claims.csrf !== 'string') return undefined;
    if (claims.via === 'sso' && typeof claims.email === 'string') {
      const email = claims.email.toLowerCase();
      const sso = this.#settings.sso;
      // A session lasts only while the allow-lists it was granted under still let it in.
      if (!sso || !ssoAllows(sso, email, typeof claims.hd === 'string' ? claims.hd : undefined)) {
        return undefined;
      }
      return { ...ssoPrincipal(email, sso.adminEmails.includes(email)), csrf: claims.csrf };
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
    const token = await this.#index.tokens.findById(id);
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
    const token = await this.#index.tokens.findByHash(hash);
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
    this.#index.tokens
      .touch(id)
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
    const value = await this.#index.tokens.hasAny();
    this.#tokensExist = { value, at: now };
    return value;
  }
}

function constantTimeEquals(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (map.size >= CACHE_LIMIT) map.clear();
  map.set(key, value);
}
