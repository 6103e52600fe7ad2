import { type FormEvent, useState } from 'react';
import { useAccess } from '../api/access.js';
import { useAuthConfig, useMe, useSignIn } from '../api/queries.js';
import { Link, navigate } from '../router.js';

/**
 * Sign in: the SSO button when the server has SSO, and the token form (always there for admins).
 * It is the whole page when the server lets nobody in unsigned, and `/signin` otherwise; from
 * there a successful sign-in returns to the dashboard.
 */
export function SignIn() {
  const config = useAuthConfig();
  const signIn = useSignIn();
  const me = useMe().data;
  const { signedIn, localOpen } = useAccess();
  const [token, setToken] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!token.trim()) return;
    signIn.mutate(token.trim(), {
      onSuccess: () => {
        if (window.location.pathname === '/signin') navigate('/', { replace: true });
      },
    });
  };
  if (signedIn) {
    return (
      <main className="signin" id="main">
        <h1>Signed in</h1>
        <p>
          You are signed in as <strong className="name">{me?.user}</strong>.{' '}
          <Link href="/">Go to the dashboard</Link> or{' '}
          <a href="/logout" className="button">
            Sign out
          </a>
        </p>
      </main>
    );
  }
  return (
    <main className="signin" id="main">
      <h1>Sign in to Epoch</h1>
      {config.data?.sso ? (
        <p>
          <a className="button primary" href="/login">
            Sign in with single sign-on
          </a>
        </p>
      ) : null}
      <form onSubmit={submit} className="card">
        <label htmlFor="signin-token">
          {config.data?.sso ? 'Or use an API token' : 'API token'}
        </label>
        <input
          id="signin-token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          placeholder="64 hex characters, as epoch token create prints"
          required
        />
        <button type="submit" className="primary" disabled={signIn.isPending}>
          {signIn.isPending ? 'Signing in…' : 'Sign in'}
        </button>
        {signIn.error ? (
          <p className="error" role="alert">
            {signIn.error.message}
          </p>
        ) : null}
        {localOpen ? (
          <p className="hint">
            No token exists yet, so on this machine you already administer the registry: create the
            first token on the <Link href="/tokens">Tokens</Link> page.
          </p>
        ) : (
          <p className="hint">
            Create an admin token on the server host with{' '}
            <code>epoch token create --name me --scope admin</code>.
          </p>
        )}
      </form>
    </main>
  );
}
