import { afterEach, beforeEach, expect, it } from 'vitest';
import { hashToken, type Store, TokenRuleError } from '../src/index.js';
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

  it('creates tokens whose plaintext is returned once and never stored', async () => {
    const expiresAt = new Date('2031-01-01T00:00:00.000Z');
    const { token, plaintext } = await store.tokens.create({
      name: 'ci',
      createdBy: 'alice@example.com',
      scopes: ['pull', 'push', 'pull'],
      repoPattern: 'team-a/*',
      expiresAt,
    });
    expect(plaintext).toMatch(/^[0-9a-f]{64}$/);
    expect(token).toMatchObject({
      name: 'ci',
      scopes: ['pull', 'push'],
      repoPattern: 'team-a/*',
      expiresAt,
    });
    const rows = await database.query('select * from tokens');
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(plaintext);
    expect(rows[0]?.token_hash).toBe(hashToken(plaintext));
    expect(await store.tokens.findByHash(hashToken(plaintext))).toEqual(token);
    expect(await store.tokens.findByHash(hashToken('wrong'))).toBeUndefined();

    const used = new Date('2030-06-01T00:00:00.000Z');
    await store.tokens.touch(token.id, used);
    const before = Date.now() - 1000;
    expect(await store.tokens.revoke(token.id, 'bob@example.com')).toBe(true);
    expect(await store.tokens.revoke(token.id, 'bob@example.com')).toBe(false);
    const [listed] = await store.tokens.list();
    expect(listed).toMatchObject({ id: token.id, lastUsed: used });
    expect(listed?.revokedAt?.getTime()).toBeGreaterThanOrEqual(before);
  });

  it('records token.create and token.revoke with the token, and nothing for a refused one', async () => {
    const { token } = await store.tokens.create(
      { name: 'deploy', createdBy: 'alice@example.com', scopes: ['push'], repoPattern: 'a/*' },
      { requestId: 'r1' },
    );
    await store.tokens.revoke(token.id, 'bob@example.com', { requestId: 'r2' });
    await store.tokens.revoke(token.id, 'bob@example.com');
    const refused = [
      { name: ' ', scopes: ['pull'] },
      { name: '<script>', scopes: ['pull'] },
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['root'] },
      { name: 'x', scopes: ['pull'], repoPattern: 'Bad Pattern' },
      { name: 'x', scopes: ['pull'], expiresAt: new Date(Date.now() - 1000) },
      { name: 'x', scopes: ['pull'], expiresAt: new Date(Date.now() + 11 * 365 * 86_400_000) },
    ];
    const codes = [];
    for (const request of refused) {
      const error = await store.tokens.create({ createdBy: 'mallory', ...request }).catch((e) => e);
      expect(error).toBeInstanceOf(TokenRuleError);
      codes.push((error as TokenRuleError).code);
    }
    expect(codes).toEqual([
      'BAD_NAME',
      'BAD_NAME',
      'BAD_SCOPES',
      'BAD_SCOPES',
      'BAD_PATTERN',
      'BAD_EXPIRY',
      'BAD_EXPIRY',
    ]);
    expect(await store.tokens.list()).toHaveLength(1);
    const events = (await store.audit.list({ limit: 10 })).items.map((e) => [
      e.action,
      e.actor,
      e.detail,
    ]);
    expect(events).toEqual([
      ['token.revoke', 'bob@example.com', { tokenId: token.id, requestId: 'r2' }],
      [
        'token.create',
        'alice@example.com',
        {
          tokenId: token.id,
          name: 'deploy',
          scopes: ['push'],
          repoPattern: 'a/*',
          requestId: 'r1',
        },
      ],
    ]);
  });

  it('finds tokens by id and tells whether any token was ever created', async () => {
    expect(await store.tokens.hasAny()).toBe(false);
    const { token } = await store.tokens.create({ name: 'a', createdBy: 'x', scopes: ['pull'] });
    expect(await store.tokens.hasAny()).toBe(true);
    expect(await store.tokens.findById(token.id)).toEqual(token);
    expect(await store.tokens.findById(token.id + 1)).toBeUndefined();
    await store.tokens.revoke(token.id, 'x');
    expect(await store.tokens.hasAny()).toBe(true);
    expect((await store.tokens.findById(token.id))?.revokedAt).toBeInstanceOf(Date);
  });

  it('shares a setting: the first value created wins for every store on the database', async () => {
    const other = await database.open();
    try {
      const values = await Promise.all([
        store.settings.getOrCreate('k', () => 'one'),
        other.settings.getOrCreate('k', () => 'two'),
      ]);
      expect(values[0]).toBe(values[1]);
      expect(['one', 'two']).toContain(values[0]);
      expect(await store.settings.getOrCreate('k', () => 'three')).toBe(values[0]);
    } finally {
      await other.close();
    }
  });

  it('appends audit events and pages them newest first', async () => {
    for (let i = 0; i < 5; i++) {
      await store.audit.append({
        actor: 'bob',
        action: 'push',
        repository: 'r',
        reference: `t${i}`,
        detail: { i },
      });
    }
    const first = await store.audit.list({ limit: 3 });
    expect(first.items.map((e) => e.reference)).toEqual(['t4', 't3', 't2']);
    expect(first.items[0]).toMatchObject({
      actor: 'bob',
      action: 'push',
      repository: 'r',
      detail: { i: 4 },
    });
    const second = await store.audit.list({ limit: 3, cursor: first.nextCursor ?? '' });
    expect(second.items.map((e) => e.reference)).toEqual(['t1', 't0']);
    expect(second.nextCursor).toBeUndefined();
  });
});
