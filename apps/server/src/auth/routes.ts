import { randomBytes } from 'node:crypto';
import type { Store } from '@epoch/store';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { ApiProblem } from '../api/errors.js';
import { readJsonObject } from '../api/handler.js';
import { audit } from '../audit.js';
import type { Env } from '../http/env.js';
import type { HandlerMap, RouteHandler } from '../routes/dispatch.js';
import {
  type Authenticator,
  InvalidCredentialsError,
  type SessionClaims,
} from './authenticator.js';
import { baseUrl } from './base-url.js';
import { SESSION_COOKIE } from './guard.js';
import { type PendingLogin, SsoError, type SsoProvider } from './sso.js';

const LOGIN_COOKIE = 'epoch_login';
const LOGIN_SECONDS = 300;
const SESSION_SECONDS = 12 * 3600;

/** What the sign-in routes need. */
export interface AuthRouteDeps {
  auth: Authenticator;
  index: Store;
  sso: SsoProvider | undefined;
  publicUrl: string | undefined;
}

/**
 * Sign-in and sign-out for the dashboard (upstream's paths): `/login` and `/login/callback`
 * (SSO), `POST /auth/token` (sign in with a token, the way in when SSO is off), `/logout`,
 * `/auth/me` and `/auth/config`.
 */
export function authHandlers({ auth, index, sso, publicUrl }: AuthRouteDeps): HandlerMap {
  const secure = (c: Context<Env>) => baseUrl(c, publicUrl).startsWith('https:');

  const startSession = async (c: Context<Env>, subject: string, claims: SessionClaims) => {
    const jwt = await auth.signer.sign('session', subject, { ...claims }, SESSION_SECONDS);
    setCookie(c, SESSION_COOKIE, jwt, {
      httpOnly: true,
      sameSite: 'Lax',
      secure: secure(c),
      path: '/',
      maxAge: SESSION_SECONDS,
    });
  };

  const config: RouteHandler = async (c) =>
    c.json({
      sso: sso !== undefined,
      anonymousPull: auth.settings.anonymousPull,
    });

  const me: RouteHandler = async (c) => {
    const p = c.var.principal;
    // Anonymous callers with /api/ rights (anonymous pull, or the local open mode) get the
    // dashboard read-only, or as an administrator; everyone else must sign in.
    if (c.var.auth.invalid || (p.kind === 'anonymous' && p.api === 'none')) {
      throw new ApiProblem(401, 'UNAUTHORIZED', 'login required');
    }
    const csrfToken = c.var.auth.csrf ?? c.var.auth.localCsrf;
    return c.json({
      user: p.name,
      email: p.email ?? '',
      kind: p.kind,
      api: p.api,
      grants: p.grants,
      signedIn: p.kind !== 'anonymous',
      ...(csrfToken ? { csrfToken } : {}),
    });
  };

  const signInWithToken: RouteHandler = async (c) => {
    if (!(c.req.header('content-type') ?? '').startsWith('application/json')) {
      throw new ApiProblem(415, 'UNSUPPORTED', 'send {"token": "…"} as application/json');
    }
    const body = await readJsonObject(c);
    const secret = typeof body.token === 'string' ? body.token.trim() : '';
    let principal: Awaited<ReturnType<Authenticator['fromSecret']>>;
    try {
      principal = await auth.fromSecret(secret);
    } catch (err) {
      if (!(err instanceof InvalidCredentialsError)) throw err;
      await audit(c, index, {
        actor: 'unknown',
        action: 'login.denied',
        detail: { via: 'token', reason: err.message },
      });
      throw new ApiProblem(401, 'UNAUTHORIZED', err.message);
    }
    if (principal.tokenId === undefined) {
      throw new ApiProblem(
        403,
        'DENIED',
        'the registry token has no dashboard rights; use an API token',
      );
    }
    const csrf = randomBytes(24).toString('base64url');
    await startSession(c, principal.name, { via: 'token', tid: principal.tokenId, csrf });
    await audit(c, index, { actor: principal.name, action: 'login', detail: { via: 'token' } });
    return c.json({ user: principal.name, api: principal.api, csrfToken: csrf });
  };

  const logout: RouteHandler = async (c) => {
    const signedIn = c.var.principal.kind === 'session';
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: secure(c) });
    if (signedIn) await audit(c, index, { action: 'logout' });
    return c.redirect(sso?.logoutUrl ?? '/', 302);
  };
  const login: RouteHandler = async (c) => {
    if (!sso)
      throw new ApiProblem(
        404,
        'SSO_OFF',
        'single sign-on is not configured; sign in with a token',
      );
    const { url, pending } = await sso.begin().catch(rethrow);
    const jwt = await auth.signer.sign('login', 'login', { ...pending }, LOGIN_SECONDS);
    setCookie(c, LOGIN_COOKIE, jwt, {
      httpOnly: true,
      sameSite: 'Lax',
      secure: secure(c),
      path: '/login',
      maxAge: LOGIN_SECONDS,
    });
    return c.redirect(url.toString(), 302);
  };

  const callback: RouteHandler = async (c) => {
    if (!sso) throw new ApiProblem(404, 'SSO_OFF', 'single sign-on is not configured');
    const cookie = getCookie(c, LOGIN_COOKIE);
    // Back button after a finished sign-in: the state cookie is gone but the session is fine.
    if (!cookie && c.var.principal.kind === 'session') return c.redirect('/', 302);
    const pending = cookie
      ? ((await auth.signer.verify('login', cookie)) as PendingLogin | undefined)
      : undefined;
    const state = c.req.query('state');
    if (!pending || !state || state !== pending.state) {
      throw new ApiProblem(
        403,
        'BAD_STATE',
        'sign-in state is missing or does not match; start again at /login',
      );
    }
    deleteCookie(c, LOGIN_COOKIE, { path: '/login', secure: secure(c) });
    const error = c.req.query('error');
    if (error)
      throw new ApiProblem(403, 'SSO_DENIED', `the identity provider said: ${error.slice(0, 200)}`);
    const code = c.req.query('code');
    if (!code) throw new ApiProblem(400, 'NO_CODE', 'the callback has no authorization code');
    let identity: Awaited<ReturnType<SsoProvider['finish']>>;
    try {
      identity = await sso.finish(code, pending);
    } catch (err) {
      if (err instanceof SsoError) {
        await audit(c, index, {
          actor: 'unknown',
          action: 'login.denied',
          detail: { via: 'sso', reason: err.message },
        });
      }
      return rethrow(err);
    }
    const csrf = randomBytes(24).toString('base64url');
    await startSession(c, identity.email, {
      via: 'sso',
      email: identity.email,
      ...(identity.hd ? { hd: identity.hd } : {}),
      csrf,
    });
    await audit(c, index, {
      actor: identity.email,
      action: 'login',
      detail: { via: 'sso', admin: identity.admin },
    });
    return c.redirect('/', 302);
  };

  return {
    '/auth/config': { GET: config },
    '/auth/me': { GET: me },
    '/auth/token': { POST: signInWithToken },
    '/login': { GET: login },
    '/login/callback': { GET: callback },
    '/logout': { GET: logout, POST: logout },
  };
}

function rethrow(err: unknown): never {
  if (err instanceof SsoError) throw new ApiProblem(err.status as 400, 'SSO_FAILED', err.message);
  throw err;
}
