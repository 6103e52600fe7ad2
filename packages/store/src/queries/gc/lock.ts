/** The cross-process lock that keeps GC runs from overlapping. */

import type { Executor } from '../../dialect.js';
import { toSqlTime } from '../../sql-time.js';

/**
 * Takes (or renews) the named lock for `holder` until `now + ttlMs`: true when it is held by
 * `holder` afterwards. A lock whose holder let it expire (a crashed process) is taken over.
 */
export async function acquireLock(
  x: Executor,
  name: string,
  holder: string,
  now: Date,
  ttlMs: number,
): Promise<boolean> {
  const at = toSqlTime(now);
  const expires = toSqlTime(new Date(now.getTime() + ttlMs));
  let query = x.db.selectFrom('gc_locks').selectAll().where('name', '=', name);
  if (x.dialect === 'mysql') query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) {
    try {
      await x.db.insertInto('gc_locks').values({ name, holder, expires_at: expires }).execute();
      return true;
    } catch {
      // Another process inserted it first.
      return false;
    }
  }
  if (row.holder !== holder && row.expires_at >= at) return false;
  await x.db
    .updateTable('gc_locks')
    .set({ holder, expires_at: expires })
    .where('name', '=', name)
    .execute();
  return true;
}

/** Releases the lock if `holder` still holds it. */
export async function releaseLock(x: Executor, name: string, holder: string): Promise<void> {
  await x.db.deleteFrom('gc_locks').where('name', '=', name).where('holder', '=', holder).execute();
}
