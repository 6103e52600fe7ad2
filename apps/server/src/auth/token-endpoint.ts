import type { Context } from 'hono';
import type { Env } from '../http/env.js';
import { HttpProblem } from '../http/errors.js';
import { type AccessClaims, type Authenticator, InvalidCredentialsError } from './authenticator.js';
import { parseAuthorization } from './credentials.js';
import { isLocalClient } from './local-client.js';
import { allowedActions, type Principal } from './principal.js';
import { parseScopes } from './scope.js';

/** Lifetime of a registry access token: short, so rights follow token changes quickly. */
export const ACCESS_TOKEN_SECONDS = 300;
/** Lifetime of a refresh token (capped by its database token's own expiry). */
const REFRESH_TOKEN_SECONDS = 30 * 24 * 3600;
const MAX_FORM_BYTES = 16 * 1024;

/**
 * `GET`/`POST /v2/token`: the Docker/OCI token endpoint. Basic credentials (any user name, a
 * token as password), a refresh token, or nothing (an anonymous token, never empty) buy a
 * short-lived JWT carrying the intersection of the requested scopes and the caller's rights.
 */
export function tokenEndpoint(auth: Authenticator) {
  return async (c: Context<Env>): Promise<Response> => {
    const local = isLocalClient(c);
    const request = c.req.method === 'POST' ? await readForm(c) : readQuery(c);
    let principal: Principal;
    try {
      principal = await principalOf(auth, c, request, local);
    } catch (err) {
      if (!(err instanceof InvalidCredentialsError)) throw err;
      throw new HttpProblem(401, 'UNAUTHORIZED', err.message);
    }
    let scopes: ReturnType<typeof parseScopes>;
    try {
      scopes = parseScopes(request.scopes);
    } catch (err) {
      throw new HttpProblem(400, 'UNSUPPORTED', (err as Error).message);
    }
    const access: AccessClaims['access'] = scopes.map((scope) => {
      const allowed = allowedActions(principal, scope.name);
      return {
        type: 'repository',
        name: scope.name,
        actions: scope.actions.filter((a) => allowed.has(a)),
      };
    });
    const issuer = auth.issuerClaims(principal);
    const claims: AccessClaims = { ...issuer, access };
    const subject = principal.kind === 'anonymous' ? 'anonymous' : principal.name;
    const token = await auth.signer.sign('access', subject, { ...claims }, ACCESS_TOKEN_SECONDS);
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: ACCESS_TOKEN_SECONDS,
      issued_at: new Date().toISOString(),
    };
    if (request.offline && principal.kind !== 'anonymous') {
      body.refresh_token = await auth.signer.sign(
        'refresh',
        subject,
        { ...issuer },
        REFRESH_TOKEN_SECONDS,
      );
    }
    c.header('Cache-Control', 'no-store');
    return c.json(body);
  };
}

interface TokenRequest {
  scopes: string[];
  /** A refresh token is wanted (`offline_token=true`, or an OAuth2 password grant). */
  offline: boolean;
  grant?: { type: 'password'; password: string } | { type: 'refresh_token'; token: string };
}

function readQuery(c: Context<Env>): TokenRequest {
  return {
    scopes: c.req.queries('scope') ?? [],
    offline: c.req.query('offline_token') === 'true',
  };
}

/** The OAuth2 form of the token request (containerd, and docker with an identity token). */
async function readForm(c: Context<Env>): Promise<TokenRequest> {
  const type = c.req.header('content-type') ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) {
    throw new HttpProblem(
      400,
      'UNSUPPORTED',
      'the token endpoint takes a form (application/x-www-form-urlencoded)',
    );
  }
  const text = await c.req.text();
  if (text.length > MAX_FORM_BYTES)
    throw new HttpProblem(413, 'SIZE_INVALID', 'token request too large');
  const form = new URLSearchParams(text);
  const grantType = form.get('grant_type');
  const request: TokenRequest = {
    scopes: form.getAll('scope'),
    offline: form.get('access_type') === 'offline' || grantType === 'password',
  };
  if (grantType === 'password') {
    request.grant = { type: 'password', password: form.get('password') ?? '' };
  } else if (grantType === 'refresh_token') {
    request.grant = { type: 'refresh_token', token: form.get('refresh_token') ?? '' };
  } else {
    throw new HttpProblem(400, 'UNSUPPORTED', 'grant_type must be password or refresh_token');
  }
  return request;
}

async function principalOf(
  auth: Authenticator,
  c: Context<Env>,
  request: TokenRequest,
  local: boolean,
): Promise<Principal> {
  if (request.grant?.type === 'password') {
    if (request.grant.password === '') throw new InvalidCredentialsError('password is required');
    return auth.fromSecret(request.grant.password);
  }
  if (request.grant?.type === 'refresh_token') return auth.fromRefreshToken(request.grant.token);
  const credentials = parseAuthorization(c.req.header('authorization'));
  if (credentials === undefined)
    throw new InvalidCredentialsError('malformed Authorization header');
  // A JWT given as a password here is a refresh token (docker stores it as an identity token).
  if (credentials.kind === 'jwt') return auth.fromRefreshToken(credentials.jwt);
  return auth.resolve(credentials, local);
}
