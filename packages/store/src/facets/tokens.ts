import * as events from '../queries/events.js';
import * as tokens from '../queries/tokens.js';
import { checkToken, type TokenRequest } from '../token-rules.js';
import type { StoreAccess } from './access.js';

/** API tokens, and the audit events of creating and revoking them (`store.tokens`). */
export interface StoreTokens {
  /**
   * Creates a token and its `token.create` audit event (actor `createdBy`) in one transaction,
   * after checking the token rules (see {@link checkToken}); the plaintext is in the result and
   * nowhere else. `auditDetail` is added to the event (a request id).
   *
   * @throws {TokenRuleError} before anything is written, when the request breaks a rule
   */
  create(
    request: TokenRequest,
    auditDetail?: Record<string, unknown>,
  ): Promise<{ token: tokens.Token; plaintext: string }>;
  /** The token with this SHA-256 hash (see {@link tokens.hashToken}), revoked or not. */
  findByHash(hash: string): Promise<tokens.Token | undefined>;
  /** The token with this id, revoked or not. */
  findById(id: number): Promise<tokens.Token | undefined>;
  /** Every token, by id. */
  list(): Promise<tokens.Token[]>;
  /** Whether any token was ever created (revoked ones count). */
  hasAny(): Promise<boolean>;
  /**
   * Revokes a token and records `token.revoke` by `actor` in one transaction; returns whether an
   * active token with this id existed (nothing is recorded otherwise).
   */
  revoke(id: number, actor: string, auditDetail?: Record<string, unknown>): Promise<boolean>;
  /** Records when a token was last used (default now). */
  touch(id: number, at?: Date): Promise<void>;
}

/** @internal The `store.tokens` facet. */
export function storeTokens(s: StoreAccess): StoreTokens {
  return {
    create: async (request, auditDetail = {}) => {
      const checked = checkToken(request);
      return s.write(async (x) => {
        const created = await tokens.createToken(x, checked, new Date());
        const { id, name, scopes, repoPattern } = created.token;
        await events.appendEvent(x, {
          actor: checked.createdBy,
          action: 'token.create',
          detail: { tokenId: id, name, scopes, repoPattern, ...auditDetail },
        });
        return created;
      });
    },
    findByHash: (hash) => tokens.findTokenByHash(s.read, hash),
    findById: (id) => tokens.findTokenById(s.read, id),
    list: () => tokens.listTokens(s.read),
    hasAny: () => tokens.hasTokens(s.read),
    revoke: (id, actor, auditDetail = {}) =>
      s.write(async (x) => {
        const revoked = await tokens.revokeToken(x, id, new Date());
        if (revoked) {
          await events.appendEvent(x, {
            actor,
            action: 'token.revoke',
            detail: { tokenId: id, ...auditDetail },
          });
        }
        return revoked;
      }),
    touch: (id, at = new Date()) => tokens.touchToken(s.read, id, at),
  };
}
