import { useMe } from './queries.js';
import type { Me } from './types.js';

/**
 * What the dashboard offers its visitor across the registry. Rights on one repository (pushing
 * there, and so changing its settings) follow token patterns the server matches; the dashboard
 * does not match them itself but reads the server's answer for that repository (the settings'
 * `writable`), computed from the rule the server then checks the change against.
 */
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
