import { timingSafeEqual } from 'node:crypto';
import { isValidRepositoryName } from '@epoch/oci';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Env } from '../http/env.js';
import { HttpProblem } from '../http/errors.js';
import { type Authenticator, InvalidCredentialsError } from './authenticator.js';
import { baseUrl } from './base-url.js';
import { parseAuthorization } from './credentials.js';
import { isLocalClient } from './local-client.js';
import { type Access, authorize } from './policy.js';
import type { RepositoryAction } from './principal.js';
import { formatScope } from './scope.js';

/** Name of the dashboard's session cookie (upstream's). */
export const SESSION_COOKIE = 'epoch_session';
/** Header the dashboard sends with every state-changing call made with its session cookie. */
export const CSRF_HEADER = 'x-csrf-token';
/** Service name in challenges and tokens. */
export const SERVICE = 'epoch';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What the auth middleware leaves on the context. */
export interface RequestAuth {
  /** Set when the credentials were bad; the route's access check then refuses with it. */
  invalid?: string;
  /** Name of a known token that was refused (revoked, expired), for the audit log. */
  refusedToken?: string;
  /** The session's CSRF value when the caller authenticated with the session cookie. */
  csrf?: string;
  /**
   * The CSRF value a local anonymous administrator (the out-of-the-box mode) must send with
   * state-changing `/api/` calls: a web page on another site can make a browser on this machine
   * call the server, but cannot read this value or send a custom header without CORS.
   */
  localCsrf?: string;
}

/**
 * Resolves the caller's principal once per request (header credentials first, then the session
 * cookie, else anonymous). Bad credentials do not fail here: public routes stay reachable, and
 * {@link requireAccess} refuses everything else with a 401 that says why.
 */
export function authenticate(auth: Authenticator): MiddlewareHandler<Env> {
  return async (c, next) => {
    const local = isLocalClient(c);
    const credentials = parseAuthorization(c.req.header('authorization'));
    const state: RequestAuth = {};
    if (credentials === undefined) {
      state.invalid = 'malformed Authorization header';
      c.set('principal', await auth.anonymous(false));
    } else if (credentials.kind !== 'none') {
      try {
        c.set('principal', await auth.resolve(credentials, local));
      } catch (err) {
        if (!(err instanceof InvalidCredentialsError)) throw err;
        state.invalid = err.message;
        if (err.token) state.refusedToken = err.token;
        c.set('principal', await auth.anonymous(false));
      }
    } else {
      const cookie = getCookie(c, SESSION_COOKIE);
      const session = cookie ? await auth.fromSession(cookie) : undefined;
      if (session) {
        const { csrf, ...principal } = session;
        state.csrf = csrf;
        c.set('principal', principal);
      } else {
        const principal = await auth.anonymous(local);
        if (principal.api === 'admin') state.localCsrf = auth.localCsrf;
        c.set('principal', principal);
      }
    }
    c.set('auth', state);
    await next();
  };
}

/**
 * Refuses the request unless its principal has `access`. Anonymous callers and holders of a
 * scoped registry JWT get 401 with a Bearer challenge naming the scope to ask for (that is how
 * docker, skopeo and containerd learn to fetch a token); callers whose own credentials lack the
 * right get 403. Cookie sessions must echo their CSRF value on state-changing requests.
 */
export function requireAccess(
  c: Context<Env>,
  access: Access,
  options: { publicUrl?: string | undefined } = {},
): void {
  if (access.kind === 'public') return;
  const principal = c.var.principal;
  const state = c.var.auth;
  const v2 = c.req.path === '/v2' || c.req.path.startsWith('/v2/');
  const challenge = (error?: string): Record<string, string> => {
    if (!v2) return {};
    const parts = [`realm="${baseUrl(c, options.publicUrl)}/v2/token"`, `service="${SERVICE}"`];
    // The scope names the repository only when it is a valid name: a challenge header must
    // never carry raw client input (a non-ASCII name cannot even be put in a header).
    if (access.kind === 'repository' && isValidRepositoryName(access.name)) {
      const actions: RepositoryAction[] =
        access.action === 'pull' ? ['pull'] : ['pull', access.action];
      parts.push(`scope="${formatScope(access.name, actions)}"`);
    }
    if (error) parts.push(`error="${error}"`);
    return { 'WWW-Authenticate': `Bearer ${parts.join(',')}` };
  };
  if (state?.invalid) {
    throw new HttpProblem(
      401,
      'UNAUTHORIZED',
      state.invalid,
      undefined,
      challenge('invalid_token'),
    );
  }
  if (!authorize(principal, access)) {
    if (principal.scoped) {
      throw new HttpProblem(
        401,
        'UNAUTHORIZED',
        'token lacks the scope for this request',
        undefined,
        challenge('insufficient_scope'),
      );
    }
    if (principal.kind === 'anonymous') {
      throw new HttpProblem(401, 'UNAUTHORIZED', 'authentication required', undefined, challenge());
    }
    throw new HttpProblem(403, 'DENIED', `${principal.name} may not ${describe(access)}`);
  }
  if (SAFE_METHODS.has(c.req.method)) return;
  // Cookie sessions on every route; the local open mode on `/api/` only (registry clients on
  // `/v2/` send no such header, and are no browser).
  const expected = state?.csrf ?? (access.kind === 'api' ? state?.localCsrf : undefined);
  if (expected !== undefined) {
    const sent = c.req.header(CSRF_HEADER);
    if (!sent || !constantTimeEquals(sent, expected)) {
      throw new HttpProblem(403, 'DENIED', 'missing or wrong X-CSRF-Token for this session');
    }
  }
}

function describe(access: Access): string {
  switch (access.kind) {
    case 'repository':
      return `${access.action} ${access.name}`;
    case 'api':
      return access.level === 'admin' ? 'administer the registry' : 'read the control API';
    case 'catalog':
      return 'list repositories';
    default:
      return 'do this';
  }
}

function constantTimeEquals(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
