/** A pagination cursor that this store did not issue (or that was altered). */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';

  constructor(cursor: string) {
    super(`invalid cursor ${JSON.stringify(cursor.slice(0, 64))}`);
  }
}

/**
 * The index database cannot be reached: the connection was refused, lost or killed (the
 * server restarted, a network cut, `KILL`). The operation did not complete, or its outcome is
 * unknown for a commit in flight; either way it is safe to retry once the database is back.
 * The pool replaces the dead connection on the next request, so no restart is needed.
 */
export class IndexUnavailableError extends Error {
  override readonly name = 'IndexUnavailableError';
}
