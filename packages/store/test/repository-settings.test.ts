import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Store } from '../src/index.js';
import { containerImage, forEachDatabase, type TestDatabase } from './helpers.js';

const T0 = new Date('2020-01-01T00:00:00.000Z');

forEachDatabase((fresh) => {
  let database: TestDatabase;
  let store: Store;
  beforeEach(async () => {
    database = await fresh();
    store = await database.open();
  });
  afterEach(async () => {
    await store.close();
    await database.drop();
  });

  const push = (name: string, tag = 'v1', pushedAt = new Date()) =>
    store.writes.recordManifest(name, { ...containerImage([10]), tags: [tag], pushedAt });

  it('has the full format by default, set by nobody', async () => {
    expect(await store.repositorySettings.get('team/vm')).toEqual({ defaultFormat: 'full' });
    await push('team/vm');
    expect(await store.reads.getRepository('team/vm')).toMatchObject({ defaultFormat: 'full' });
  });

  it('sets the default format, shows it in the repository reads, and reports what it replaced', async () => {
    await push('team/vm');
    await push('team/other');
    const at = new Date('2030-01-02T03:04:05.678Z');
    const first = await store.repositorySettings.set(
      'team/vm',
      { defaultFormat: 'incremental' },
      'alice',
      at,
    );
    expect(first).toEqual({
      before: { defaultFormat: 'full' },
      after: { defaultFormat: 'incremental', updatedAt: at, updatedBy: 'alice' },
    });
    expect(await store.repositorySettings.get('team/vm')).toEqual(first.after);
    expect(await store.reads.getRepository('team/vm')).toMatchObject({
      name: 'team/vm',
      defaultFormat: 'incremental',
    });
    // Only that repository: the listing joins each row with its own settings.
    const listed = (await store.reads.listRepositories()).items;
    expect(listed.map((r) => [r.name, r.defaultFormat])).toEqual([
      ['team/other', 'full'],
      ['team/vm', 'incremental'],
    ]);

    const back = await store.repositorySettings.set('team/vm', { defaultFormat: 'full' }, 'bob');
    expect(back.before).toEqual(first.after);
    expect(back.after).toMatchObject({ defaultFormat: 'full', updatedBy: 'bob' });
    expect(await store.reads.getRepository('team/vm')).toMatchObject({ defaultFormat: 'full' });
    const rows = await database.query('select name from repository_settings');
    expect(rows).toEqual([{ name: 'team/vm' }]);
  });

  it('refuses a format it does not know and changes nothing', async () => {
    await store.repositorySettings.set('team/vm', { defaultFormat: 'incremental' }, 'alice');
    await expect(
      store.repositorySettings.set(
        'team/vm',
        { defaultFormat: 'zstd' as unknown as 'full' },
        'mallory',
      ),
    ).rejects.toThrow(/unknown snapshot format/);
    expect(await store.repositorySettings.get('team/vm')).toMatchObject({
      defaultFormat: 'incremental',
      updatedBy: 'alice',
    });
  });

  it('reads a format name it does not know (a later release) as full, the one every reader reads', async () => {
    await push('team/vm');
    await store.repositorySettings.set('team/vm', { defaultFormat: 'incremental' }, 'alice');
    await database.query("update repository_settings set default_format = 'future-format'");
    expect((await store.repositorySettings.get('team/vm')).defaultFormat).toBe('full');
    expect(await store.reads.getRepository('team/vm')).toMatchObject({ defaultFormat: 'full' });
  });

  it('may be set before the first push, and outlives the repository emptied, reindexed and refilled', async () => {
    await store.repositorySettings.set('team/vm', { defaultFormat: 'incremental' }, 'alice');
    expect(await store.reads.getRepository('team/vm')).toBeUndefined();
    await push('team/vm', 'v1', T0);
    expect(await store.reads.getRepository('team/vm')).toMatchObject({
      defaultFormat: 'incremental',
    });

    // Storage no longer holds the repository (its tags deleted and collected): the reconcile
    // of `epoch reindex` removes its index rows, the repository row included.
    const report = await store.writes.reconcile({ startedAt: new Date(), repositories: [] });
    expect(report.repositories.removed).toBe(1);
    expect(await database.query("select id from repositories where name = 'team/vm'")).toEqual([]);
    expect((await store.repositorySettings.get('team/vm')).defaultFormat).toBe('incremental');

    // Refilled: a new repository row, the same setting.
    await push('team/vm', 'v2');
    expect(await store.reads.getRepository('team/vm')).toMatchObject({
      tagCount: 1,
      defaultFormat: 'incremental',
    });
  });
});
