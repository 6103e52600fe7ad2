import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { startOidcProvider } from './support/oidc-provider.js';
import { startTestServer, type TestServer } from './support/server.js';

const CLIENT_ID = 'epoch-test';
const CLIENT_SECRET = 'provider-secret';
const COOKIE_SECRET = 'a-cookie-secret-that-is-long-enough-0123';

/** Cookie jar of one browser: `name=value` pairs from Set-Cookie, sent back on every request. */
class Browser {
  readonly cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async get(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (url.startsWith(this.base) && this.cookies.size > 0) {
      headers.set('Cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const [name = '', value = ''] = pair.split('=');
      if (value === '' || /max-age=0/i.test(cookie)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /** Runs the whole sign-in: /login → provider → /login/callback; returns the callback response. */
  async signIn(): Promise<Response> {
    const login = await this.get(`${this.base}/login`);
    expect(login.status).toBe(302);
    const authorize = new URL(login.headers.get('location') ?? '');
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('nonce')).toBeTruthy();
    expect(authorize.searchParams.get('state')).toBeTruthy();
    const provider = await this.get(authorize.toString());
    expect(provider.status).toBe(302);
    return this.get(provider.headers.get('location') ?? '');
  }
}

describe('single sign-on end to end', () => {
  let provider: Awaited<ReturnType<typeof startOidcProvider>>;
  let t: TestServer;

  beforeAll(async () => {
    provider = await startOidcProvider(CLIENT_ID, CLIENT_SECRET);
    // The server's port is not known before it starts, so the redirect URI is a fixed local port
    // the test reserves first.
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    t = await startTestServer('filesystem', {
      EPOCH_ADDR: `127.0.0.1:${port}`,
      SSO_PROVIDER: 'oidc',
      SSO_ISSUER: provider.issuer,
      SSO_CLIENT_ID: CLIENT_ID,
      SSO_CLIENT_SECRET: CLIENT_SECRET,
      SSO_COOKIE_SECRET: COOKIE_SECRET,
      SSO_ALLOWED_DOMAINS: 'example.com',
      SSO_ADMIN_EMAILS: 'boss@example.com',
      SSO_REDIRECT_URI: `http://127.0.0.1:${port}/login/callback`,
      EPOCH_REGISTRY_TOKEN: 'static-registry-token-0123456789',
    });
  });
  afterAll(async () => {
    await t.stop();
    await provider.close();
  });

  it('signs an admin in with PKCE, state and nonce, and protects writes with the CSRF token', async () => {
    provider.nextUser({ email: 'Boss@Example.com', name: 'The Boss' });
    const browser = new Browser(t.url);
    const callback = await browser.signIn();
    expect(callback.status, await callback.clone().text()).toBe(302);
    expect(callback.headers.get('location')).toBe('/');
    const setCookie = callback.headers.getSetCookie().find((c) => c.startsWith('epoch_session='));
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/);

    const me = await browser.get(`${t.url}/auth/me`);
    expect(me.status).toBe(200);
    const who = (await me.json()) as {
      user: string;
      email: string;
      api: string;
      csrfToken: string;
    };
    expect(who).toMatchObject({
      user: 'boss@example.com',
      email: 'boss@example.com',
      api: 'admin',
    });
    expect(who.csrfToken).toBeTruthy();

    const create = (headers: Record<string, string>) =>
      browser.get(`${t.url}/api/tokens`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify({ name: 'from-sso' }),
      });
    expect((await create({})).status).toBe(403);
    expect((await create({ 'X-CSRF-Token': 'wrong' })).status).toBe(403);
    const created = await create({ 'X-CSRF-Token': who.csrfToken });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ createdBy: 'boss@example.com' });

    const events = (await (await browser.get(`${t.url}/api/events`)).json()) as {
      action: string;
      actor: string;
    }[];
    expect(events.some((e) => e.action === 'login' && e.actor === 'boss@example.com')).toBe(true);

    const out = await browser.get(`${t.url}/logout`);
    expect(out.status).toBe(302);
    // Signed out: anonymous pull is on, so the dashboard stays open read-only.
    const after = await browser.get(`${t.url}/auth/me`);
    expect(await after.json()).toMatchObject({ kind: 'anonymous', api: 'read', signedIn: false });
  });

  it('gives other allowed users read-only rights', async () => {
    provider.nextUser({ email: 'dev@example.com' });
    const browser = new Browser(t.url);
    expect((await browser.signIn()).status).toBe(302);
    const who = (await (await browser.get(`${t.url}/auth/me`)).json()) as {
      api: string;
      csrfToken: string;
    };
    expect(who.api).toBe('read');
    expect((await browser.get(`${t.url}/api/stats`)).status).toBe(200);
    const denied = await browser.get(`${t.url}/api/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': who.csrfToken },
      body: JSON.stringify({ name: 'nope' }),
    });
    expect(denied.status).toBe(403);
  });

  it('refuses users outside the allow-list, unverified e-mails, a wrong nonce and a wrong state', async () => {
    provider.nextUser({ email: 'eve@evil.test' });
    const outsider = await new Browser(t.url).signIn();
    expect(outsider.status).toBe(403);
    expect(await outsider.json()).toMatchObject({ code: 'SSO_FAILED' });

    provider.nextUser({ email: 'dev@example.com', emailVerified: false });
    expect((await new Browser(t.url).signIn()).status).toBe(403);

    provider.nextUser({ email: 'dev@example.com', nonce: 'replayed' });
    expect((await new Browser(t.url).signIn()).status).toBe(403);

    provider.nextUser({ email: 'dev@example.com' });
    const browser = new Browser(t.url);
    const login = await browser.get(`${t.url}/login`);
    const authorize = new URL(login.headers.get('location') ?? '');
    authorize.searchParams.set('state', 'forged');
    const back = await browser.get(authorize.toString());
    const forged = await browser.get(back.headers.get('location') ?? '');
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ code: 'BAD_STATE' });
    expect(browser.cookies.has('epoch_session')).toBe(false);

    const events = (await (
      await fetch(`${t.url}/api/events`, {
        headers: { Authorization: `Bearer ${await t.token()}` },
      })
    ).json()) as { action: string }[];
    expect(events.filter((e) => e.action === 'login.denied').length).toBeGreaterThanOrEqual(3);
  });

  // Last in this block: it stops the server the others use.
  it('ends a session once the allow-lists no longer admit its user', async () => {
    provider.nextUser({ email: 'dev@example.com', name: 'Dev' });
    const browser = new Browser(t.url);
    expect((await browser.signIn()).status).toBe(302);
    expect((await browser.get(`${t.url}/auth/me`)).status).toBe(200);
    await t.halt();
    const narrowed = await startServer(
      loadConfig({ ...t.env, EPOCH_ADDR: '127.0.0.1:0', SSO_ALLOWED_DOMAINS: 'other.com' }),
      { env: t.env },
    );
    try {
      const after = new Browser(narrowed.url);
      for (const [k, v] of browser.cookies) after.cookies.set(k, v);
      const me = await after.get(`${narrowed.url}/auth/me`);
      expect(await me.json()).toMatchObject({ kind: 'anonymous', signedIn: false });
    } finally {
      await narrowed.close(1000);
    }
  });
});

describe('signing in with a token (SSO off)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('filesystem', {
      EPOCH_REGISTRY_TOKEN: 'static-registry-token-0123456789',
    });
  });
  afterAll(async () => {
    await t.stop();
  });

  it('turns an admin token into a session cookie, and refuses bad or registry tokens', async () => {
    const browser = new Browser(t.url);
    const signIn = (token: string) =>
      browser.get(`${t.url}/auth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token }),
      });
    expect((await signIn('wrong')).status).toBe(401);
    expect((await signIn('static-registry-token-0123456789')).status).toBe(403);
    const res = await signIn(await t.token(['admin']));
    expect(res.status).toBe(200);
    const { csrfToken } = (await res.json()) as { csrfToken: string };
    expect((await browser.get(`${t.url}/api/tokens`)).status).toBe(200);
    const sync = await browser.get(`${t.url}/api/catalog/sync`, {
      method: 'POST',
      headers: { 'X-CSRF-Token': csrfToken },
    });
    expect(sync.status).toBe(200);
    expect((await browser.get(`${t.url}/login`)).status).toBe(404);
    // Behind a TLS-terminating proxy the cookie is Secure.
    const proxied = await fetch(`${t.url}/auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Forwarded-Proto': 'https' },
      body: JSON.stringify({ token: await t.token(['pull']) }),
    });
    expect(proxied.headers.getSetCookie().join()).toMatch(/epoch_session=.*; Secure/);
    expect(await (await fetch(`${t.url}/auth/config`)).json()).toEqual({
      sso: false,
      anonymousPull: true,
    });
  });
});

describe('SSO configuration', () => {
  const base = {
    SSO_PROVIDER: 'oidc',
    SSO_ISSUER: 'https://id.example.com',
    SSO_CLIENT_ID: 'c',
    SSO_CLIENT_SECRET: 's',
  };
  it('refuses to start without a cookie secret, an allow-list or a redirect URI', () => {
    expect(() =>
      loadConfig({ ...base, SSO_ALLOWED_DOMAINS: 'x.com', EPOCH_PUBLIC_URL: 'https://r' }),
    ).toThrow(/SSO_COOKIE_SECRET is required/);
    expect(() =>
      loadConfig({ ...base, SSO_COOKIE_SECRET: 'short', SSO_ALLOWED_DOMAINS: 'x.com' }),
    ).toThrow(ConfigError);
    expect(() =>
      loadConfig({ ...base, SSO_COOKIE_SECRET: COOKIE_SECRET, EPOCH_PUBLIC_URL: 'https://r' }),
    ).toThrow(/allow-list/);
    expect(() =>
      loadConfig({ ...base, SSO_COOKIE_SECRET: COOKIE_SECRET, SSO_ALLOWED_DOMAINS: 'x.com' }),
    ).toThrow(/REDIRECT_URI/);
    const google = loadConfig({
      GOOGLE_OAUTH_CLIENT_ID: 'g',
      GOOGLE_OAUTH_CLIENT_SECRET: 's',
      GOOGLE_OAUTH_HOSTED_DOMAIN: 'Corp.com',
      SSO_COOKIE_SECRET: COOKIE_SECRET,
      EPOCH_PUBLIC_URL: 'https://registry.corp.com',
    }).sso;
    expect(google).toMatchObject({
      provider: 'google',
      allowedDomains: ['corp.com'],
      redirectUri: 'https://registry.corp.com/login/callback',
      issuer: 'https://accounts.google.com',
    });
  });
});
