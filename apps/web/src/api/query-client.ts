import { MutationCache, QueryCache, QueryClient } from '@tanstack/react-query';
import { ApiError } from './client.js';

/**
 * The app's query client. A 401 from any query or mutation means the session ended: it forgets
 * who was signed in, which brings up the sign-in page. Client errors (4xx) are not retried.
 */
export function createQueryClient(): QueryClient {
  const signedOut = (err: unknown) => {
    if (err instanceof ApiError && err.status === 401) client.setQueryData(['me'], null);
  };
  const client: QueryClient = new QueryClient({
    queryCache: new QueryCache({ onError: signedOut }),
    mutationCache: new MutationCache({ onError: signedOut }),
    defaultOptions: {
      queries: {
        retry: (count, err) => !(err instanceof ApiError && err.status < 500) && count < 2,
      },
    },
  });
  return client;
}
