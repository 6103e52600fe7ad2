import type { ReactNode } from 'react';
import { useAccess } from '../api/access.js';
import { ApiError } from '../api/client.js';
import { useMe } from '../api/queries.js';
import { Link } from '../router.js';

export function Loading({ what }: { what: string }) {
  return (
    <p className="state" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="state empty">{children}</p>;
}

/**
 * An error as a sentence: a 401 asks the visitor to sign in (it happens to anonymous visitors
 * when the server's policy changed), a 403 says the signed-in user may not see this.
 */
export function ErrorState({ error, what }: { error: unknown; what: string }) {
  if (error instanceof ApiError && error.status === 401) {
    return (
      <p className="state" role="alert">
        Sign in to see {what}. <Link href="/signin">Sign in</Link>
      </p>
    );
  }
  const forbidden = error instanceof ApiError && error.status === 403;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p className="state error" role="alert">
      {forbidden ? `You are not allowed to see ${what}: ` : `Could not load ${what}: `}
      {message}
    </p>
  );
}

/** What a query is in the state of a loaded page: `isPending`, its `error`, its `data`. */
export interface QueryState<T> {
  isPending: boolean;
  error: unknown;
  data: T | undefined;
}

/**
 * A query's place on a page: "Loading {what}…" while it loads, its error, `empty` when
 * `isEmpty(data)`, and otherwise `children(data)`.
 */
export function QueryView<T>({
  query,
  what,
  isEmpty,
  empty,
  children,
}: {
  query: QueryState<T>;
  what: string;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
}) {
  if (query.isPending) return <Loading what={what} />;
  if (query.error) return <ErrorState error={query.error} what={what} />;
  const data = query.data as T;
  if (isEmpty?.(data)) return <Empty>{empty}</Empty>;
  return <>{children(data)}</>;
}

/** In place of a page only administrators may use: why not, and how to become one. */
export function NeedsAdmin({ what }: { what: string }) {
  const me = useMe().data;
  const { signedIn } = useAccess();
  return (
    <section className="card">
      {signedIn ? (
        <p>
          You are signed in as <strong className="name">{me?.user}</strong>, who may not {what}.
          Sign out and sign in with an admin token to do so.
        </p>
      ) : (
        <p>
          Only administrators may {what}. <Link href="/signin">Sign in</Link> with an admin token
          (or single sign-on, where an administrator enabled it).
        </p>
      )}
    </section>
  );
}
