import { afterEach, expect, it } from 'vitest';
import { openStore, type Store } from '../src/index.js';
import { forEachDatabase, type TestDatabase } from './helpers.js';

const TABLES = [
  'audit_events',
  'blobs',
  'gc_locks',
  'gc_pending',
  'gc_recent',
  'gc_runs',
  'manifest_blobs',
  'manifest_children',
  'manifests',
  'repositories',
  'repository_blobs',
  'repository_settings',
  'repository_trigrams',
  'retention_policies',
  'settings',
  'tags',
  'tokens',
];

it('refuses to open without a database, or with a non-MySQL DSN', async () => {
  await expect(openStore({})).rejects.toThrow(/needs a MySQL dsn or an SQLite file/);
  await expect(openStore({ dsn: 'postgres://x/y' })).rejects.toThrow(/mysql:\/\//);
});

forEachDatabase((fresh, kind) => {
  let database: TestDatabase | undefined;
  const stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await database?.drop();
  });

  it('migrates an empty database to the latest version, once', async () => {
    database = await fresh();
    const store = await database.open();
    stores.push(store);
    expect(store.dialect).toBe(kind);
    expect(await store.reads.stats()).toEqual({
      repositoryCount: 0,
      tagCount: 0,
      blobCount: 0,
      totalSize: 0,
      logicalSize: 0,
    });
    // Reopening finds nothing to do.
    const again = await database.open();
    stores.push(again);
    expect((await again.reads.listRepositoryNames()).items).toEqual([]);
    await again.ping();
    expect(await again.pendingMigrations()).toEqual([]);
    // A migration this code knows but the database has not run shows as pending.
    await database.query("delete from kysely_migration where name = '0003-settings'");
    expect(await again.pendingMigrations()).toEqual(['0003-settings']);
  });

  it('runs migrations exactly once when four stores open a fresh database together', async () => {
    database = await fresh();
    const db = database;
    const opened = await Promise.all([db.open(), db.open(), db.open(), db.open()]);
    stores.push(...opened);
    for (const s of opened) expect((await s.reads.stats()).repositoryCount).toBe(0);
    const rows = await db.query('select name from kysely_migration');
    expect(rows.map((r) => r.name)).toEqual([
      '0001-initial',
      '0002-gc',
      '0003-settings',
      '0004-repository-aggregates',
      '0005-repository-settings',
    ]);
  });

  it('creates every table, with byte-order collation on MySQL', async () => {
    database = await fresh();
    stores.push(await database.open());
    const rows =
      kind === 'sqlite'
        ? await database.query("select name from sqlite_master where type = 'table'")
        : await database.query(
            'select table_name as name, table_collation as c from information_schema.tables where table_schema = database()',
          );
    const names = rows.map((r) => String(r.name));
    for (const table of TABLES) expect(names).toContain(table);
    if (kind === 'mysql') {
      for (const r of rows.filter((r) => TABLES.includes(String(r.name)))) {
        expect(r.c).toBe('utf8mb4_bin');
      }
      const columns = await database.query(
        "select column_name as n, column_type as t from information_schema.columns where table_schema = database() and table_name = 'manifests'",
      );
      const type = Object.fromEntries(columns.map((c) => [String(c.n), String(c.t)]));
      expect(type).toMatchObject({
        raw: 'longblob',
        pushed_at: 'datetime(3)',
        total_size: 'bigint(20)',
      });
    } else {
      const [mode] = await database.query('pragma journal_mode');
      expect(mode?.journal_mode).toBe('wal');
    }
  });
});
