import { RawClient, verbatimFetch } from '@epoch/test-support/oci-client';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support/server.js';

const STATIC_TOKEN = 'static-registry-token-0123456789';
const basic = (password: string) => `Basic ${Buffer.from(`_token:${password}`).toString('base64')}`;

interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

// On the filesystem and on RGW (when configured): the flow itself does not touch storage, but the
// pushes and pulls it authorizes do.
describe.each(backends.filter((b) => b !== 's3'))('the Docker/OCI token flow on %s', (backend) => {
  let t: TestServer;
  let anon: RawClient;
  let push: string;

  const token = async (query: string, headers: Record<string, string> = {}) => {
    const res = await anon.fetch(`/v2/token?service=epoch&${query}`, { headers });
    return { res, body: (await res.json()) as TokenResponse };
  };

  beforeAll(async () => {
    t = await startTestServer(backend, { EPOCH_REGISTRY_TOKEN: STATIC_TOKEN });
    anon = new RawClient(t.url);
    push = await t.token(['push'], 'team/*');
    await new RawClient(t.url, { Authorization: `Bearer ${push}` }).pushImage('team/app', 'v1');
  });
  afterAll(async () => {
    await t.stop();
  });

  it('challenges an anonymous version check with the realm, service and no secret echo', async () => {
    const res = await anon.fetch('/v2/');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer realm="${t.url}/v2/token",service="epoch"`,
    );
    expect(await res.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] });
    const forwarded = await anon.fetch('/v2/', {
      headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'registry.example.com' },
    });
    expect(forwarded.headers.get('www-authenticate')).toContain(
      'realm="https://registry.example.com/v2/token"',
    );
  });

  it('gives anonymous callers a non-empty token with pull rights only', async () => {
    const { res, body } = await token('scope=repository:team/app:pull,push');
    expect(res.status).toBe(200);
    expect(body.token).toBeTruthy();
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(body.refresh_token).toBeUndefined();
    const claims = decodeJwt(body.token);
    expect(claims.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(300);
    const jwt = new RawClient(t.url, { Authorization: `Bearer ${body.token}` });
    expect((await jwt.fetch('/v2/team/app/manifests/v1')).status).toBe(200);
    const denied = await jwt.fetch('/v2/team/app/blobs/uploads/', { method: 'POST' });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toContain(
      'scope="repository:team/app:pull,push",error="insufficient_scope"',
    );
    // A token for one repository does not open another.
    expect((await jwt.fetch('/v2/team/other/tags/list')).status).toBe(401);
  });

  it('grants the intersection of the requested scopes and the token’s rights', async () => {
    const { res, body } = await token(
      'scope=repository:team/app:pull,push,delete&scope=repository:other/x:pull,push',
      { Authorization: basic(push) },
    );
    expect(res.status).toBe(200);
    expect(decodeJwt(body.token).access).toEqual([
      { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'other/x', actions: [] },
    ]);
    const jwt = new RawClient(t.url, { Authorization: `Bearer ${body.token}` });
    expect((await jwt.fetch('/v2/')).status).toBe(200);
    expect((await jwt.fetch('/v2/team/app/blobs/uploads/', { method: 'POST' })).status).toBe(202);
    expect((await jwt.fetch('/v2/team/app/manifests/v1', { method: 'DELETE' })).status).toBe(401);
  });

  it('refuses bad credentials and malformed scopes', async () => {
    expect(
      (await token('scope=repository:team/app:pull', { Authorization: basic('nope') })).res.status,
    ).toBe(401);
    expect((await token('scope=repository:Bad Name:pull')).res.status).toBe(400);
    expect((await token('scope=garbage')).res.status).toBe(400);
    const many = Array.from({ length: 40 }, (_, i) => `scope=repository:r${i}:pull`).join('&');
    expect((await token(many)).res.status).toBe(400);
    const bad = await anon.fetch('/v2/team/app/tags/list', {
      headers: { Authorization: 'Bearer not-a-token' },
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('issues refresh tokens that stop working when their token is revoked', async () => {
    const spare = await t.server.index.tokens.create({
      name: 'spare',
      createdBy: 'test',
      scopes: ['pull'],
    });
    const { body } = await token('scope=repository:team/app:pull&offline_token=true', {
      Authorization: basic(spare.plaintext),
    });
    expect(body.refresh_token).toBeTruthy();
    const form = (fields: Record<string, string>) =>
      anon.fetch('/v2/token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
    const refreshed = await form({
      grant_type: 'refresh_token',
      refresh_token: body.refresh_token ?? '',
      service: 'epoch',
      scope: 'repository:team/app:pull',
    });
    expect(refreshed.status).toBe(200);
    expect(decodeJwt(((await refreshed.json()) as TokenResponse).access_token).access).toEqual([
      { type: 'repository', name: 'team/app', actions: ['pull'] },
    ]);
    const password = await form({
      grant_type: 'password',
      username: 'x',
      password: spare.plaintext,
      service: 'epoch',
    });
    expect(password.status).toBe(200);
    // A refresh token is not an access token.
    const misuse = new RawClient(t.url, { Authorization: `Bearer ${body.refresh_token}` });
    expect((await misuse.fetch('/v2/team/app/tags/list')).status).toBe(401);

    const admin = new RawClient(t.url, { Authorization: `Bearer ${await t.token()}` });
    expect((await admin.fetch(`/api/tokens/${spare.token.id}`, { method: 'DELETE' })).status).toBe(
      200,
    );
    expect(
      (await form({ grant_type: 'refresh_token', refresh_token: body.refresh_token ?? '' })).status,
    ).toBe(401);
    const access = new RawClient(t.url, { Authorization: `Bearer ${body.token}` });
    expect((await access.fetch('/v2/team/app/tags/list')).status).toBe(401);
  });

  it('accepts the static registry token for every /v2/ right and no /api/ right', async () => {
    const direct = new RawClient(t.url, { Authorization: `Bearer ${STATIC_TOKEN}` });
    expect((await direct.fetch('/v2/')).status).toBe(200);
    await direct.pushImage('static/app', 'v1');
    expect((await direct.fetch('/api/stats')).status).toBe(403);
    const { body } = await token('scope=repository:static/app:pull,push,delete', {
      Authorization: basic(STATIC_TOKEN),
    });
    expect(decodeJwt(body.token).access).toEqual([
      { type: 'repository', name: 'static/app', actions: ['pull', 'push', 'delete'] },
    ]);
  });

  it('creates tokens once with their plaintext, validates the request, and lists them without secrets', async () => {
    const admin = new RawClient(t.url, { Authorization: `Bearer ${await t.token()}` });
    const create = (body: unknown) =>
      admin.fetch('/api/tokens', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const res = await create({
      name: 'ci',
      scopes: ['push'],
      repoPattern: 'team-a/*',
      expiresIn: '30d',
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as {
      token: string;
      id: number;
      scopes: string[];
      expiresAt: string;
    };
    expect(created.token).toMatch(/^[0-9a-f]{64}$/);
    expect(created.scopes).toEqual(['push']);
    expect(new Date(created.expiresAt).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    const listed = await (await admin.fetch('/api/tokens')).text();
    expect(listed).toContain('"name":"ci"');
    expect(listed).not.toContain(created.token);
    for (const bad of [
      {},
      { name: '' },
      { name: 'x', scopes: ['root'] },
      { name: 'x', scopes: [] },
      { name: 'x', repoPattern: 'Team A' },
      { name: 'x', expiresIn: 'soon' },
      { name: 'x', expiresAt: '2001-01-01T00:00:00Z' },
    ]) {
      const r = await create(bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(await r.json()).toHaveProperty('code');
    }
    expect((await admin.fetch('/api/tokens', { method: 'POST', body: 'not json' })).status).toBe(
      400,
    );
    expect((await admin.fetch('/api/tokens/abc', { method: 'DELETE' })).status).toBe(400);
    expect((await admin.fetch('/api/tokens/999999', { method: 'DELETE' })).status).toBe(404);
  });
});

describe('with anonymous pull off', () => {
  let t: TestServer;
  beforeAll(async () => {
    // The static token closes the out-of-the-box loopback writes from the start.
    t = await startTestServer('filesystem', {
      EPOCH_ANONYMOUS_PULL: 'false',
      EPOCH_REGISTRY_TOKEN: STATIC_TOKEN,
    });
    const push = await t.token(['push']);
    await new RawClient(t.url, { Authorization: `Bearer ${push}` }).pushImage('team/app', 'v1');
  });
  afterAll(async () => {
    await t.stop();
  });

  it('gives anonymous callers a token without rights and refuses every read', async () => {
    const anon = new RawClient(t.url);
    const res = await anon.fetch('/v2/token?service=epoch&scope=repository:team/app:pull');
    const body = (await res.json()) as TokenResponse;
    expect(body.token).toBeTruthy();
    expect(decodeJwt(body.token).access).toEqual([
      { type: 'repository', name: 'team/app', actions: [] },
    ]);
    for (const path of [
      '/v2/team/app/manifests/v1',
      '/v2/_catalog',
      '/api/stats',
      '/api/repositories',
      '/dl/team/app:v1',
    ]) {
      expect((await anon.fetch(path)).status, path).toBe(401);
    }
  });
});

describe('out of the box (no static token, no token yet)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('filesystem');
  });
  afterAll(async () => {
    await t.stop();
  });

  it('accepts anonymous loopback writes until the first token is created', async () => {
    const anon = new RawClient(t.url);
    expect((await anon.fetch('/v2/')).status).toBe(200);
    await anon.pushImage('laptop/app', 'v1');
    // The local visitor administers the registry too (the dashboard), as it can through /v2/,
    // but a state-changing /api/ call needs the CSRF value only a same-origin page can read.
    const me = (await (await anon.fetch('/auth/me')).json()) as {
      api: string;
      kind: string;
      csrfToken: string;
    };
    expect(me).toMatchObject({ api: 'admin', kind: 'anonymous' });
    expect((await anon.fetch('/api/tokens')).status).toBe(200);
    const sync = (headers: Record<string, string>) =>
      anon.fetch('/api/catalog/sync', { method: 'POST', headers });
    expect((await sync({})).status).toBe(403);
    expect((await sync({ 'X-CSRF-Token': 'guess' })).status).toBe(403);
    expect((await sync({ 'X-CSRF-Token': me.csrfToken })).status).toBe(200);
    await t.token(['admin']);
    // Within the 2 s the server trusts its "no tokens" answer, writes close.
    await expect
      .poll(
        async () => (await anon.fetch('/v2/laptop/app/blobs/uploads/', { method: 'POST' })).status,
        { timeout: 5000 },
      )
      .toBe(401);
    expect((await anon.fetch('/v2/laptop/app/manifests/v1')).status).toBe(200);
    expect(await (await anon.fetch('/auth/me')).json()).toMatchObject({ api: 'read' });
  });
});

describe('the out-of-the-box mode is for programs on this machine only', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('filesystem');
  });
  afterAll(async () => {
    await t.stop();
  });

  it.each([
    ['a proxied request (X-Forwarded-For)', { 'X-Forwarded-For': '203.0.113.7' }],
    ['a proxied request (Forwarded)', { Forwarded: 'for=203.0.113.7' }],
    ['a rebound domain (Host is not a loopback name)', { Host: 'attacker.example:4300' }],
  ])('refuses writes and administration to %s', async (_, headers) => {
    // node:http, not fetch: fetch would not send a Host header of our choosing.
    const call = (method: string, path: string) =>
      verbatimFetch(t.url, path, { method, headers: headers as Record<string, string> });
    expect((await call('POST', '/v2/laptop/app/blobs/uploads/')).status).toBe(401);
    expect((await call('GET', '/api/tokens')).status).toBe(401);
    expect(await (await call('GET', '/auth/me')).json()).toMatchObject({ api: 'read' });
    // The same client without those headers is local.
    const local = new RawClient(t.url);
    expect((await local.fetch('/v2/laptop/app/blobs/uploads/', { method: 'POST' })).status).toBe(
      202,
    );
  });
});
