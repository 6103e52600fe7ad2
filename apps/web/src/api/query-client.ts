import { MutationCache, QueryCache, QueryClient } from '@tanstack/react-query';
import { ApiError } from './client.js';
import type { Me } from './types.js';

/** The key of the `/auth/me` query, which the client asks again when rights may have changed. */
export const ME_KEY = ['me'] as const;

/** Whether `err` is the server's 401: the request needs other credentials than the ones sent. */
export function isUnauthorized(err: unknown): boolean {
  return err instanceof ApiError && err.status === 401;
}

function sameVisitor(a: Me | null | undefined, b: Me | null | undefined): boolean {
  return a?.user === b?.user && a?.api === b?.api && a?.signedIn === b?.signedIn;
}

/**
 * The app's query client. A 401 from a query or mutation means the visitor's rights changed (a
 * session ended, or the first token ended the local open mode): it asks `/auth/me` once more,
 * which answers with who the visitor is now (anonymous and read-only, say) or 401 (sign in);
 * if that changed, every query is asked again once. It never forgets the visitor outright: an
 * anonymous visitor whose query is refused stays on the read-only dashboard, and the refused
 * query stops polling (see `queries.ts`), so nothing goes round in a loop. Client errors (4xx)
 * are not retried.
 */
export function createQueryClient(): QueryClient {
  const recheck = async (err: unknown) => {
    if (!isUnauthorized(err)) return;
    const before = client.getQueryData<Me | null>(ME_KEY);
    await client.invalidateQueries({ queryKey: ME_KEY });
    // Rights changed (a session ended, say): every answer may differ now, and what was refused
    // may be allowed, so ask again once. Unchanged rights leave the refusal standing.
    if (!sameVisitor(before, client.getQueryData<Me | null>(ME_KEY))) {
      await client.invalidateQueries({ predicate: (q) => q.queryKey[0] !== ME_KEY[0] });
    }
  };
  const client: QueryClient = new QueryClient({
    queryCache: new QueryCache({ onError: recheck }),
    mutationCache: new MutationCache({ onError: recheck }),
    defaultOptions: {
      queries: {
        retry: (count, err) => !(err instanceof ApiError && err.status < 500) && count < 2,
      },
    },
  });
  return client;
}
