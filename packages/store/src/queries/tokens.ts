import { createHash, randomBytes } from 'node:crypto';
import type { Executor } from '../dialect.js';
import type { SqlTime } from '../schema.js';
import { fromSqlTime, toSqlTime } from '../sql-time.js';
import { type CheckedToken, isTokenScope, type TokenScope } from '../token-rules.js';

/**
 * A stored token (upstream's `Token` JSON shape, extended). The plaintext is never stored and
 * never part of this object; `lastUsed` keeps upstream's field name.
 */
export interface Token {
  id: number;
  name: string;
  createdBy: string;
  scopes: TokenScope[];
  /** Glob over repository names, e.g. `team-a/*`; `*` for all. */
  repoPattern: string;
  createdAt: Date;
  expiresAt?: Date;
  lastUsed?: Date;
  revokedAt?: Date;
}

/** SHA-256 of a plaintext token, as hex: the only form the index stores. */
export function hashToken(plaintext: string): string {
  return createHash('sha256').update(plaintext, 'utf8').digest('hex');
}

function parseScopes(value: string): TokenScope[] {
  return value.split(' ').filter(isTokenScope);
}

interface TokenRow {
  id: number;
  name: string;
  created_by: string;
  scopes: string;
  repo_pattern: string;
  created_at: SqlTime;
  expires_at: SqlTime | null;
  last_used_at: SqlTime | null;
  revoked_at: SqlTime | null;
}

const columns = [
  'id',
  'name',
  'created_by',
  'scopes',
  'repo_pattern',
  'created_at',
  'expires_at',
  'last_used_at',
  'revoked_at',
] as const;

function toToken(row: TokenRow): Token {
  const token: Token = {
    id: Number(row.id),
    name: row.name,
    createdBy: row.created_by,
    scopes: parseScopes(row.scopes),
    repoPattern: row.repo_pattern,
    createdAt: fromSqlTime(row.created_at),
  };
  if (row.expires_at) token.expiresAt = fromSqlTime(row.expires_at);
  if (row.last_used_at) token.lastUsed = fromSqlTime(row.last_used_at);
  if (row.revoked_at) token.revokedAt = fromSqlTime(row.revoked_at);
  return token;
}

/**
 * Creates a token: 32 random bytes as 64 hex characters (upstream's format). Only the SHA-256
 * of the plaintext is stored; the plaintext is returned here once and cannot be read back.
 */
export async function createToken(
  x: Executor,
  input: CheckedToken,
  at: Date,
): Promise<{ token: Token; plaintext: string }> {
  const plaintext = randomBytes(32).toString('hex');
  const { scopes } = input;
  const result = await x.db
    .insertInto('tokens')
    .values({
      name: input.name,
      token_hash: hashToken(plaintext),
      created_by: input.createdBy,
      scopes: scopes.join(' '),
      repo_pattern: input.repoPattern,
      expires_at: input.expiresAt ? toSqlTime(input.expiresAt) : null,
      created_at: toSqlTime(at),
    })
    .executeTakeFirstOrThrow();
  const id = Number(result.insertId);
  const token: Token = {
    id,
    name: input.name,
    createdBy: input.createdBy,
    scopes,
    repoPattern: input.repoPattern,
    createdAt: fromSqlTime(toSqlTime(at)),
  };
  if (input.expiresAt) token.expiresAt = fromSqlTime(toSqlTime(input.expiresAt));
  return { token, plaintext };
}

/**
 * The token with this hash, whatever its state: the caller decides about expiry and
 * revocation (both are on the returned object) so it can audit why a token was refused.
 */
export function findTokenByHash(x: Executor, hash: string): Promise<Token | undefined> {
  return findToken(x, 'token_hash', hash);
}

/** The token with this id, whatever its state. */
export function findTokenById(x: Executor, id: number): Promise<Token | undefined> {
  return findToken(x, 'id', id);
}

async function findToken(
  x: Executor,
  column: 'id' | 'token_hash',
  value: number | string,
): Promise<Token | undefined> {
  const row = await x.db
    .selectFrom('tokens')
    .select(columns)
    .where(column, '=', value)
    .executeTakeFirst();
  return row === undefined ? undefined : toToken(row);
}

/** Whether any token row exists. */
export async function hasTokens(x: Executor): Promise<boolean> {
  const row = await x.db.selectFrom('tokens').select('id').limit(1).executeTakeFirst();
  return row !== undefined;
}

/** Every token, by id (revoked ones included, for the audit trail). */
export async function listTokens(x: Executor): Promise<Token[]> {
  return (await x.db.selectFrom('tokens').select(columns).orderBy('id').execute()).map(toToken);
}

/** Marks a token revoked; returns whether an unrevoked token with this id existed. */
export async function revokeToken(x: Executor, id: number, at: Date): Promise<boolean> {
  const result = await x.db
    .updateTable('tokens')
    .set({ revoked_at: toSqlTime(at) })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Records a use of a token (callers throttle this; it is not on the request path). */
export async function touchToken(x: Executor, id: number, at: Date): Promise<void> {
  await x.db
    .updateTable('tokens')
    .set({ last_used_at: toSqlTime(at) })
    .where('id', '=', id)
    .execute();
}
