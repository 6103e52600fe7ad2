import { isRepositoryPattern } from './repository-pattern.js';

/** Every right a token can carry, in the order people see them. */
export const TOKEN_SCOPES = ['pull', 'push', 'delete', 'admin'] as const;

/** What a token may do. */
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** The longest lifetime a token may be given: ten years. */
export const MAX_TOKEN_LIFETIME_MS = 10 * 365 * 86_400_000;

const NAME = /^[\p{L}\p{N} ._@:/-]{1,100}$/u;

/** Which rule a new token broke. */
export type TokenRuleCode = 'BAD_NAME' | 'BAD_SCOPES' | 'BAD_PATTERN' | 'BAD_EXPIRY';

/** A new token breaks a rule; nothing was written. The message says what is allowed. */
export class TokenRuleError extends Error {
  override readonly name = 'TokenRuleError';
  constructor(
    readonly code: TokenRuleCode,
    message: string,
  ) {
    super(message);
  }
}

/** Whether `value` names a token right. */
export function isTokenScope(value: unknown): value is TokenScope {
  return (TOKEN_SCOPES as readonly unknown[]).includes(value);
}

/** A token as a caller asks for it, before the rules are applied. */
export interface TokenRequest {
  /** What the token is for; trimmed, then 1-100 letters, digits, spaces or `._@:/-`. */
  name: string;
  /** Who creates it (a user, `cli:<login>`): the audit event's actor. */
  createdBy: string;
  /** Non-empty; duplicates are dropped. */
  scopes: readonly unknown[];
  /** Glob over repository names; default `*`. */
  repoPattern?: unknown;
  /** In the future, at most {@link MAX_TOKEN_LIFETIME_MS} away; default never. */
  expiresAt?: Date;
}

/** A token request that follows every rule, normalised. */
export interface CheckedToken {
  name: string;
  createdBy: string;
  scopes: TokenScope[];
  repoPattern: string;
  expiresAt?: Date;
}

/**
 * Applies the rules every way of creating a token shares (the control API, `epoch token
 * create`): a readable name, known rights, a valid repository pattern, a bounded lifetime.
 *
 * @throws {TokenRuleError} naming the first rule broken
 */
export function checkToken(request: TokenRequest, now: Date = new Date()): CheckedToken {
  const name = request.name.trim();
  if (!NAME.test(name)) {
    throw new TokenRuleError(
      'BAD_NAME',
      'name is required: 1-100 letters, digits, spaces or ._@:/-',
    );
  }
  if (request.scopes.length === 0 || !request.scopes.every(isTokenScope)) {
    throw new TokenRuleError(
      'BAD_SCOPES',
      `scopes must be a non-empty list of ${TOKEN_SCOPES.join(', ')}`,
    );
  }
  const repoPattern = request.repoPattern ?? '*';
  if (typeof repoPattern !== 'string' || !isRepositoryPattern(repoPattern)) {
    throw new TokenRuleError(
      'BAD_PATTERN',
      'repoPattern must be a glob over repository names, e.g. team-a/*',
    );
  }
  const { expiresAt } = request;
  if (
    expiresAt !== undefined &&
    (Number.isNaN(expiresAt.getTime()) ||
      expiresAt.getTime() <= now.getTime() ||
      expiresAt.getTime() - now.getTime() > MAX_TOKEN_LIFETIME_MS)
  ) {
    throw new TokenRuleError('BAD_EXPIRY', 'the expiry must be in the future and within 10 years');
  }
  return {
    name,
    createdBy: request.createdBy,
    scopes: [...new Set(request.scopes as TokenScope[])],
    repoPattern,
    ...(expiresAt ? { expiresAt } : {}),
  };
}
