import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Rows or values per statement. SQLite refuses statements with more than 32,766 bound values
 * and MySQL packets are bounded by `max_allowed_packet`, so no statement may grow with client
 * input: every list a push or a reconcile brings (a manifest's blobs, a repository's tags) is
 * written and looked up in parts of this size. 500 rows of up to 6 columns stay far below both.
 */
export const BATCH_SIZE = 500;

/** `items` in consecutive parts of at most `size`. */
export function chunks<T>(items: readonly T[], size = BATCH_SIZE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Runs `fn` on each part of `items` in turn, letting the event loop run between parts. SQLite
 * statements run synchronously on the calling thread, and a chain of awaited statements never
 * returns to the event loop on its own: without the pause, indexing one big manifest would hold
 * every other request (health checks included) for as long as all its statements take.
 */
export async function forEachChunk<T>(
  items: readonly T[],
  fn: (part: T[]) => Promise<unknown>,
  size = BATCH_SIZE,
): Promise<void> {
  for (let i = 0; i < items.length; i += size) {
    if (i > 0) await nextTurn();
    await fn(items.slice(i, i + size));
  }
}
