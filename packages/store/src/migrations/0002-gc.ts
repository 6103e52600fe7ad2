import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../dialect.js';

/**
 * Garbage collection and retention: retention policies (managed through `/api/retention`), the
 * cross-process GC lock and the last GC reports. Column types follow `0001-initial`.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  const mysql = dialect === 'mysql';
  const id = mysql ? sql`bigint` : sql`integer`;
  const name = mysql ? sql`varchar(255)` : sql`text`;
  const time = mysql ? sql`datetime(3)` : sql`text`;
  const text = mysql ? sql`longtext` : sql`text`;
  const tableEnd = mysql ? sql`engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin` : sql``;

  await db.schema
    .createTable('retention_policies')
    .addColumn('id', id, (c) => c.primaryKey().autoIncrement())
    .addColumn('position', sql`integer`, (c) => c.notNull())
    .addColumn('repository_pattern', name, (c) => c.notNull())
    .addColumn('keep_last', sql`integer`)
    .addColumn('max_age_days', sql`integer`)
    .addColumn('keep_tags', text, (c) => c.notNull())
    .addColumn('protected_tags', text, (c) => c.notNull())
    .addColumn('untagged_expiry_ms', sql`bigint`)
    .addColumn('updated_at', time, (c) => c.notNull())
    .modifyEnd(tableEnd)
    .execute();

  await db.schema
    .createTable('gc_locks')
    .addColumn('name', name, (c) => c.primaryKey())
    .addColumn('holder', name, (c) => c.notNull())
    .addColumn('expires_at', time, (c) => c.notNull())
    .modifyEnd(tableEnd)
    .execute();

  // Storage objects the index has let go of, deleted by the collector after the commit that
  // dropped their rows; a push that needs one again removes its row first (see reviveForPush).
  await db.schema
    .createTable('gc_pending')
    .addColumn('id', id, (c) => c.primaryKey().autoIncrement())
    .addColumn('object_key', mysql ? sql`varchar(1024)` : sql`text`, (c) => c.notNull())
    .addColumn('kind', mysql ? sql`varchar(16)` : sql`text`, (c) => c.notNull())
    .addColumn('repository', name)
    .addColumn('digest', mysql ? sql`varchar(150)` : sql`text`)
    .addColumn('tag', mysql ? sql`varchar(128)` : sql`text`)
    .addColumn('size', sql`bigint`, (c) => c.notNull())
    .addColumn('created_at', time, (c) => c.notNull())
    .modifyEnd(tableEnd)
    .execute();
  await db.schema.createIndex('gc_pending_digest').on('gc_pending').column('digest').execute();
  await db.schema
    .createIndex('gc_pending_tag')
    .on('gc_pending')
    .columns(['repository', 'tag'])
    .execute();

  // Digests a push is about to use (written before it looks at storage): never garbage while
  // younger than the grace period, and a pending deletion of them is skipped.
  await db.schema
    .createTable('gc_recent')
    .addColumn('digest', mysql ? sql`varchar(150)` : sql`text`, (c) => c.primaryKey())
    .addColumn('at', time, (c) => c.notNull())
    .modifyEnd(tableEnd)
    .execute();

  await db.schema
    .createTable('gc_runs')
    .addColumn('id', id, (c) => c.primaryKey().autoIncrement())
    .addColumn('started_at', time, (c) => c.notNull())
    .addColumn('finished_at', time, (c) => c.notNull())
    .addColumn('dry_run', sql`integer`, (c) => c.notNull())
    .addColumn('report', text, (c) => c.notNull())
    .modifyEnd(tableEnd)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['gc_runs', 'gc_recent', 'gc_pending', 'gc_locks', 'retention_policies']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
