import { afterEach, describe, expect, it } from 'vitest';
import { globToRegExp, policyFor, type Store, tagsToDelete } from '../src/index.js';
import { forEachDatabase, type TestDatabase } from './helpers.js';

describe('retention rules', () => {
  it('matches globs: * within a segment, ** across, ? one character', () => {
    expect(globToRegExp('vm/*').test('vm/snap')).toBe(true);
    expect(globToRegExp('vm/*').test('vm/a/b')).toBe(false);
    expect(globToRegExp('vm/**').test('vm/a/b')).toBe(true);
    expect(globToRegExp('v?').test('v1')).toBe(true);
    expect(globToRegExp('v1.0').test('v1x0')).toBe(false);
  });

  it('takes the first policy whose pattern matches', () => {
    const policies = [
      { repositoryPattern: 'team/special', keepLast: 1 },
      { repositoryPattern: 'team/*', keepLast: 5 },
    ];
    expect(policyFor(policies, 'team/special')?.keepLast).toBe(1);
    expect(policyFor(policies, 'team/other')?.keepLast).toBe(5);
    expect(policyFor(policies, 'other')).toBeUndefined();
  });

  it('deletes tags past keepLast and older than maxAgeDays, never kept or protected ones', () => {
    const now = new Date('2026-06-30T00:00:00Z');
    const tags = [
      { name: 'a', pushedAt: '2026-06-29 00:00:00.000' },
      { name: 'b', pushedAt: '2026-06-28 00:00:00.000' },
      { name: 'c', pushedAt: '2026-06-27 00:00:00.000' },
      { name: 'stable', pushedAt: '2026-01-01 00:00:00.000' },
      { name: 'v1', pushedAt: '2026-01-02 00:00:00.000' },
    ];
    const names = (policy: Parameters<typeof tagsToDelete>[0]) =>
      tagsToDelete(policy, tags, now).map((t) => t.name);
    expect(names({ repositoryPattern: '*', keepLast: 2 })).toEqual(['c', 'v1', 'stable']);
    expect(
      names({ repositoryPattern: '*', keepLast: 2, keepTags: ['stable'], protectedTags: ['v*'] }),
    ).toEqual(['c']);
    expect(names({ repositoryPattern: '*', maxAgeDays: 2 })).toEqual(['c', 'v1', 'stable']);
    expect(names({ repositoryPattern: '*' })).toEqual([]);
    expect(names(undefined)).toEqual([]);
  });
});

forEachDatabase((fresh) => {
  let database: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await database?.drop();
  });

  it('stores policies in order, replaces them all, and finds protected tags', async () => {
    database = await fresh();
    store = await database.open();
    await store.retention.replacePolicies([
      { repositoryPattern: 'prod/**', protectedTags: ['stable', 'v*'], keepLast: 3 },
      { repositoryPattern: '**', maxAgeDays: 30, keepTags: ['latest'], untaggedExpiryMs: 60_000 },
    ]);
    expect(await store.retention.listPolicies()).toEqual([
      { repositoryPattern: 'prod/**', protectedTags: ['stable', 'v*'], keepLast: 3 },
      { repositoryPattern: '**', maxAgeDays: 30, keepTags: ['latest'], untaggedExpiryMs: 60_000 },
    ]);
    expect(await store.retention.protectedTagPattern('prod/app', 'v1.2')).toBe('v*');
    expect(await store.retention.protectedTagPattern('prod/app', 'dev')).toBeUndefined();
    expect(await store.retention.protectedTagPattern('dev/app', 'v1')).toBeUndefined();
    await store.retention.replacePolicies([]);
    expect(await store.retention.listPolicies()).toEqual([]);
  });
});
