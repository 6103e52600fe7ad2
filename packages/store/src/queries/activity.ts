import { sql } from 'kysely';
import type { Executor } from '../dialect.js';
import { nameMatches, type RepositoryFilter } from '../repository-pattern.js';
import { toSqlTime } from '../sql-time.js';

/** Manifest pushes on one UTC day (`YYYY-MM-DD`). */
export interface PushDay {
  day: string;
  count: number;
}

/**
 * Pushes per UTC day since `since` (from the audit log's `push` events, so deleted and re-pushed
 * tags still count), oldest first; days without pushes are absent; with a `filter`, only
 * pushes to the matching repositories. Times are stored as UTC text
 * (SQLite) or DATETIME (MySQL), so the day is the first ten characters of either.
 */
export async function pushesPerDay(
  x: Executor,
  since: Date,
  filter?: RepositoryFilter,
): Promise<PushDay[]> {
  const day =
    x.dialect === 'mysql'
      ? sql<string>`date_format(at, '%Y-%m-%d')`
      : sql<string>`substr(at, 1, 10)`;
  const rows = await x.db
    .selectFrom('audit_events')
    .select((eb) => [day.as('d'), eb.fn.countAll<number | string>().as('n')])
    .where('action', '=', 'push')
    .where('at', '>=', toSqlTime(since))
    .$if(filter !== undefined, (qb) =>
      qb.where((eb) => nameMatches(eb, 'repository', filter as RepositoryFilter)),
    )
    .groupBy(sql`d`)
    .orderBy(sql`d`)
    .execute();
  return rows.map((r) => ({ day: String(r.d), count: Number(r.n) }));
}
