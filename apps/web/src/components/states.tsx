import type { ReactNode } from 'react';
import { ApiError } from '../api/client.js';

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

/** An error as a sentence; 403 says the signed-in user may not see this. */
export function ErrorState({ error, what }: { error: unknown; what: string }) {
  const forbidden = error instanceof ApiError && error.status === 403;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p className="state error" role="alert">
      {forbidden ? `You are not allowed to see ${what}: ` : `Could not load ${what}: `}
      {message}
    </p>
  );
}
