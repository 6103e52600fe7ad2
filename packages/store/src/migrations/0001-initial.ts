import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../dialect.js';

/**
 * Column types per dialect. MySQL gets exact widths, `DATETIME(3)` (no 2038 limit, kept in
 * UTC by the store), `BIGINT` sizes and `LONGBLOB`/`LONGTEXT` (no 16 MiB cap); each MySQL table
 * defaults to `utf8mb4_bin` so names, tags and digests compare byte by byte and case-sensitively.
 * SQLite's defaults (TEXT with the BINARY collation, INTEGER, BLOB) already behave that way.
 */
function types(dialect: DialectName) {
  const mysql = dialect === 'mysql';
  return {
    id: mysql ? sql`bigint` : sql`integer`,
    ref: sql`bigint`,
    name: mysql ? sql`varchar(255)` : sql`text`,
    tag: mysql ? sql`varchar(128)` : sql`text`,
    digest: mysql ? sql`varchar(150)` : sql`text`,
    short: mysql ? sql`varchar(255)` : sql`text`,
    hash: mysql ? sql`char(64)` : sql`text`,
    time: mysql ? sql`datetime(3)` : sql`text`,
    bigint: sql`bigint`,
    int: sql`integer`,
    text: mysql ? sql`longtext` : sql`text`,
    bytes: mysql ? sql`longblob` : sql`blob`,
    tableEnd: mysql ? sql`engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin` : sql``,
  };
}

/** The initial schema: every table of the index. */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  const t = types(dialect);

  await db.schema
    .createTable('repositories')
    .addColumn('id', t.id, (c) => c.primaryKey().autoIncrement())
    .addColumn('name', t.name, (c) => c.notNull().unique())
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();

  await db.schema
    .createTable('manifests')
    .addColumn('id', t.id, (c) => c.primaryKey().autoIncrement())
    .addColumn('repository_id', t.ref, (c) =>
      c.notNull().references('repositories.id').onDelete('cascade'),
    )
    .addColumn('digest', t.digest, (c) => c.notNull())
    .addColumn('media_type', t.short, (c) => c.notNull())
    .addColumn('artifact_type', t.short)
    .addColumn('kind', t.short, (c) => c.notNull())
    .addColumn('size', t.bigint, (c) => c.notNull())
    .addColumn('total_size', t.bigint, (c) => c.notNull())
    .addColumn('layer_count', t.int, (c) => c.notNull())
    .addColumn('subject_digest', t.digest)
    .addColumn('config_digest', t.digest)
    .addColumn('config_media_type', t.short)
    .addColumn('platform_sizes', t.text)
    .addColumn('annotations', t.text)
    .addColumn('raw', t.bytes, (c) => c.notNull())
    .addColumn('pushed_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('manifests_repository_digest', ['repository_id', 'digest'])
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema
    .createIndex('manifests_subject')
    .on('manifests')
    .columns(['repository_id', 'subject_digest'])
    .execute();

  await db.schema
    .createTable('tags')
    .addColumn('id', t.id, (c) => c.primaryKey().autoIncrement())
    .addColumn('repository_id', t.ref, (c) =>
      c.notNull().references('repositories.id').onDelete('cascade'),
    )
    .addColumn('name', t.tag, (c) => c.notNull())
    .addColumn('manifest_id', t.ref, (c) =>
      c.notNull().references('manifests.id').onDelete('cascade'),
    )
    .addColumn('digest', t.digest, (c) => c.notNull())
    .addColumn('pushed_at', t.time, (c) => c.notNull())
    .addUniqueConstraint('tags_repository_name', ['repository_id', 'name'])
    .modifyEnd(t.tableEnd)
    .execute();
  // Keyset pagination by push time (the dashboard's tag list).
  await db.schema
    .createIndex('tags_repository_pushed')
    .on('tags')
    .columns(['repository_id', 'pushed_at', 'id'])
    .execute();
  await db.schema.createIndex('tags_manifest').on('tags').column('manifest_id').execute();

  await db.schema
    .createTable('manifest_blobs')
    .addColumn('manifest_id', t.ref, (c) =>
      c.notNull().references('manifests.id').onDelete('cascade'),
    )
    .addColumn('digest', t.digest, (c) => c.notNull())
    .addPrimaryKeyConstraint('manifest_blobs_pk', ['manifest_id', 'digest'])
    .modifyEnd(t.tableEnd)
    .execute();
  // GC and "who uses this blob" walk from the blob side.
  await db.schema
    .createIndex('manifest_blobs_digest')
    .on('manifest_blobs')
    .column('digest')
    .execute();

  await db.schema
    .createTable('manifest_children')
    .addColumn('manifest_id', t.ref, (c) =>
      c.notNull().references('manifests.id').onDelete('cascade'),
    )
    .addColumn('child_digest', t.digest, (c) => c.notNull())
    .addPrimaryKeyConstraint('manifest_children_pk', ['manifest_id', 'child_digest'])
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema
    .createIndex('manifest_children_child')
    .on('manifest_children')
    .column('child_digest')
    .execute();

  await db.schema
    .createTable('repository_blobs')
    .addColumn('repository_id', t.ref, (c) =>
      c.notNull().references('repositories.id').onDelete('cascade'),
    )
    .addColumn('digest', t.digest, (c) => c.notNull())
    .addColumn('linked_at', t.time, (c) => c.notNull())
    .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema
    .createIndex('repository_blobs_digest')
    .on('repository_blobs')
    .column('digest')
    .execute();

  await db.schema
    .createTable('blobs')
    .addColumn('digest', t.digest, (c) => c.primaryKey())
    .addColumn('size', t.bigint, (c) => c.notNull())
    .addColumn('media_type', t.short, (c) => c.notNull())
    .addColumn('ref_count', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.time, (c) => c.notNull())
    .addColumn('updated_at', t.time, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();
  // GC candidates: unreferenced blobs by age.
  await db.schema
    .createIndex('blobs_ref_count')
    .on('blobs')
    .columns(['ref_count', 'updated_at'])
    .execute();

  await db.schema
    .createTable('tokens')
    .addColumn('id', t.id, (c) => c.primaryKey().autoIncrement())
    .addColumn('name', t.name, (c) => c.notNull())
    .addColumn('token_hash', t.hash, (c) => c.notNull().unique())
    .addColumn('created_by', t.name, (c) => c.notNull())
    .addColumn('scopes', t.short, (c) => c.notNull())
    .addColumn('repo_pattern', t.name, (c) => c.notNull())
    .addColumn('expires_at', t.time)
    .addColumn('last_used_at', t.time)
    .addColumn('revoked_at', t.time)
    .addColumn('created_at', t.time, (c) => c.notNull())
    .modifyEnd(t.tableEnd)
    .execute();

  await db.schema
    .createTable('audit_events')
    .addColumn('id', t.id, (c) => c.primaryKey().autoIncrement())
    .addColumn('at', t.time, (c) => c.notNull())
    .addColumn('actor', t.name, (c) => c.notNull())
    .addColumn('action', t.short, (c) => c.notNull())
    .addColumn('repository', t.name)
    .addColumn('reference', t.digest)
    .addColumn('digest', t.digest)
    .addColumn('detail', t.text)
    .modifyEnd(t.tableEnd)
    .execute();
  await db.schema.createIndex('audit_events_at').on('audit_events').columns(['at', 'id']).execute();
}

/** Drops every table of the initial schema, children first. */
export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'audit_events',
    'tokens',
    'blobs',
    'repository_blobs',
    'manifest_children',
    'manifest_blobs',
    'tags',
    'manifests',
    'repositories',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
