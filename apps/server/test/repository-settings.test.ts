import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

type Json = Record<string, unknown>;

const STATIC_TOKEN = 'static-registry-token-0123456789';
const settingsPath = (name: string) => `/api/repository-settings/${name}`;
const JSON_TYPE = { 'Content-Type': 'application/json' };

describe('repository settings (/api/repository-settings/<name>)', () => {
  let t: TestServer;
  let admin: RawClient;
  /** Push rights on `team/*` only: the owner of team/… repositories. */
  let owner: RawClient;
  let ownerName: string;
  /** Pull rights on `team/*` only. */
  let reader: RawClient;
  /** Push rights on `other/*` only: another tenant. */
  let stranger: RawClient;

  const client = (secret: string) => new RawClient(t.url, { Authorization: `Bearer ${secret}` });
  const put = (c: RawClient, name: string, body: unknown, headers: Record<string, string> = {}) =>
    c.fetch(settingsPath(name), {
      method: 'PUT',
      headers: { ...JSON_TYPE, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const read = async (c: RawClient, path: string) => {
    const res = await c.fetch(path);
    return { status: res.status, body: (await res.json()) as Json };
  };
  /** The stored settings, as the store has them (not through the API under test). */
  const stored = (name: string) => t.server.index.repositorySettings.get(name);
  const settingsEvents = async (name: string) => {
    const events = (await (await admin.fetch('/api/events?limit=1000')).json()) as Json[];
    return events.filter((e) => e.action === 'repository.settings' && e.repository === name);
  };

  beforeAll(async () => {
    t = await startTestServer('filesystem', { EPOCH_REGISTRY_TOKEN: STATIC_TOKEN });
    admin = client(await t.token(['admin']));
    owner = client(await t.token(['push'], 'team/*'));
    ownerName = ((await (await owner.fetch('/auth/me')).json()) as { user: string }).user;
    reader = client(await t.token(['pull'], 'team/*'));
    stranger = client(await t.token(['push'], 'other/*'));
    await admin.pushImage('team/app', 'v1', { layers: ['settings-layer'] });
    await admin.pushImage('other/app', 'v1', { layers: ['other-layer'] });
  });
  afterAll(async () => {
    await t.stop();
  });

  it('lets the owner set the default format, and shows it in the settings and the repository', async () => {
    const initial = await read(owner, settingsPath('team/app'));
    expect(initial).toEqual({
      status: 200,
      body: { name: 'team/app', defaultFormat: 'full', writable: true },
    });

    const res = await put(owner, 'team/app', { defaultFormat: 'incremental' });
    expect(res.status).toBe(200);
    const set = (await res.json()) as Json;
    expect(set).toMatchObject({
      name: 'team/app',
      defaultFormat: 'incremental',
      updatedBy: ownerName,
      writable: true,
    });
    expect(Date.parse(set.updatedAt as string)).toBeGreaterThan(Date.now() - 60_000);

    expect((await read(owner, settingsPath('team/app'))).body).toEqual(set);
    // Percent-encoded slashes address the same repository.
    expect((await read(owner, settingsPath('team%2Fapp'))).body).toEqual(set);
    const repository = await read(owner, '/api/repositories/team/app');
    expect(repository.body).toMatchObject({ name: 'team/app', defaultFormat: 'incremental' });
    const listed = (await (await admin.fetch('/api/repositories')).json()) as Json[];
    expect(listed.map((r) => [r.name, r.defaultFormat])).toEqual([
      ['other/app', 'full'],
      ['team/app', 'incremental'],
    ]);

    const back = await put(owner, 'team/app', { defaultFormat: 'full' });
    expect(back.status).toBe(200);
    expect((await stored('team/app')).defaultFormat).toBe('full');
    expect((await read(owner, '/api/repositories/team/app')).body.defaultFormat).toBe('full');
  });

  it('keeps settings by name: set before the first push, in force once the repository exists', async () => {
    expect((await read(owner, '/api/repositories/team/new')).status).toBe(404);
    expect((await put(owner, 'team/new', { defaultFormat: 'incremental' })).status).toBe(200);
    expect((await read(owner, settingsPath('team/new'))).body.defaultFormat).toBe('incremental');
    // Still no repository: a setting alone does not make one appear in listings.
    expect((await read(owner, '/api/repositories/team/new')).status).toBe(404);
    await admin.pushImage('team/new', 'v1', { layers: ['new-layer'] });
    expect((await read(owner, '/api/repositories/team/new')).body.defaultFormat).toBe(
      'incremental',
    );
  });

  it('records who changed what in the audit log, visible to the tenant', async () => {
    await put(owner, 'team/audited', { defaultFormat: 'incremental' });
    await put(owner, 'team/audited', { defaultFormat: 'full' });
    const events = await settingsEvents('team/audited');
    expect(events.map((e) => [e.actor, e.detail])).toEqual([
      [ownerName, expect.objectContaining({ defaultFormat: 'full', previous: 'incremental' })],
      [ownerName, expect.objectContaining({ defaultFormat: 'incremental', previous: 'full' })],
    ]);
    // The owner reads events about its own repositories.
    const own = (await (await owner.fetch('/api/events?limit=1000')).json()) as Json[];
    expect(
      own.some((e) => e.action === 'repository.settings' && e.repository === 'team/audited'),
    ).toBe(true);
  });

  it('lets a reader see the settings but not change them', async () => {
    await put(admin, 'team/app', { defaultFormat: 'incremental' });
    const before = await stored('team/app');
    const seen = await read(reader, settingsPath('team/app'));
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ defaultFormat: 'incremental', writable: false });
    const refused = await put(reader, 'team/app', { defaultFormat: 'full' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: 'DENIED' });
    // Anonymous callers read (anonymous pull is on) and may not write.
    const anonymous = new RawClient(t.url);
    expect((await read(anonymous, settingsPath('team/app'))).body.writable).toBe(false);
    expect((await put(anonymous, 'team/app', { defaultFormat: 'full' })).status).toBe(401);
    // The static registry token has every /v2/ right and no /api/ right.
    const registryToken = client(STATIC_TOKEN);
    expect((await put(registryToken, 'team/app', { defaultFormat: 'full' })).status).toBe(403);
    expect((await registryToken.fetch(settingsPath('team/app'))).status).toBe(403);
    expect(await stored('team/app')).toEqual(before);
  });

  it('answers another tenant the same for a repository that exists and one that does not', async () => {
    await put(admin, 'team/app', { defaultFormat: 'incremental' });
    const before = await stored('team/app');
    const answers = [];
    for (const name of ['team/app', 'team/does-not-exist']) {
      for (const res of [
        await stranger.fetch(settingsPath(name)),
        await put(stranger, name, { defaultFormat: 'full' }),
      ]) {
        const text = await res.text();
        answers.push({ status: res.status, body: text.replaceAll(name, '<name>') });
      }
    }
    expect(answers[0]).toEqual(answers[2]);
    expect(answers[1]).toEqual(answers[3]);
    expect(answers.map((a) => a.status)).toEqual([403, 403, 403, 403]);
    expect(await stored('team/app')).toEqual(before);
    expect(await stored('team/does-not-exist')).toEqual({ defaultFormat: 'full' });
    // Its own repositories it may configure.
    expect((await put(stranger, 'other/app', { defaultFormat: 'incremental' })).status).toBe(200);
  });

  it('refuses bad bodies with a JSON error and changes nothing', async () => {
    await put(admin, 'team/app', { defaultFormat: 'incremental' });
    const before = await stored('team/app');
    const eventsBefore = (await settingsEvents('team/app')).length;
    const cases: {
      body: string;
      headers?: Record<string, string>;
      status: number;
      code: string;
    }[] = [
      {
        body: '{"defaultFormat":"full"}',
        headers: { 'Content-Type': '' },
        status: 415,
        code: 'UNSUPPORTED',
      },
      {
        body: '{"defaultFormat":"full"}',
        headers: { 'Content-Type': 'text/plain' },
        status: 415,
        code: 'UNSUPPORTED',
      },
      { body: '{"defaultFormat":', status: 400, code: 'BAD_SETTINGS' },
      { body: '', status: 400, code: 'BAD_SETTINGS' },
      { body: '["full"]', status: 400, code: 'BAD_SETTINGS' },
      { body: '"full"', status: 400, code: 'BAD_SETTINGS' },
      { body: 'null', status: 400, code: 'BAD_SETTINGS' },
      { body: '{}', status: 400, code: 'BAD_SETTINGS' },
      { body: '{"defaultFormat":"zstd"}', status: 400, code: 'BAD_SETTINGS' },
      { body: '{"defaultFormat":"Full"}', status: 400, code: 'BAD_SETTINGS' },
      { body: '{"defaultFormat":null}', status: 400, code: 'BAD_SETTINGS' },
      { body: '{"defaultFormat":1}', status: 400, code: 'BAD_SETTINGS' },
      { body: '{"defaultformat":"full"}', status: 400, code: 'BAD_SETTINGS' },
      { body: '{"defaultFormat":"full","retention":"forever"}', status: 400, code: 'BAD_SETTINGS' },
      // Larger than any settings document: refused from its Content-Length, or while read.
      {
        body: JSON.stringify({ defaultFormat: 'full', pad: 'x'.repeat(1 << 20) }),
        status: 413,
        code: 'SIZE_INVALID',
      },
      // Refused on its type before the body is read; the answer still arrives.
      {
        body: 'x'.repeat(4 << 20),
        headers: { 'Content-Type': 'application/octet-stream' },
        status: 415,
        code: 'UNSUPPORTED',
      },
    ];
    for (const { body, headers, status, code } of cases) {
      const res = await put(owner, 'team/app', body, headers);
      const where = `${headers?.['Content-Type'] ?? 'json'} ${body.slice(0, 60)}`;
      expect(res.status, where).toBe(status);
      const answer = (await res.json()) as Json;
      expect(answer.code, where).toBe(code);
      expect(typeof answer.error, where).toBe('string');
    }
    const invalidName = await put(owner, 'team/Bad%20Name', { defaultFormat: 'full' });
    expect(invalidName.status).toBe(400);
    expect(await invalidName.json()).toMatchObject({ code: 'NAME_INVALID' });
    expect(await stored('team/app')).toEqual(before);
    expect((await settingsEvents('team/app')).length).toBe(eventsBefore);
  });
});

describe('repository settings in the local open mode (no token yet)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('filesystem');
  });
  afterAll(async () => {
    await t.stop();
  });

  it('needs the CSRF value /auth/me gives the local administrator', async () => {
    const local = new RawClient(t.url);
    const body = JSON.stringify({ defaultFormat: 'incremental' });
    const init = (headers: Record<string, string>) => ({
      method: 'PUT',
      headers: { ...JSON_TYPE, ...headers },
      body,
    });
    const without = await local.fetch(settingsPath('vm/a'), init({}));
    expect(without.status).toBe(403);
    expect((await t.server.index.repositorySettings.get('vm/a')).defaultFormat).toBe('full');
    const me = (await (await local.fetch('/auth/me')).json()) as { csrfToken?: string };
    expect(me.csrfToken).toBeTruthy();
    const withCsrf = await local.fetch(
      settingsPath('vm/a'),
      init({ 'X-CSRF-Token': me.csrfToken ?? '' }),
    );
    expect(withCsrf.status).toBe(200);
    expect(await withCsrf.json()).toMatchObject({ defaultFormat: 'incremental', writable: true });
  });
});
