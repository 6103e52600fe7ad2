import { InvalidCursorError } from './errors.js';

/** A keyset position: the sort key of the last item returned and its id (the tie-breaker). */
export type KeysetPosition = [key: string | number, id: number];

/** Encodes a keyset position as an opaque, URL-safe cursor. */
export function encodeCursor(position: KeysetPosition): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

/**
 * Decodes a cursor made by {@link encodeCursor}, checking its shape (it comes from a client).
 *
 * @throws {InvalidCursorError} when it is not one of ours
 */
export function decodeCursor(cursor: string): KeysetPosition {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError(cursor);
  }
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    (typeof value[0] === 'string' || typeof value[0] === 'number') &&
    Number.isSafeInteger(value[1])
  ) {
    return [value[0], value[1] as number];
  }
  throw new InvalidCursorError(cursor);
}

/** Clamps a requested page size to 1..max (default `fallback`). */
export function pageLimit(limit: number | undefined, fallback = 100, max = 1000): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(max, Math.max(1, Math.floor(limit)));
}
