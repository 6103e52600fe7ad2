import {
  type InsertQueryBuilder,
  type InsertResult,
  type Kysely,
  type RawBuilder,
  sql,
  type UpdateObject,
} from 'kysely';
import type { Database } from './schema.js';

/** Which SQL engine a store runs on. */
export type DialectName = 'mysql' | 'sqlite';

/**
 * What every query function receives: a Kysely handle (the pool, or a transaction) and the
 * dialect, for the few statements whose syntax differs (upserts, `GREATEST`/`MAX`).
 */
export interface Executor {
  readonly db: Kysely<Database>;
  readonly dialect: DialectName;
}

/**
 * "Insert, and leave an existing row with the same key as it is": on SQLite
 * `ON CONFLICT DO NOTHING`, on MySQL a no-op `ON DUPLICATE KEY UPDATE column = column` (not
 * `INSERT IGNORE`, which would also turn other errors, a too-long value or a broken foreign
 * key, into warnings). Either way the affected-row count is 1 for an insert and 0 for an
 * existing row (the MySQL pool runs without `FOUND_ROWS`), which callers rely on to know
 * whether the row is theirs. `column` is any column of the table: it is assigned to itself.
 */
export function ignoreDuplicate<TB extends keyof Database & string>(
  x: Executor,
  insert: InsertQueryBuilder<Database, TB, InsertResult>,
  column: keyof Database[TB] & string,
): InsertQueryBuilder<Database, TB, InsertResult> {
  if (x.dialect === 'sqlite') return insert.onConflict((oc) => oc.doNothing());
  const update = { [column]: sql.ref(column) } as UpdateObject<Database, TB, TB>;
  return insert.onDuplicateKeyUpdate(update);
}

/**
 * "Insert, or update the existing row with the same key": on SQLite
 * `ON CONFLICT (key) DO UPDATE SET …`, on MySQL `ON DUPLICATE KEY UPDATE …`. Column names in
 * `set` expressions (`sql\`ref_count + 1\``) mean the existing row's on both. `key` is the
 * unique key the conflict is on: SQLite needs it named, MySQL takes whichever unique key the row
 * collides on (the tables have one each).
 */
export function upsert<TB extends keyof Database & string>(
  x: Executor,
  insert: InsertQueryBuilder<Database, TB, InsertResult>,
  key: readonly (keyof Database[TB] & string)[],
  set: UpdateObject<Database, TB, TB>,
): InsertQueryBuilder<Database, TB, InsertResult> {
  if (x.dialect === 'mysql') return insert.onDuplicateKeyUpdate(set);
  // The same columns of the same table: Kysely types the two clauses' objects apart.
  return insert.onConflict((oc) => oc.columns(key).doUpdateSet(set as never));
}

/** The later of a time column and `at`: `GREATEST` on MySQL, two-argument `MAX` on SQLite. */
export function later(x: Executor, column: string, at: unknown): RawBuilder<string> {
  return x.dialect === 'mysql'
    ? sql<string>`greatest(${sql.ref(column)}, ${at})`
    : sql<string>`max(${sql.ref(column)}, ${at})`;
}
