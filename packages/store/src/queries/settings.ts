import { type Executor, ignoreDuplicate } from '../dialect.js';
import { toSqlTime } from '../sql-time.js';

/**
 * Returns the setting `name`, creating it with `create()` if no process has yet. Concurrent
 * first calls from several processes all return the value of the one insert that won.
 */
export async function getOrCreateSetting(
  x: Executor,
  name: string,
  create: () => string,
): Promise<string> {
  const existing = await readSetting(x, name);
  if (existing !== undefined) return existing;
  const row = { name, value: create(), created_at: toSqlTime(new Date()) };
  const insert = x.db.insertInto('settings').values(row);
  await ignoreDuplicate(x, insert, 'name').execute();
  const value = await readSetting(x, name);
  if (value === undefined) throw new Error(`setting ${name} could not be stored`);
  return value;
}

async function readSetting(x: Executor, name: string): Promise<string | undefined> {
  const row = await x.db
    .selectFrom('settings')
    .select('value')
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.value;
}
