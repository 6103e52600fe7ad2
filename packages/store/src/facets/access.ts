import type { Executor } from '../dialect.js';

/** What a facet of the store runs its queries through (built by the `Store`). */
export interface StoreAccess {
  /** The pool (or SQLite handle): for reads and single-statement writes. */
  readonly read: Executor;
  /** Runs `fn` in one write transaction (see the `Store` for the isolation and retries). */
  write<T>(fn: (x: Executor) => Promise<T>): Promise<T>;
}
