import { afterEach, beforeEach, expect, it } from 'vitest';
import { InvalidCursorError, type Repository, type Store, type Tag } from '../src/index.js';
import {
  blob,
  containerImage,
  forEachDatabase,
  imageManifest,
  type TestDatabase,
} from './helpers.js';

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

  it('pages tag names in byte order with no gaps or duplicates', async () => {
    const img = containerImage([1]);
    const names = ['b', 'B', 'a', 'A', '_x', 'a-1', 'a.1', 'a_1', 'Z9', 'z', '0', 'v1.10', 'v1.9'];
    await store.writes.recordManifest('r', { ...img, tags: names });
    const expected = [...names].sort((p, q) => Buffer.compare(Buffer.from(p), Buffer.from(q)));
    const seen: string[] = [];
    let last: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await store.reads.listTagNames(
        'r',
        last === undefined ? { limit: 4 } : { limit: 4, last },
      );
      seen.push(...page.items);
      if (page.next === undefined) break;
      last = page.next;
    }
    expect(seen).toEqual(expected);
    expect(seen.slice(0, 3)).toEqual(['0', 'A', 'B']);
    expect(await store.reads.listTagNames('r', { last: 'zz' })).toEqual({ items: [] });
    expect(await store.reads.listTagNames('unknown')).toEqual({ items: [] });
  });

  it('pages repository names', async () => {
    const img = containerImage([1]);
    const repos = ['c', 'a/b', 'a', 'b/c/d', 'a-b'];
    for (const r of repos) await store.writes.recordManifest(r, { ...img, tags: ['t'] });
    const page1 = await store.reads.listRepositoryNames({ limit: 2 });
    expect(page1).toEqual({ items: ['a', 'a-b'], next: 'a-b' });
    const page2 = await store.reads.listRepositoryNames({ limit: 2, last: 'a-b' });
    expect(page2).toEqual({ items: ['a/b', 'b/c/d'], next: 'b/c/d' });
    expect(await store.reads.listRepositoryNames({ limit: 2, last: 'b/c/d' })).toEqual({
      items: ['c'],
    });
  });

  it('lists tags newest first across pages, ties broken by id', async () => {
    const base = Date.parse('2030-01-01T00:00:00.000Z');
    for (let i = 0; i < 7; i++) {
      const img = containerImage([i + 1]);
      // Two tags share each push time to exercise the (pushed_at, id) tie-break.
      await store.writes.recordManifest('r', {
        ...img,
        tags: [`t${i}`],
        pushedAt: new Date(base + Math.floor(i / 2) * 1000),
      });
    }
    const seen: Tag[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.reads.listTags(
        'r',
        cursor === undefined ? { limit: 3 } : { limit: 3, cursor },
      );
      seen.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(seen.map((t) => t.name)).toEqual(['t6', 't5', 't4', 't3', 't2', 't1', 't0']);
    expect(seen[0]).toMatchObject({
      repoName: 'r',
      kind: 'container-image',
      totalSize: 107,
      layerCount: 1,
    });
    await expect(store.reads.listTags('r', { cursor: 'garbage' })).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
  });

  it('lists repositories: search, every sort, keyset cursor, latest tag kind', async () => {
    const t = (s: number) => new Date(Date.parse('2030-01-01T00:00:00.000Z') + s * 1000);
    const shared = blob(1000);
    const cfg = blob(1, 'application/vnd.oci.image.config.v1+json');
    await store.writes.recordManifest('alpha', {
      ...imageManifest(cfg, [shared]),
      tags: ['1', '2', '3'],
      pushedAt: t(1),
    });
    await store.writes.recordManifest('beta', {
      ...imageManifest(cfg, [blob(5000)]),
      tags: ['1'],
      pushedAt: t(3),
    });
    await store.writes.recordManifest('gamma/alpha', {
      ...imageManifest(cfg, [shared, blob(10)]),
      tags: ['1', '2'],
      pushedAt: t(2),
    });
    const snapshot = imageManifest(
      blob(2, 'application/vnd.cocoonstack.snapshot.config.v1+json'),
      [blob(3)],
      {
        artifactType: 'application/vnd.cocoonstack.snapshot.v1+json',
      },
    );
    await store.writes.recordManifest('gamma/alpha', {
      ...snapshot,
      tags: ['snap'],
      pushedAt: t(4),
    });

    const all = async (options: Parameters<Store['reads']['listRepositories']>[0]) => {
      const out: Repository[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.reads.listRepositories({
          ...options,
          limit: 1,
          ...(cursor ? { cursor } : {}),
        });
        out.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      return out;
    };
    expect((await all({ sort: 'name' })).map((r) => r.name)).toEqual([
      'alpha',
      'beta',
      'gamma/alpha',
    ]);
    expect((await all({ sort: 'updated' })).map((r) => r.name)).toEqual([
      'gamma/alpha',
      'beta',
      'alpha',
    ]);
    expect((await all({ sort: 'size' })).map((r) => [r.name, r.totalSize])).toEqual([
      ['beta', 5001],
      ['gamma/alpha', 1016],
      ['alpha', 1001],
    ]);
    expect((await all({ sort: 'tags' })).map((r) => [r.name, r.tagCount])).toEqual([
      ['alpha', 3],
      ['gamma/alpha', 3],
      ['beta', 1],
    ]);
    expect((await all({ search: 'ALPHA' })).map((r) => r.name)).toEqual(['alpha', 'gamma/alpha']);
    const gamma = await store.reads.getRepository('gamma/alpha');
    expect(gamma).toMatchObject({
      kind: 'snapshot',
      artifactType: 'application/vnd.cocoonstack.snapshot.v1+json',
      updatedAt: t(4),
    });
    expect(await store.reads.getRepository('nope')).toBeUndefined();
  });

  it('stats count each stored blob once and tag sizes logically', async () => {
    const shared = blob(1_000_000);
    const cfg = blob(100, 'application/vnd.oci.image.config.v1+json');
    const a = imageManifest(cfg, [shared, blob(10)]);
    const b = imageManifest(cfg, [shared, blob(20)]);
    await store.writes.recordManifest('one', { ...a, tags: ['x', 'y'] });
    await store.writes.recordManifest('two', { ...a, tags: ['x'] });
    await store.writes.recordManifest('two', { ...b, tags: ['z'] });
    expect(await store.reads.stats()).toEqual({
      repositoryCount: 2,
      tagCount: 4,
      blobCount: 4,
      totalSize: 1_000_000 + 100 + 10 + 20,
      logicalSize: 3 * 1_000_110 + 1_000_120,
    });
  });
});
