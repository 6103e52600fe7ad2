import { type FormEvent, useState } from 'react';
import { useAuthConfig, useSignIn } from '../api/queries.js';

/** Sign in: the SSO button when the server has SSO, and the token form (always there for admins). */
export function SignIn() {
  const config = useAuthConfig();
  const signIn = useSignIn();
  const [token, setToken] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (token.trim()) signIn.mutate(token.trim());
  };
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
          value={token}
          onChange={(e) => setToken(e.target.value)}
          placeholder="epk_…"
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
        <p className="hint">
          Create an admin token on the server host with{' '}
          <code>epoch token create --name me --scope admin</code>.
        </p>
      </form>
    </main>
  );
}
