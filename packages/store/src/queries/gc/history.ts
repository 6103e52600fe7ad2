/** Reports of finished GC runs. */

import type { Executor } from '../../dialect.js';
import { fromSqlTime, toSqlTime } from '../../sql-time.js';

/** A finished run, as stored. */
export interface GcRunRecord {
  id: number;
  startedAt: Date;
  finishedAt: Date;
  dryRun: boolean;
  report: Record<string, unknown>;
}

/** Stores a finished run's report; keeps the last 50. */
export async function saveRun(x: Executor, run: Omit<GcRunRecord, 'id'>): Promise<number> {
  const result = await x.db
    .insertInto('gc_runs')
    .values({
      started_at: toSqlTime(run.startedAt),
      finished_at: toSqlTime(run.finishedAt),
      dry_run: run.dryRun ? 1 : 0,
      report: JSON.stringify(run.report),
    })
    .executeTakeFirstOrThrow();
  const id = Number(result.insertId);
  await x.db
    .deleteFrom('gc_runs')
    .where('id', '<=', id - 50)
    .execute();
  return id;
}

/** The most recent run, or `undefined`. */
export async function lastRun(x: Executor): Promise<GcRunRecord | undefined> {
  const row = await x.db
    .selectFrom('gc_runs')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    id: Number(row.id),
    startedAt: fromSqlTime(row.started_at),
    finishedAt: fromSqlTime(row.finished_at),
    dryRun: Number(row.dry_run) === 1,
    report: JSON.parse(row.report) as Record<string, unknown>,
  };
}
