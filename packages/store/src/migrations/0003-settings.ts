import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../dialect.js';

/**
 * `settings`: small named values every server process must agree on, such as the key that signs
 * registry bearer tokens (a token issued by one replica is checked by another).
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  const mysql = dialect === 'mysql';
  await db.schema
    .createTable('settings')
    .addColumn('name', mysql ? sql`varchar(64)` : sql`text`, (c) => c.primaryKey())
    .addColumn('value', mysql ? sql`text` : sql`text`, (c) => c.notNull())
    .addColumn('created_at', mysql ? sql`datetime(3)` : sql`text`, (c) => c.notNull())
    .modifyEnd(mysql ? sql`engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin` : sql``)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('settings').ifExists().execute();
}
