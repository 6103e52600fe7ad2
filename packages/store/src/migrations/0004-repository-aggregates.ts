import { type Kysely, sql } from 'kysely';
import type { DialectName, Executor } from '../dialect.js';
import { indexNames, recountRepositories } from '../queries/aggregates.js';
import type { Database } from '../schema.js';

/**
 * Aggregates and indexes that keep `/api/` listings fast at 100,000 repositories:
 *
 * - `manifest_blobs.repository_id` (the manifest's repository, indexed with the digest), so
 *   "does this repository reference this blob" is one index probe;
 * - `repositories.manifest_count`, `tag_count`, `total_size`, `logical_size`, maintained by
 *   every write (see `queries/aggregates.ts`), with one index per descending sort order;
 * - `repository_trigrams`, the three-character substrings of each name, so a substring search
 *   starts from the repositories that can match instead of reading every name.
 *
 * Everything added is backfilled from the existing rows, in bounded statements. Concurrent
 * start-up runs this once (MySQL: the migrator's `GET_LOCK`; SQLite: one transaction); each
 * step also checks whether it is already done, so a MySQL run interrupted half-way (DDL is not
 * transactional there) finishes on the next start instead of failing.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  const mysql = dialect === 'mysql';
  const x: Executor = { db: db as unknown as Kysely<Database>, dialect };
  const tableEnd = mysql ? sql`engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin` : sql``;
  const columns = async (table: string): Promise<Set<string>> => {
    const tables = await db.introspection.getTables();
    return new Set(tables.find((t) => t.name === table)?.columns.map((c) => c.name) ?? []);
  };
  const createIndex = async (name: string, definition: ReturnType<typeof sql>): Promise<void> => {
    if (mysql) {
      const found = await sql<{ n: number }>`select count(*) as n from information_schema.statistics
        where table_schema = database() and index_name = ${name}`.execute(db);
      if (Number(found.rows[0]?.n ?? 0) > 0) return;
      await sql`create index ${sql.id(name)} on ${definition}`.execute(db);
    } else {
      await sql`create index if not exists ${sql.id(name)} on ${definition}`.execute(db);
    }
  };
  const idRange = async (table: string): Promise<[number, number]> => {
    const row = await sql<{ lo: number | null; hi: number | null }>`select min(id) as lo,
      max(id) as hi from ${sql.table(table)}`.execute(db);
    return [Number(row.rows[0]?.lo ?? 0), Number(row.rows[0]?.hi ?? -1)];
  };

  // 1. The repository of each manifest reference.
  if (!(await columns('manifest_blobs')).has('repository_id')) {
    await db.schema.alterTable('manifest_blobs').addColumn('repository_id', sql`bigint`).execute();
  }
  const [firstManifest, lastManifest] = await idRange('manifests');
  for (let lo = firstManifest; lo <= lastManifest; lo += 10_000) {
    const hi = lo + 9_999;
    await sql`update manifest_blobs set repository_id = (select m.repository_id from manifests m
      where m.id = manifest_blobs.manifest_id)
      where repository_id is null and manifest_id between ${lo} and ${hi}`.execute(db);
  }
  await createIndex('manifest_blobs_repository', sql`manifest_blobs (repository_id, digest)`);

  // 2. The aggregates, then the indexes each sort order pages on (descending key, id ascending:
  //    the order `listRepositories` pages in).
  const have = await columns('repositories');
  for (const column of ['manifest_count', 'tag_count', 'total_size', 'logical_size']) {
    if (have.has(column)) continue;
    await db.schema
      .alterTable('repositories')
      .addColumn(column, sql`bigint`, (c) => c.notNull().defaultTo(0))
      .execute();
  }
  const [firstRepo, lastRepo] = await idRange('repositories');
  for (let lo = firstRepo; lo <= lastRepo; lo += 1_000) {
    const ids = await db
      .selectFrom('repositories' as never)
      .select(sql<number>`id`.as('id'))
      .where(sql<boolean>`id between ${lo} and ${lo + 999}`)
      .execute();
    await recountRepositories(
      x,
      ids.map((r) => Number((r as { id: number }).id)),
    );
  }
  await createIndex('repositories_updated', sql`repositories (updated_at desc, id)`);
  await createIndex('repositories_size', sql`repositories (total_size desc, id)`);
  await createIndex('repositories_tags', sql`repositories (tag_count desc, id)`);

  // 3. The search index of names.
  await db.schema
    .createTable('repository_trigrams')
    .ifNotExists()
    .addColumn('gram', mysql ? sql`varchar(12)` : sql`text`, (c) => c.notNull())
    .addColumn('repository_id', sql`bigint`, (c) =>
      c.notNull().references('repositories.id').onDelete('cascade'),
    )
    .addPrimaryKeyConstraint('repository_trigrams_pk', ['gram', 'repository_id'])
    .modifyEnd(tableEnd)
    .execute();
  await createIndex('repository_trigrams_repository', sql`repository_trigrams (repository_id)`);
  for (let lo = firstRepo; lo <= lastRepo; lo += 1_000) {
    const rows = (await db
      .selectFrom('repositories' as never)
      .select([sql<number>`id`.as('id'), sql<string>`name`.as('name')])
      .where(sql<boolean>`id between ${lo} and ${lo + 999}`)
      .execute()) as { id: number; name: string }[];
    await indexNames(
      x,
      rows.map((r) => ({ id: Number(r.id), name: r.name })),
    );
  }
}

export async function down(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  // MySQL names the table of an index to drop; SQLite refuses the clause.
  const dropIndex = (name: string, table: string) =>
    dialect === 'mysql'
      ? db.schema.dropIndex(name).on(table).execute()
      : db.schema.dropIndex(name).ifExists().execute();
  await db.schema.dropTable('repository_trigrams').ifExists().execute();
  for (const index of ['repositories_updated', 'repositories_size', 'repositories_tags']) {
    await dropIndex(index, 'repositories');
  }
  for (const column of ['manifest_count', 'tag_count', 'total_size', 'logical_size']) {
    await db.schema.alterTable('repositories').dropColumn(column).execute();
  }
  await dropIndex('manifest_blobs_repository', 'manifest_blobs');
  await db.schema.alterTable('manifest_blobs').dropColumn('repository_id').execute();
}
