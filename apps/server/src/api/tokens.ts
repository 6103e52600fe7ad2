import { parseDuration } from '../config.js';
import { ApiProblem } from './errors.js';
import { type ApiHandler, type ApiServices, readJsonObject } from './handler.js';

/** `GET /api/tokens`: every token (never a plaintext), revoked ones included. */
export function listTokens({ index }: ApiServices): ApiHandler {
  return async (c) => c.json(await index.tokens.list());
}

/**
 * `POST /api/tokens` `{name, scopes?, repoPattern?, expiresIn?|expiresAt?}`: creates a token and
 * answers 201 with its plaintext, the only time it is ever shown. Scopes default to `pull`.
 */
export function createToken({ index, onTokensChanged }: ApiServices): ApiHandler {
  return async (c) => {
    const body = await readJsonObject(c);
    const { token, plaintext } = await index.tokens.create(
      {
        name: typeof body.name === 'string' ? body.name : '',
        createdBy: c.var.principal.name,
        scopes:
          body.scopes === undefined ? ['pull'] : Array.isArray(body.scopes) ? body.scopes : [],
        repoPattern: body.repoPattern,
        ...expiry(body.expiresIn, body.expiresAt),
      },
      { requestId: c.var.requestId },
    );
    // The first token ends the out-of-the-box anonymous loopback writes here at once (other
    // processes notice within 2 s).
    onTokensChanged();
    return c.json({ ...token, token: plaintext }, 201);
  };
}

/** `DELETE /api/tokens/<id>`: revokes a token everywhere within seconds (upstream's reply). */
export function revokeToken({ index, onTokensChanged }: ApiServices): ApiHandler {
  return async (c, params) => {
    const raw = params.id ?? '';
    if (!/^\d{1,15}$/.test(raw)) throw new ApiProblem(400, 'BAD_ID', 'token id must be a number');
    const id = Number(raw);
    if (!(await index.tokens.revoke(id, c.var.principal.name, { requestId: c.var.requestId }))) {
      throw new ApiProblem(404, 'TOKEN_UNKNOWN', 'no active token with this id');
    }
    onTokensChanged();
    return c.json({ status: 'deleted' });
  };
}

/**
 * The expiry a request asks for, as a time: `expiresIn` (a duration such as `30d`) or
 * `expiresAt` (an ISO time). How far ahead it may be is a token rule (`checkToken`).
 */
function expiry(expiresIn: unknown, expiresAt: unknown): { expiresAt?: Date } {
  if (expiresIn !== undefined && expiresAt !== undefined) {
    throw new ApiProblem(400, 'BAD_EXPIRY', 'give expiresIn or expiresAt, not both');
  }
  if (typeof expiresIn === 'string') {
    try {
      return { expiresAt: new Date(Date.now() + parseDuration('expiresIn', expiresIn, 0)) };
    } catch (err) {
      throw new ApiProblem(400, 'BAD_EXPIRY', (err as Error).message);
    }
  }
  if (typeof expiresAt === 'string') return { expiresAt: new Date(expiresAt) };
  if (expiresIn !== undefined || expiresAt !== undefined) {
    throw new ApiProblem(
      400,
      'BAD_EXPIRY',
      'expiresIn is a duration like 30d, expiresAt an ISO time',
    );
  }
  return {};
}
