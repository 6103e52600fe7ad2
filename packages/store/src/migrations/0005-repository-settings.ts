import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../dialect.js';

/**
 * `repository_settings`: choices a person made about one repository, for now its default
 * snapshot format (`full` or `incremental`, `@epoch/oci`'s `SNAPSHOT_FORMATS`).
 *
 * Keyed by the repository's name, not by `repositories.id`, and without a foreign key, because
 * a `repositories` row is derived from storage and comes and goes with it: the reconcile of
 * `epoch reindex`, of start-up and of `POST /api/catalog/sync` deletes the row of a repository
 * storage no longer holds (all its tags deleted and collected), and a later push creates a new
 * row with a new id. A setting is not derived from storage (nothing in the bucket records it),
 * so it must outlive both: the repository emptied then refilled, or an index rebuilt on the same
 * database, keeps its default. It also lets an owner choose the default before the first push.
 * Like tokens and retention policies it lives only in the index (back the database up to keep
 * it). Column types follow `0001-initial`.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  const mysql = dialect === 'mysql';
  await db.schema
    .createTable('repository_settings')
    // Same type as `repositories.name`, so the listing's join compares like with like.
    .addColumn('name', mysql ? sql`varchar(255)` : sql`text`, (c) => c.primaryKey())
    .addColumn('default_format', mysql ? sql`varchar(32)` : sql`text`, (c) => c.notNull())
    .addColumn('updated_at', mysql ? sql`datetime(3)` : sql`text`, (c) => c.notNull())
    .addColumn('updated_by', mysql ? sql`varchar(255)` : sql`text`, (c) => c.notNull())
    .modifyEnd(mysql ? sql`engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin` : sql``)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('repository_settings').ifExists().execute();
}
