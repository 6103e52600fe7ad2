import { accessOf } from '../api/access.js';
import type { Me } from '../api/types.js';
import { Link } from '../router.js';

/**
 * The header's corner: who is signed in and "Sign out", or, for an anonymous visitor, what
 * they may do without signing in and a "Sign in" button.
 */
export function Account({ me }: { me: Me }) {
  const { signedIn, localOpen } = accessOf(me);
  if (signedIn) {
    return (
      <div className="who">
        <span title={me.email || me.user}>{me.user}</span>
        <a href="/logout" className="button">
          Sign out
        </a>
      </div>
    );
  }
  return (
    <div className="who">
      {localOpen ? (
        <span
          className="badge mode open"
          title="No token exists yet: visitors on this machine administer the registry without signing in."
        >
          Open local access
        </span>
      ) : (
        <span className="badge mode" title="Anyone may browse; sign in to do more.">
          Read-only
        </span>
      )}
      <Link href="/signin" className="button primary">
        Sign in
      </Link>
    </div>
  );
}
