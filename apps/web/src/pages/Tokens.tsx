import type { UseMutationResult } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useAccess } from '../api/access.js';
import {
  type NewToken,
  useCreateToken,
  useRevokeToken,
  useSignIn,
  useTokens,
} from '../api/queries.js';
import type { CreatedToken, Scope, Token } from '../api/types.js';
import { CopyButton } from '../components/CopyButton.js';
import { DataTable } from '../components/DataTable.js';
import { NeedsAdmin, QueryView } from '../components/states.js';
import { formatTime, timeAgo } from '../format.js';

/**
 * The rights a token can carry, in the order the form shows them. The list itself lives in
 * `@epoch/store` (`TOKEN_SCOPES`), which the browser cannot load: the type below fails the
 * build if this copy misses one of them.
 */
const SCOPES = ['pull', 'push', 'delete', 'admin'] as const satisfies readonly Scope[];
const everyScope: Exclude<Scope, (typeof SCOPES)[number]> extends never ? true : never = true;
void everyScope;
const EXPIRY = [
  { value: '30d', label: '30 days' },
  { value: '7d', label: '7 days' },
  { value: '90d', label: '90 days' },
  { value: '365d', label: '1 year' },
  { value: '', label: 'Never' },
];

/**
 * Tokens: create (the secret is shown once), list with last use, revoke. Administrators only;
 * in the local open mode it says that the first token ends that mode, and offers to sign in
 * with the token just created, since the page is read-only for anonymous visitors from then on.
 */
export function Tokens() {
  const { admin, localOpen, signedIn } = useAccess();
  const tokens = useTokens(admin);
  // The page, not the form, holds the secret: creating the first token makes the visitor
  // read-only, which removes the form, possibly before the answer arrives.
  const [created, setCreated] = useState<CreatedToken | undefined>();
  const create = useCreateToken(setCreated);
  return (
    <main id="main">
      <h1>Tokens</h1>
      {created ? (
        <CreatedSecret
          token={created}
          offerSignIn={!signedIn}
          onDone={() => setCreated(undefined)}
        />
      ) : null}
      {!admin ? (
        <NeedsAdmin what="manage tokens" />
      ) : (
        <>
          <CreateToken create={create} first={localOpen} />
          <section>
            <h2>All tokens</h2>
            <QueryView
              query={tokens}
              what="tokens"
              isEmpty={(data) => data.length === 0}
              empty="No tokens."
            >
              {(data) => (
                <DataTable
                  className="reflow tokens"
                  columns={[
                    'Name',
                    'Scopes',
                    'Repositories',
                    'Created',
                    'Expires',
                    'Last used',
                    { label: 'Actions', hidden: true },
                  ]}
                >
                  {data.map((t) => (
                    <TokenRow key={t.id} token={t} />
                  ))}
                </DataTable>
              )}
            </QueryView>
          </section>
        </>
      )}
    </main>
  );
}

/** The new token's secret, shown this once; an anonymous creator may sign in with it at once. */
function CreatedSecret({
  token,
  offerSignIn,
  onDone,
}: {
  token: CreatedToken;
  offerSignIn: boolean;
  onDone: () => void;
}) {
  const signIn = useSignIn();
  return (
    <section className="card created" aria-live="polite">
      <h2>
        <span>
          Token <span className="name">{token.name}</span> created
        </span>
      </h2>
      <p>Copy it now: it is shown only this once.</p>
      <p className="secret">
        <code data-testid="token-secret">{token.token}</code>{' '}
        <CopyButton text={token.token} label="Copy token" />
      </p>
      {offerSignIn ? (
        <p className="hint">
          You are not signed in. Now that a token exists, visitors without one only read: sign in
          with this token to keep managing the registry.
        </p>
      ) : null}
      <p className="actions">
        {offerSignIn ? (
          <button
            type="button"
            className="primary"
            disabled={signIn.isPending}
            onClick={() => signIn.mutate(token.token, { onSuccess: onDone })}
          >
            Sign in with this token
          </button>
        ) : null}
        <button type="button" onClick={onDone}>
          Done
        </button>
      </p>
      {signIn.error ? (
        <p className="error" role="alert">
          {signIn.error.message}
        </p>
      ) : null}
    </section>
  );
}

function TokenRow({ token: t }: { token: Token }) {
  const revoke = useRevokeToken();
  const [confirming, setConfirming] = useState(false);
  const expired = t.expiresAt !== undefined && Date.parse(t.expiresAt) < Date.now();
  return (
    <tr className={t.revokedAt || expired ? 'inactive' : undefined} data-token-id={t.id}>
      <td data-label="Name" className="title name">
        {t.name}
      </td>
      <td data-label="Scopes">{t.scopes.join(', ')}</td>
      <td data-label="Repositories">
        <code>{t.repoPattern}</code>
      </td>
      <td data-label="Created" title={formatTime(t.createdAt)}>
        {timeAgo(t.createdAt)} by {t.createdBy}
      </td>
      <td data-label="Expires">{t.expiresAt ? formatTime(t.expiresAt) : 'never'}</td>
      <td data-label="Last used" title={formatTime(t.lastUsed)}>
        {t.lastUsed ? timeAgo(t.lastUsed) : 'never'}
      </td>
      <td className="actions-cell">
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

/** The form for a new token; `first` when it would be the first (ending the local open mode). */
function CreateToken({
  create,
  first,
}: {
  create: UseMutationResult<CreatedToken, Error, NewToken>;
  first: boolean;
}) {
  const [name, setName] = useState('');
  // The first token is most likely its creator's own, and only an admin token can manage the
  // others from the dashboard afterwards.
  const [scopes, setScopes] = useState<Scope[]>(first ? ['admin'] : ['pull']);
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
      { onSuccess: () => setName('') },
    );
  };
  const toggle = (s: Scope) =>
    setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s]);
  return (
    <form className="card create-token" onSubmit={submit}>
      <h2>New token</h2>
      {first ? <FirstTokenWarning admin={scopes.includes('admin')} /> : null}
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

function FirstTokenWarning({ admin }: { admin: boolean }) {
  return (
    <div className="warning" role="note">
      <p>
        <strong>No token exists yet</strong>, so anyone on this machine administers this registry
        without signing in, and pushes without credentials. Creating the first token ends that: from
        then on, visitors without a token only browse and pull.
      </p>
      <p>Its secret is shown only once, right after you create it.</p>
      {admin ? null : (
        <p>
          Without the admin scope, nobody can manage tokens in the dashboard afterwards (only with{' '}
          <code>epoch token create</code> on the server host).
        </p>
      )}
    </div>
  );
}
