import { type FormEvent, useState } from 'react';
import { useCreateToken, useRevokeToken, useTokens } from '../api/queries.js';
import type { CreatedToken, Scope, Token } from '../api/types.js';
import { CopyButton } from '../components/CopyButton.js';
import { Empty, ErrorState, Loading } from '../components/states.js';
import { formatTime, timeAgo } from '../format.js';

const SCOPES: Scope[] = ['pull', 'push', 'delete', 'admin'];
const EXPIRY = [
  { value: '30d', label: '30 days' },
  { value: '7d', label: '7 days' },
  { value: '90d', label: '90 days' },
  { value: '365d', label: '1 year' },
  { value: '', label: 'Never' },
];

/** Tokens: create (the secret is shown once), list with last use, revoke. */
export function Tokens() {
  const tokens = useTokens();
  const [created, setCreated] = useState<CreatedToken | undefined>();
  return (
    <main id="main">
      <h1>Tokens</h1>
      <CreateToken onCreated={setCreated} />
      {created ? (
        <section className="card created" aria-live="polite">
          <h2>
            <span>
              Token <span className="name">{created.name}</span> created
            </span>
          </h2>
          <p>Copy it now: it is shown only this once.</p>
          <p className="secret">
            <code data-testid="token-secret">{created.token}</code>{' '}
            <CopyButton text={created.token} label="Copy token" />
          </p>
          <button type="button" onClick={() => setCreated(undefined)}>
            Done
          </button>
        </section>
      ) : null}
      <section>
        <h2>All tokens</h2>
        {tokens.isPending ? (
          <Loading what="tokens" />
        ) : tokens.error ? (
          <ErrorState error={tokens.error} what="tokens" />
        ) : tokens.data.length === 0 ? (
          <Empty>No tokens.</Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Repositories</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tokens.data.map((t) => (
                  <TokenRow key={t.id} token={t} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </main>
  );
}

function TokenRow({ token: t }: { token: Token }) {
  const revoke = useRevokeToken();
  const [confirming, setConfirming] = useState(false);
  const expired = t.expiresAt !== undefined && Date.parse(t.expiresAt) < Date.now();
  return (
    <tr className={t.revokedAt || expired ? 'inactive' : undefined} data-token-id={t.id}>
      <td className="name">{t.name}</td>
      <td>{t.scopes.join(', ')}</td>
      <td>
        <code>{t.repoPattern}</code>
      </td>
      <td title={formatTime(t.createdAt)}>
        {timeAgo(t.createdAt)} by {t.createdBy}
      </td>
      <td>{t.expiresAt ? formatTime(t.expiresAt) : 'never'}</td>
      <td title={formatTime(t.lastUsed)}>{t.lastUsed ? timeAgo(t.lastUsed) : 'never'}</td>
      <td>
        {t.revokedAt ? (
          <span className="badge">revoked</span>
        ) : confirming ? (
          <>
            <button
              type="button"
              className="danger"
              onClick={() => revoke.mutate(t.id)}
              disabled={revoke.isPending}
            >
              {`Revoke ${t.name}`}
            </button>{' '}
            <button type="button" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </>
        ) : (
          <button type="button" onClick={() => setConfirming(true)}>
            Revoke…
          </button>
        )}
        {revoke.error ? (
          <span className="error" role="alert">
            {revoke.error.message}
          </span>
        ) : null}
      </td>
    </tr>
  );
}

function CreateToken({ onCreated }: { onCreated: (t: CreatedToken) => void }) {
  const create = useCreateToken();
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>(['pull']);
  const [repoPattern, setRepoPattern] = useState('*');
  const [expiresIn, setExpiresIn] = useState('30d');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate(
      {
        name: name.trim(),
        scopes,
        repoPattern: repoPattern.trim() || '*',
        ...(expiresIn ? { expiresIn } : {}),
      },
      {
        onSuccess: (t) => {
          onCreated(t);
          setName('');
        },
      },
    );
  };
  const toggle = (s: Scope) =>
    setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s]);
  return (
    <form className="card create-token" onSubmit={submit}>
      <h2>New token</h2>
      <label>
        Name
        <input
          value={name}
          onChange={(e) => setName(e.target.value)}
          required
          maxLength={100}
          placeholder="ci-deploy"
        />
      </label>
      <fieldset>
        <legend>Scopes</legend>
        {SCOPES.map((s) => (
          <label key={s} className="inline">
            <input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} /> {s}
          </label>
        ))}
      </fieldset>
      <label>
        Repository pattern
        <input
          value={repoPattern}
          onChange={(e) => setRepoPattern(e.target.value)}
          placeholder="team-a/*"
        />
      </label>
      <label>
        Expires in
        <select value={expiresIn} onChange={(e) => setExpiresIn(e.target.value)}>
          {EXPIRY.map((x) => (
            <option key={x.label} value={x.value}>
              {x.label}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" className="primary" disabled={create.isPending || scopes.length === 0}>
        Create token
      </button>
      {create.error ? (
        <p className="error" role="alert">
          {create.error.message}
        </p>
      ) : null}
    </form>
  );
}
