import { useMe } from './queries.js';
import type { Me } from './types.js';

/** What the dashboard offers its visitor. */
export interface Access {
  /** Signed in with a token or single sign-on, rather than anonymous. */
  signedIn: boolean;
  /** May administer: tokens, deleting tags, every audit event. */
  admin: boolean;
  /**
   * Anonymous and yet an administrator: the out-of-the-box local open mode (no token exists
   * yet, and the visitor is on the server's machine). Creating the first token ends it.
   */
  localOpen: boolean;
}

const NOBODY: Access = { signedIn: false, admin: false, localOpen: false };

export function accessOf(me: Me | null | undefined): Access {
  if (!me) return NOBODY;
  const signedIn = me.signedIn ?? me.kind !== 'anonymous';
  const admin = me.api === 'admin';
  return { signedIn, admin, localOpen: admin && !signedIn };
}

/** The visitor's {@link Access}, from the cached `/auth/me`. */
export function useAccess(): Access {
  return accessOf(useMe().data);
}
