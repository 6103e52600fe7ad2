import type { TokenScope } from '@epoch/store';
import { audit } from '../audit.js';
import { isRepositoryPattern } from '../auth/pattern.js';
import { parseDuration } from '../config.js';
import { ApiProblem } from './errors.js';
import { type ApiHandler, type ApiServices, readJsonObject } from './handler.js';

const SCOPES: readonly TokenScope[] = ['pull', 'push', 'delete', 'admin'];
const NAME = /^[\p{L}\p{N} ._@:/-]{1,100}$/u;
/** Longest lifetime a token may be given. */
const MAX_LIFETIME_MS = 10 * 365 * 86_400_000;

/** `GET /api/tokens`: every token (never a plaintext), revoked ones included. */
export function listTokens({ index }: ApiServices): ApiHandler {
  return async (c) => c.json(await index.listTokens());
}

/**
 * `POST /api/tokens` `{name, scopes?, repoPattern?, expiresIn?|expiresAt?}`: creates a token and
 * answers 201 with its plaintext, the only time it is ever shown. Scopes default to `pull`.
 */
export function createToken({ index, onTokensChanged }: ApiServices): ApiHandler {
  return async (c) => {
    const body = await readJsonObject(c);
    const name = typeof body.name === 'string' ? body.name.trim() : '';
    if (!NAME.test(name)) {
      throw new ApiProblem(
        400,
        'BAD_NAME',
        'name is required: 1-100 letters, digits, spaces or ._@:/-',
      );
    }
    const scopes = parseScopes(body.scopes);
    const repoPattern = body.repoPattern ?? '*';
    if (typeof repoPattern !== 'string' || !isRepositoryPattern(repoPattern)) {
      throw new ApiProblem(
        400,
        'BAD_PATTERN',
        'repoPattern must be a glob over repository names, e.g. team-a/*',
      );
    }
    const expiresAt = parseExpiry(body.expiresIn, body.expiresAt);
    const { token, plaintext } = await index.createToken({
      name,
      createdBy: c.var.principal.name,
      scopes,
      repoPattern,
      ...(expiresAt ? { expiresAt } : {}),
    });
    // The first token ends the out-of-the-box anonymous loopback writes here at once (other
    // processes notice within 2 s).
    onTokensChanged();
    await audit(c, index, {
      action: 'token.create',
      detail: { tokenId: token.id, name, scopes, repoPattern },
    });
    return c.json({ ...token, token: plaintext }, 201);
  };
}

/** `DELETE /api/tokens/<id>`: revokes a token everywhere within seconds (upstream's reply). */
export function revokeToken({ index, onTokensChanged }: ApiServices): ApiHandler {
  return async (c, match) => {
    const raw = match[1] ?? '';
    if (!/^\d{1,15}$/.test(raw)) throw new ApiProblem(400, 'BAD_ID', 'token id must be a number');
    const id = Number(raw);
    if (!(await index.revokeToken(id))) {
      throw new ApiProblem(404, 'TOKEN_UNKNOWN', 'no active token with this id');
    }
    onTokensChanged();
    await audit(c, index, { action: 'token.revoke', detail: { tokenId: id } });
    return c.json({ status: 'deleted' });
  };
}

function parseScopes(value: unknown): TokenScope[] {
  if (value === undefined) return ['pull'];
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((s): s is TokenScope => SCOPES.includes(s as TokenScope))
  ) {
    throw new ApiProblem(
      400,
      'BAD_SCOPES',
      'scopes must be a non-empty list of pull, push, delete, admin',
    );
  }
  return [...new Set(value)];
}

function parseExpiry(expiresIn: unknown, expiresAt: unknown): Date | undefined {
  if (expiresIn !== undefined && expiresAt !== undefined) {
    throw new ApiProblem(400, 'BAD_EXPIRY', 'give expiresIn or expiresAt, not both');
  }
  let at: Date | undefined;
  if (typeof expiresIn === 'string') {
    let ms: number;
    try {
      ms = parseDuration('expiresIn', expiresIn, 0);
    } catch (err) {
      throw new ApiProblem(400, 'BAD_EXPIRY', (err as Error).message);
    }
    at = new Date(Date.now() + ms);
  } else if (typeof expiresAt === 'string') {
    at = new Date(expiresAt);
  } else if (expiresIn !== undefined || expiresAt !== undefined) {
    throw new ApiProblem(
      400,
      'BAD_EXPIRY',
      'expiresIn is a duration like 30d, expiresAt an ISO time',
    );
  }
  if (at === undefined) return undefined;
  if (
    Number.isNaN(at.getTime()) ||
    at.getTime() <= Date.now() ||
    at.getTime() - Date.now() > MAX_LIFETIME_MS
  ) {
    throw new ApiProblem(400, 'BAD_EXPIRY', 'the expiry must be in the future and within 10 years');
  }
  return at;
}
