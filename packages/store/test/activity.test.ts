import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Store } from '../src/index.js';
import { forEachDatabase, type TestDatabase } from './helpers.js';

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

  it('counts push events per UTC day since the given time, oldest first', async () => {
    const at = (iso: string) => new Date(iso);
    for (const [iso, action] of [
      ['2026-11-28T23:59:59.000Z', 'push'], // before `since`
      ['2026-11-30T00:00:00.000Z', 'push'],
      ['2026-11-30T23:59:59.999Z', 'push'],
      ['2026-11-30T12:00:00.000Z', 'delete'],
      ['2026-12-02T08:00:00.000Z', 'push'],
      ['2026-12-02T09:00:00.000Z', 'token.create'],
    ] as const) {
      await store.audit.append({ actor: 'ci', action, repository: 'a/b', at: at(iso) });
    }
    expect(await store.reads.pushesPerDay(at('2026-11-29T00:00:00.000Z'))).toEqual([
      { day: '2026-11-30', count: 2 },
      { day: '2026-12-02', count: 1 },
    ]);
    expect(await store.reads.pushesPerDay(at('2026-12-03T00:00:00.000Z'))).toEqual([]);
  });
});
