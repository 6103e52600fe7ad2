import type { RepositoryScan, ScannedBlob } from '@epoch/oci';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, MysqlDialect, SqliteDialect } from 'kysely';
import { createPool } from 'mysql2';
import { afterEach, expect, it } from 'vitest';
import type { Store } from '../src/index.js';
import { StoreMigrations } from '../src/migrations/index.js';
import {
  blob,
  containerImage,
  forEachDatabase,
  imageManifest,
  type TestDatabase,
} from './helpers.js';

const T0 = new Date('2020-01-01T00:00:00.000Z');
const cfg = blob(10, 'application/vnd.oci.image.config.v1+json');

/**
 * Every repository's stored aggregates must equal a recount of its rows, twice over: the
 * store's own check (`aggregateDrift`, grouped queries over `manifest_blobs.repository_id`),
 * and an independent one here, in the per-repository subqueries the listing ran before the
 * aggregates existed (references reached through `manifests`, not the new column).
 */
async function expectNoDrift(store: Store, database: TestDatabase): Promise<void> {
  for (let after = 0; ; ) {
    const { drift, last } = await store.reads.aggregateDrift(after, 1000);
    expect(drift).toEqual([]);
    if (last === undefined) break;
    after = last;
  }
  const rows = await database.query(`select r.name,
      r.manifest_count, (select count(*) from manifests m where m.repository_id = r.id) as manifests,
      r.tag_count, (select count(*) from tags t where t.repository_id = r.id) as tags,
      r.logical_size, (select coalesce(sum(m.total_size), 0) from tags t
        join manifests m on m.id = t.manifest_id where t.repository_id = r.id) as logical,
      r.total_size, (select coalesce(sum(b.size), 0) from blobs b where b.digest in (
        select rb.digest from repository_blobs rb where rb.repository_id = r.id
        union select mb.digest from manifest_blobs mb join manifests m on m.id = mb.manifest_id
        where m.repository_id = r.id)) as size
    from repositories r order by r.name`);
  for (const r of rows) {
    const stored = [r.manifest_count, r.tag_count, r.logical_size, r.total_size].map(Number);
    const counted = [r.manifests, r.tags, r.logical, r.size].map(Number);
    expect({ name: r.name, aggregates: stored }).toEqual({ name: r.name, aggregates: counted });
  }
  // Every reference carries its manifest's repository.
  const astray = await database.query(`select count(*) as n from manifest_blobs mb
    join manifests m on m.id = mb.manifest_id
    where mb.repository_id is null or mb.repository_id <> m.repository_id`);
  expect(Number(astray[0]?.n)).toBe(0);
}

/** What `/api/repositories` shows of one repository. */
async function shown(store: Store, name: string) {
  const r = await store.reads.getRepository(name);
  return r && { tags: r.tagCount, size: r.totalSize, kind: r.kind };
}

/** A small deterministic random generator, so a failing interleaving can be replayed. */
function random(seed: number) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

forEachDatabase((fresh, kind) => {
  let database: TestDatabase | undefined;
  const stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await database?.drop();
  });

  it('keeps tag counts and sizes equal to a recount through every kind of write', async () => {
    database = await fresh();
    const store = await database.open();
    stores.push(store);
    const base = blob(1000);
    const own = blob(100);
    const a = imageManifest(cfg, [base, own]);
    const b = imageManifest(cfg, [base, blob(200)]);

    // Blobs uploaded first (links), then the manifest: the size is the linked blobs, once each.
    for (const d of [cfg, base, own]) await store.writes.linkBlob('app', d.digest, d.size);
    expect(await shown(store, 'app')).toBeUndefined(); // a link alone lists nothing
    await store.writes.recordManifest('app', { ...a, tags: ['v1', 'latest'], pushedAt: T0 });
    await expectNoDrift(store, database);
    expect(await shown(store, 'app')).toMatchObject({ tags: 2 });

    // A manifest whose blobs were never linked (an upstream bucket): referenced blobs count.
    await store.writes.recordManifest('app', { ...b, tags: ['v2'] });
    expect(await shown(store, 'app')).toMatchObject({ tags: 3 });
    await expectNoDrift(store, database);

    // Re-push, re-tag to another manifest, delete a tag, delete a manifest with its tags.
    await store.writes.recordManifest('app', { ...a, tags: ['v1'] });
    await store.writes.recordManifest('app', { ...b, tags: ['latest'] });
    await expectNoDrift(store, database);
    expect(await store.writes.deleteTag('app', 'v1')).toBe(true);
    expect(await store.writes.deleteTag('app', 'v1')).toBe(false);
    await expectNoDrift(store, database);
    await store.writes.deleteManifest('app', b.digest);
    expect(await shown(store, 'app')).toMatchObject({ tags: 0 }); // untagged a is left
    await expectNoDrift(store, database);

    // Links of a referenced and of an unreferenced blob, then unlinks.
    const extra = blob(5000);
    await store.writes.linkBlob('app', extra.digest, extra.size);
    await store.writes.linkBlob('app', extra.digest, extra.size);
    await store.writes.linkBlob('app', base.digest, base.size);
    await expectNoDrift(store, database);
    expect(await store.writes.unlinkBlob('app', extra.digest)).toBe(true);
    expect(await store.writes.unlinkBlob('app', base.digest)).toBe(true); // still referenced by a
    await expectNoDrift(store, database);
    const repo = await store.reads.getRepository('app');
    expect(repo?.totalSize).toBe(cfg.size + base.size + own.size);

    // A GC with no grace period and a policy keeping the newest tag (and top-level manifest):
    // the older tag, the manifests left untagged, the links no survivor uses, then the blob
    // rows nothing holds any more.
    const layer = blob(300);
    const e = imageManifest(cfg, [blob(400)]);
    const d = imageManifest(cfg, [own, layer]);
    await store.writes.recordManifest('app', { ...e, tags: ['old'], pushedAt: T0 });
    await store.writes.recordManifest('app', { ...d, tags: ['v3'] });
    await expectNoDrift(store, database);
    const later = new Date(Date.now() + 60_000);
    const clock = { now: later, cutoff: later };
    const policy = { repositoryPattern: '*', keepLast: 1 };
    const target = (await store.gc.repositories()).find((g) => g.name === 'app');
    if (!target) throw new Error('app is not a GC target');
    const swept = await store.gc.apply(await store.gc.plan(target, policy, clock), policy, clock);
    expect(swept.tags.map((t) => t.name)).toEqual(['old']);
    expect(swept.manifests.map((m) => m.digest).sort()).toEqual([a.digest, e.digest].sort());
    await expectNoDrift(store, database);
    expect(await shown(store, 'app')).toMatchObject({ tags: 1 });
    expect((await store.reads.getRepository('app'))?.totalSize).toBe(
      cfg.size + own.size + layer.size,
    );
    const unused = await store.gc.blobCandidates(later, undefined, 100);
    expect(unused.map((u) => u.digest)).toContain(base.digest);
    expect(
      (
        await store.gc.deleteBlobs(
          unused.map((u) => u.digest),
          later,
        )
      ).length,
    ).toBe(unused.length);
    await expectNoDrift(store, database);

    // Another repository sharing the base layer, then a reconcile that corrects its size.
    const c = imageManifest(cfg, [base]);
    await store.writes.recordManifest('other', { ...c, tags: ['x'] });
    const snapshotBlobs = new Map<string, ScannedBlob>([
      [cfg.digest, { size: cfg.size, linked: true, linkedAt: T0 }],
      [base.digest, { size: base.size + 24, linked: true, linkedAt: T0 }],
    ]);
    const other: RepositoryScan = {
      name: 'other',
      manifests: new Map([[c.digest, { ...c, pushedAt: T0 }]]),
      tags: new Map([['x', { digest: c.digest, pushedAt: T0 }]]),
      blobs: snapshotBlobs,
    };
    const report = await store.writes.reconcile({
      startedAt: new Date(Date.now() + 1000),
      repositories: [other],
    });
    expect(report.blobs.updated).toBeGreaterThan(0);
    // 'app' was not in the snapshot and is gone, with its search entries; 'other' holds the
    // corrected size.
    expect(report.repositories.removed).toBe(1);
    expect(await store.reads.getRepository('app')).toBeUndefined();
    expect((await store.reads.getRepository('other'))?.totalSize).toBe(cfg.size + base.size + 24);
    await expectNoDrift(store, database);
    const grams = await database.query(
      'select count(*) as n from repository_trigrams where repository_id not in (select id from repositories)',
    );
    expect(Number(grams[0]?.n)).toBe(0);
    expect((await store.reads.listRepositories({ search: 'app' })).items).toEqual([]);

    // Deleting the last manifest unlists the repository: no count or size of it remains.
    await store.writes.deleteManifest('other', c.digest);
    await expectNoDrift(store, database);
    expect(await store.reads.getRepository('other')).toBeUndefined();
    expect(await store.reads.stats()).toMatchObject({
      repositoryCount: 0,
      tagCount: 0,
      logicalSize: 0,
    });
  });

  it('stays exact under concurrent pushes, deletes, links, GC and reconcile from three stores', async () => {
    database = await fresh();
    const opened = [await database.open(), await database.open(), await database.open()];
    stores.push(...opened);
    const [first] = opened;
    if (!first) throw new Error('no store');
    const shared = [blob(1000), blob(2000), blob(3000)];
    const repos = ['r0', 'team/r1', 'team/r2'];
    const images = Array.from({ length: 12 }, (_, i) =>
      imageManifest(cfg, [shared[i % 3] as ReturnType<typeof blob>, blob(10 + i)]),
    );
    const rnd = random(kind === 'mysql' ? 7 : 11);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
    const ops: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < 240; i++) {
      const store = pick(opened);
      const repo = pick(repos);
      const image = pick(images);
      const r = rnd();
      if (r < 0.35) {
        ops.push(() => store.writes.recordManifest(repo, { ...image, tags: [`t${i % 7}`] }));
      } else if (r < 0.45) {
        ops.push(() => store.writes.deleteTag(repo, `t${i % 7}`));
      } else if (r < 0.55) {
        ops.push(() => store.writes.deleteManifest(repo, image.digest));
      } else if (r < 0.7) {
        const d = pick([...shared, cfg, blob(50)]);
        ops.push(() => store.writes.linkBlob(repo, d.digest, d.size));
      } else if (r < 0.8) {
        ops.push(() => store.writes.unlinkBlob(repo, pick([...shared, cfg]).digest));
      } else if (r < 0.9) {
        // A collection of the repository with no grace period: untagged manifests and unused
        // links go, racing the pushes.
        ops.push(async () => {
          const id = (await store.gc.repositories()).find((g) => g.name === repo);
          if (!id) return;
          const clock = {
            now: new Date(Date.now() + 60_000),
            cutoff: new Date(Date.now() + 60_000),
          };
          const plan = await store.gc.plan(id, undefined, clock);
          await store.gc.apply(plan, undefined, clock);
        });
      } else {
        // A reconcile of the repository against a snapshot of one image (with another size
        // for its shared layer): it removes, adds and corrects while pushes go on.
        const layer = image.parsed.kind === 'manifest' ? image.parsed.manifest.layers : [];
        const blobs = new Map<string, ScannedBlob>([
          [cfg.digest, { size: cfg.size, linked: true }],
        ]);
        for (const d of layer) blobs.set(d.digest, { size: d.size + (i % 2), linked: false });
        ops.push(() =>
          store.writes.reconcile({
            startedAt: new Date(),
            // Repositories missing from a snapshot are emptied too: the others race it.
            repositories: [
              {
                name: repo,
                manifests: new Map([[image.digest, { ...image }]]),
                tags: new Map([[`t${i % 7}`, { digest: image.digest }]]),
                blobs,
              },
            ],
          }),
        );
      }
    }
    // Eight at a time, in random order: every kind of write overlaps every other.
    let next = 0;
    const worker = async () => {
      while (next < ops.length) {
        const op = ops[next++];
        await op?.();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await expectNoDrift(first, database);
    // And what the listing shows is the recount, every sort.
    const listed = await first.reads.listRepositories({ sort: 'size', limit: 100 });
    for (const r of listed.items) {
      const tags = await database.query(
        `select count(*) as n from tags t join repositories r on r.id = t.repository_id where r.name = '${r.name}'`,
      );
      expect(r.tagCount).toBe(Number(tags[0]?.n));
    }
  });

  /** Repositories of three teams, a shared layer and a few images each: a populated index. */
  async function populate(store: Store): Promise<void> {
    const base = blob(700);
    for (let i = 0; i < 30; i++) {
      const name = `team-${i % 3}/svc-${i}`;
      await store.writes.linkBlob(name, base.digest, base.size);
      const img = imageManifest(cfg, [base, blob(10 * i + 1)]);
      await store.writes.recordManifest(name, { ...img, tags: ['v1', `v${i}`] });
      if (i % 5 === 0)
        await store.writes.recordManifest(name, { ...containerImage([i + 1]), tags: ['v1'] });
    }
  }

  /** Runs 0004's `down`: the database is as code from before the aggregates left it. */
  async function back0003(db: TestDatabase): Promise<void> {
    const k =
      kind === 'sqlite'
        ? new Kysely<unknown>({
            dialect: new SqliteDialect({
              database: new BetterSqlite3(
                String((await db.query('pragma database_list'))[0]?.file),
              ),
            }),
          })
        : new Kysely<unknown>({
            dialect: new MysqlDialect({ pool: createPool({ uri: await dsnOf(db) }) }),
          });
    const migrator = new Migrator({ db: k, provider: new StoreMigrations(kind) });
    const down = await migrator.migrateTo('0003-settings');
    expect(down.error).toBeUndefined();
    await k.destroy();
    const columns = await db.query(
      kind === 'sqlite'
        ? "select name from pragma_table_info('repositories')"
        : "select column_name as name from information_schema.columns where table_schema = database() and table_name = 'repositories'",
    );
    expect(columns.map((c) => String(c.name)).sort()).toEqual([
      'created_at',
      'id',
      'name',
      'updated_at',
    ]);
  }

  it('backfills the aggregates, references and search index of an index written before them', async () => {
    database = await fresh();
    const store = await database.open();
    await populate(store);
    const before = await store.reads.listRepositories({ sort: 'size', limit: 1000 });
    const found = await store.reads.listRepositories({ search: 'vc-1', limit: 1000 });
    await store.close();

    await back0003(database);
    const again = await database.open();
    stores.push(again);
    expect(await again.pendingMigrations()).toEqual([]);
    await expectNoDrift(again, database);
    expect(await again.reads.listRepositories({ sort: 'size', limit: 1000 })).toEqual(before);
    expect(await again.reads.listRepositories({ search: 'vc-1', limit: 1000 })).toEqual(found);
    expect(found.items.map((r) => r.name)).toContain('team-1/svc-1');
    const nulls = await database.query(
      'select count(*) as n from manifest_blobs where repository_id is null',
    );
    expect(Number(nulls[0]?.n)).toBe(0);
  });

  it('finishes a 0004 that stopped half-way (MySQL DDL is not transactional)', async () => {
    database = await fresh();
    const store = await database.open();
    await populate(store);
    const before = await store.reads.listRepositories({ sort: 'tags', limit: 1000 });
    const stats = await store.reads.stats();
    await store.close();

    // What a run killed during the backfill leaves: the reference column added and half
    // filled, one aggregate column of four, the search table created with a few names in it.
    await back0003(database);
    await database.query('alter table manifest_blobs add column repository_id bigint');
    await database.query(`update manifest_blobs set repository_id = (select m.repository_id
      from manifests m where m.id = manifest_blobs.manifest_id) where manifest_id <= 10`);
    await database.query(
      'alter table repositories add column manifest_count bigint not null default 0',
    );
    await database.query(
      `create table repository_trigrams (gram ${kind === 'mysql' ? 'varchar(12)' : 'text'} not null,
        repository_id bigint not null references repositories (id) on delete cascade,
        primary key (gram, repository_id))${kind === 'mysql' ? ' default charset=utf8mb4 collate=utf8mb4_bin' : ''}`,
    );
    await database.query(
      "insert into repository_trigrams (gram, repository_id) select 'tea', id from repositories where id <= 5",
    );

    const again = await database.open();
    stores.push(again);
    expect(await again.pendingMigrations()).toEqual([]);
    await expectNoDrift(again, database);
    expect(await again.reads.listRepositories({ sort: 'tags', limit: 1000 })).toEqual(before);
    expect(await again.reads.stats()).toEqual(stats);
    const expected = Array.from({ length: 30 }, (_, n) => `team-${n % 3}/svc-${n}`)
      .filter((name) => name.includes('svc-2'))
      .sort();
    const searched = await again.reads.listRepositories({ search: 'svc-2', limit: 1000 });
    expect(searched.items.map((r) => r.name)).toEqual(expected);
  });

  it('has a reconcile repair aggregates and references that drifted behind its back', async () => {
    database = await fresh();
    const store = await database.open();
    stores.push(store);
    const img = imageManifest(cfg, [blob(300)]);
    await store.writes.recordManifest('app', { ...img, tags: ['v1'], pushedAt: T0 });
    await store.writes.recordManifest('lib', {
      ...containerImage([5]),
      tags: ['v1'],
      pushedAt: T0,
    });
    const before = await store.reads.listRepositories({ sort: 'size' });
    // What a replica running code from before the aggregates would leave: wrong counts, and
    // references without their repository.
    await database.query(
      "update repositories set tag_count = 99, total_size = 1 where name = 'app'",
    );
    await database.query('update manifest_blobs set repository_id = null');
    expect((await store.reads.aggregateDrift()).drift.map((d) => d.name)).toEqual(['app', 'lib']);
    const blobs = new Map<string, ScannedBlob>();
    if (img.parsed.kind === 'manifest') {
      for (const d of [img.parsed.manifest.config, ...img.parsed.manifest.layers]) {
        blobs.set(d.digest, { size: d.size, linked: false });
      }
    }
    const lib = (await store.reads.listRepositories()).items.find((r) => r.name === 'lib');
    expect(lib).toBeDefined();
    // 'lib' is left out of the snapshot but pushed "after" it started, so it stays as it is.
    const report = await store.writes.reconcile({
      startedAt: new Date(T0.getTime() - 1000),
      repositories: [
        {
          name: 'app',
          manifests: new Map([[img.digest, { ...img, pushedAt: T0 }]]),
          tags: new Map([['v1', { digest: img.digest, pushedAt: T0 }]]),
          blobs,
        },
      ],
    });
    // 'app' had wrong numbers; 'lib' only references without their repository (its numbers
    // were right, and a recount over the repaired references agrees with them).
    expect(report.aggregates).toBe(1);
    await expectNoDrift(store, database);
    expect(await store.reads.listRepositories({ sort: 'size' })).toEqual(before);
    const nulls = await database.query(
      'select count(*) as n from manifest_blobs where repository_id is null',
    );
    expect(Number(nulls[0]?.n)).toBe(0);
  });

  it('shows a filtered caller only its repositories: names, counts, sizes, cursors, search', async () => {
    database = await fresh();
    const store = await database.open();
    stores.push(store);
    const shared = blob(4000);
    const push = (repo: string, layers: ReturnType<typeof blob>[], tags: string[]) =>
      store.writes.recordManifest(repo, { ...imageManifest(cfg, layers), tags });
    await push('team-a/app', [shared, blob(10)], ['v1', 'v2']);
    await push('team-a/lib', [blob(20)], ['v1']);
    await push('team-b/app', [shared, blob(30)], ['v1']);
    await push('team-b/secret-app', [blob(5000)], ['v1', 'v2', 'v3']);
    await store.writes.linkBlob('team-b/secret-app', blob(777).digest, 777);
    // The same needle, for the search index's candidates and for the paging path.
    const many = Array.from(
      { length: 5_050 },
      (_, i) => `('team-c/secret-${i}', '2020-01-01 00:00:00.000', '2020-01-01 00:00:00.000')`,
    );
    await database.query(
      `insert into repositories (name, created_at, updated_at) values ${many.join(', ')}`,
    );
    await database.query(
      "insert into repository_trigrams (gram, repository_id) select g.gram, r.id from repositories r, (select 'sec' as gram union select 'ecr' union select 'cre' union select 'ret' union select 'app') g where r.name like 'team-c/%'",
    );
    const filter = { patterns: ['team-a/*'] };

    // Every number from team-a's rows alone, counted here (the shared layer once).
    const [expected] = await database.query(`select
        (select count(*) from repositories where name like 'team-a/%' and manifest_count > 0) as repositoryCount,
        (select count(*) from tags t join repositories r on r.id = t.repository_id where r.name like 'team-a/%') as tagCount,
        (select count(*) from blobs where digest in (select mb.digest from manifest_blobs mb
          join manifests m on m.id = mb.manifest_id join repositories r on r.id = m.repository_id
          where r.name like 'team-a/%')) as blobCount,
        (select sum(size) from blobs where digest in (select mb.digest from manifest_blobs mb
          join manifests m on m.id = mb.manifest_id join repositories r on r.id = m.repository_id
          where r.name like 'team-a/%')) as totalSize,
        (select sum(m.total_size) from tags t join manifests m on m.id = t.manifest_id
          join repositories r on r.id = t.repository_id where r.name like 'team-a/%') as logicalSize`);
    const numbers = Object.fromEntries(
      Object.entries(expected ?? {}).map(([k, v]) => [k, Number(v)]),
    );
    expect(await store.reads.stats(filter)).toEqual(numbers);
    expect(numbers).toMatchObject({ repositoryCount: 2, tagCount: 3, blobCount: 4 });

    // Every sort, one per page: only team-a's names, and no other name in a cursor.
    for (const sort of ['name', 'updated', 'size', 'tags'] as const) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.reads.listRepositories({ sort, limit: 1, filter, cursor });
        seen.push(...page.items.map((r) => r.name));
        cursor = page.nextCursor;
        if (cursor) expect(Buffer.from(cursor, 'base64url').toString()).not.toMatch(/team-[bc]/);
      } while (cursor);
      expect(seen.sort()).toEqual(['team-a/app', 'team-a/lib']);
    }
    expect((await store.reads.listRepositoryNames({ filter })).items).toEqual([
      'team-a/app',
      'team-a/lib',
    ]);

    // Searches: rare trigrams (candidates), common ones (paging in sort order), too short.
    const search = async (needle: string) =>
      (await store.reads.listRepositories({ search: needle, filter, limit: 100 })).items.map(
        (r) => r.name,
      );
    expect(await search('secret')).toEqual([]);
    expect(await search('secret-app')).toEqual([]); // 'et-' is rare: candidates from the index
    expect(await search('team-b')).toEqual([]);
    expect(await search('lib')).toEqual(['team-a/lib']);
    expect(
      (await store.reads.listRepositories({ search: 'secret-app', limit: 100 })).items.map(
        (r) => r.name,
      ),
    ).toEqual(['team-b/secret-app']); // what the filter hid is there
    expect(await search('app')).toEqual(['team-a/app']);
    expect(await search('ap')).toEqual(['team-a/app']);
    expect(await search('/')).toEqual(['team-a/app', 'team-a/lib']);

    // Writes to another team change none of team-a's numbers.
    await push('team-b/app', [shared, blob(40)], ['v9']);
    await store.writes.deleteTag('team-b/secret-app', 'v1');
    await store.writes.unlinkBlob('team-b/secret-app', shared.digest);
    expect(await store.reads.stats(filter)).toEqual(numbers);
    await expectNoDrift(store, database);
  });

  it('searches names by substring through the trigram index and without it', async () => {
    database = await fresh();
    const store = await database.open();
    stores.push(store);
    const names = ['alpha/web', 'beta/web-api', 'gamma/worker', 'ab', 'team-x/alphabet'];
    for (const name of names)
      await store.writes.recordManifest(name, { ...containerImage([1]), tags: ['v'] });
    // Repositories holding only a link are in the search index but never listed.
    await store.writes.linkBlob('hidden/alpha', cfg.digest, cfg.size);
    const search = async (needle: string, extra: object = {}) =>
      (await store.reads.listRepositories({ search: needle, limit: 100, ...extra })).items.map(
        (r) => r.name,
      );
    expect(await search('alpha')).toEqual(['alpha/web', 'team-x/alphabet']);
    expect(await search('WEB')).toEqual(['alpha/web', 'beta/web-api']);
    expect(await search('b')).toEqual(['ab', 'alpha/web', 'beta/web-api', 'team-x/alphabet']); // shorter than a trigram
    expect(await search('zzz')).toEqual([]);
    expect(await search('pha/w')).toEqual(['alpha/web']);
    expect(await search('alpha', { filter: { patterns: ['team-x/*'] } })).toEqual([
      'team-x/alphabet',
    ]);
    expect(await search('web', { sort: 'tags' })).toEqual(['alpha/web', 'beta/web-api']);

    // More repositories share a trigram than the index hands out as candidates: the search
    // pages through the sort order instead, and still finds exactly the matches.
    const many = 5_050;
    const rows = Array.from(
      { length: many },
      (_, i) => `('common/rep${i}', '2020-01-01 00:00:00.000', '2020-01-01 00:00:00.000')`,
    );
    await database.query(
      `insert into repositories (name, created_at, updated_at) values ${rows.join(', ')}`,
    );
    await database.query(
      `insert into repository_trigrams (gram, repository_id) select 'com', id from repositories where name like 'common/%'`,
    );
    await store.writes.recordManifest('common/rep7', { ...containerImage([2]), tags: ['v'] });
    await store.writes.recordManifest('x/common', { ...containerImage([2]), tags: ['v'] });
    expect(await search('com')).toEqual(['common/rep7', 'x/common']);
  });
});

/** The DSN of a MySQL test database (from its own connection). */
async function dsnOf(database: TestDatabase): Promise<string> {
  const [row] = await database.query('select database() as db');
  const url = new URL(process.env.EPOCH_TEST_MYSQL_URL ?? '');
  url.pathname = `/${String(row?.db)}`;
  return url.toString();
}
