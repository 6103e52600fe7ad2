import type { Kysely } from 'kysely';
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
