import { CodeChallengeMethod, generateCodeVerifier, generateState, OAuth2Client } from 'arctic';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import type { SsoConfig } from '../config.js';

/** Provider calls that take longer than this fail the sign-in (upstream had no timeout). */
const PROVIDER_TIMEOUT_MS = 10_000;

/** A sign-in the provider or the allow-list refused; the message is safe to show. */
export class SsoError extends Error {
  override readonly name = 'SsoError';
  constructor(
    readonly status: 400 | 403 | 502,
    message: string,
  ) {
    super(message);
  }
}

/** What a sign-in in progress keeps (in a short-lived signed cookie) until the callback. */
export interface PendingLogin {
  state: string;
  verifier: string;
  nonce: string;
}

/** A signed-in user. */
export interface SsoIdentity {
  email: string;
  name: string;
  admin: boolean;
  /** Google's hosted domain of the account, when the provider names one. */
  hd?: string;
}

/** Who may sign in: the part of the SSO settings that decides it. */
export type SsoAllowList = Pick<SsoConfig, 'adminEmails' | 'allowedEmails' | 'allowedDomains'>;

/**
 * Whether `email` (lower-case) may sign in: an admin, an allowed e-mail, or an e-mail (or a
 * Google hosted domain `hd`) in an allowed domain. Checked at sign-in and again on every use of
 * a session, so narrowing the lists ends the sessions they no longer allow.
 */
export function ssoAllows(list: SsoAllowList, email: string, hd?: string): boolean {
  const domain = email.slice(email.lastIndexOf('@') + 1);
  return (
    list.adminEmails.includes(email) ||
    list.allowedEmails.includes(email) ||
    list.allowedDomains.includes(domain) ||
    (hd !== undefined && list.allowedDomains.includes(hd))
  );
}

interface Endpoints {
  authorize: string;
  token: string;
  userinfo: string | undefined;
  jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  issuer: string | undefined;
}

/**
 * Google or generic OpenID Connect sign-in: authorization code with PKCE (S256), state and nonce,
 * the ID token verified against the provider's keys (issuer, audience, expiry, nonce), a verified
 * e-mail required, then the allow-lists. Endpoints come from the explicit settings or from the
 * issuer's discovery document, fetched once.
 */
export class SsoProvider {
  readonly #config: SsoConfig;
  readonly #client: OAuth2Client;
  #endpoints: Promise<Endpoints> | undefined;

  constructor(config: SsoConfig) {
    this.#config = config;
    this.#client = new OAuth2Client(config.clientId, config.clientSecret, config.redirectUri);
  }

  get logoutUrl(): string | undefined {
    return this.#config.logoutUrl;
  }

  /** Starts a sign-in: the provider URL to send the browser to and what the callback checks. */
  async begin(): Promise<{ url: URL; pending: PendingLogin }> {
    const endpoints = await this.#resolve();
    const pending = {
      state: generateState(),
      verifier: generateCodeVerifier(),
      nonce: generateState(),
    };
    const url = this.#client.createAuthorizationURLWithPKCE(
      endpoints.authorize,
      pending.state,
      CodeChallengeMethod.S256,
      pending.verifier,
      this.#config.scopes,
    );
    url.searchParams.set('nonce', pending.nonce);
    if (this.#config.provider === 'google' && this.#config.allowedDomains.length === 1) {
      url.searchParams.set('hd', this.#config.allowedDomains[0] ?? '');
    }
    return { url, pending };
  }

  /** Finishes a sign-in: exchanges the code and returns the allowed, verified identity. */
  async finish(code: string, pending: PendingLogin): Promise<SsoIdentity> {
    const endpoints = await this.#resolve();
    let claims: JWTPayload;
    try {
      const tokens = await withTimeout(
        this.#client.validateAuthorizationCode(endpoints.token, code, pending.verifier),
      );
      claims = await this.#identityClaims(
        endpoints,
        tokens.data as Record<string, unknown>,
        pending,
      );
    } catch (err) {
      if (err instanceof SsoError) throw err;
      throw new SsoError(
        502,
        `the identity provider refused the sign-in: ${(err as Error).message}`,
      );
    }
    const email = typeof claims.email === 'string' ? claims.email.toLowerCase() : '';
    if (!email) throw new SsoError(403, 'the identity provider did not return an e-mail');
    if (claims.email_verified !== true && claims.email_verified !== 'true') {
      throw new SsoError(403, `${email} is not a verified e-mail at the identity provider`);
    }
    const hd = typeof claims.hd === 'string' ? claims.hd.toLowerCase() : undefined;
    if (!ssoAllows(this.#config, email, hd)) {
      throw new SsoError(403, `${email} is not allowed to sign in to this registry`);
    }
    const name = typeof claims.name === 'string' && claims.name ? claims.name : email;
    return { email, name, admin: this.#config.adminEmails.includes(email), ...(hd ? { hd } : {}) };
  }

  async #identityClaims(
    endpoints: Endpoints,
    data: Record<string, unknown>,
    pending: PendingLogin,
  ): Promise<JWTPayload> {
    const idToken = typeof data.id_token === 'string' ? data.id_token : undefined;
    if (idToken && endpoints.jwks) {
      const { payload } = await jwtVerify(idToken, endpoints.jwks, {
        audience: this.#config.clientId,
        ...(endpoints.issuer ? { issuer: endpoints.issuer } : {}),
      });
      if (payload.nonce !== pending.nonce)
        throw new SsoError(403, 'the ID token nonce does not match');
      return payload;
    }
    // Upstream's explicit-endpoint setup without keys: ask the provider itself (back channel,
    // with the access token) who signed in.
    if (!endpoints.userinfo || typeof data.access_token !== 'string') {
      throw new SsoError(502, 'no verifiable ID token and no userinfo endpoint');
    }
    const response = await withTimeout(
      fetch(endpoints.userinfo, { headers: { Authorization: `Bearer ${data.access_token}` } }),
    );
    if (!response.ok) throw new SsoError(502, `userinfo answered ${response.status}`);
    return (await response.json()) as JWTPayload;
  }

  #resolve(): Promise<Endpoints> {
    this.#endpoints ??= this.#discover().catch((err: unknown) => {
      this.#endpoints = undefined;
      throw err instanceof SsoError
        ? err
        : new SsoError(502, `OIDC discovery failed: ${(err as Error).message}`);
    });
    return this.#endpoints;
  }

  async #discover(): Promise<Endpoints> {
    const c = this.#config;
    let document: Record<string, unknown> = {};
    const needsDiscovery = !c.authorizeUrl || !c.tokenUrl || (!c.jwksUrl && !c.userinfoUrl);
    if (c.issuer && needsDiscovery) {
      const response = await withTimeout(fetch(`${c.issuer}/.well-known/openid-configuration`));
      if (!response.ok) throw new SsoError(502, `discovery answered ${response.status}`);
      document = (await response.json()) as Record<string, unknown>;
      if (document.issuer !== c.issuer) {
        throw new SsoError(
          502,
          `discovery names issuer ${String(document.issuer)}, expected ${c.issuer}`,
        );
      }
    }
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const authorize = c.authorizeUrl ?? str(document.authorization_endpoint);
    const token = c.tokenUrl ?? str(document.token_endpoint);
    if (!authorize || !token) throw new SsoError(502, 'no authorization or token endpoint');
    const jwksUrl = c.jwksUrl ?? str(document.jwks_uri);
    return {
      authorize,
      token,
      userinfo: c.userinfoUrl ?? str(document.userinfo_endpoint),
      jwks: jwksUrl
        ? createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: PROVIDER_TIMEOUT_MS })
        : undefined,
      issuer: c.issuer,
    };
  }
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error('the identity provider timed out')),
      PROVIDER_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
