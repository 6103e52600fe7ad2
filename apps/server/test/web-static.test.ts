import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

const INDEX =
  '<!doctype html><title>Epoch</title><script type="module" src="/assets/app-1a2b3c.js"></script>';

describe('the dashboard at /', () => {
  let t: TestServer;
  let web: string;
  beforeAll(async () => {
    web = await mkdtemp(join(tmpdir(), 'epoch-web-'));
    await mkdir(join(web, 'assets'));
    await writeFile(join(web, 'index.html'), INDEX);
    await writeFile(join(web, 'assets', 'app-1a2b3c.js'), 'console.log(1)');
    await writeFile(join(web, 'favicon.svg'), '<svg/>');
    t = await startTestServer('filesystem', { EPOCH_WEB_DIR: web });
  });
  afterAll(async () => {
    await t.stop();
    await rm(web, { recursive: true, force: true });
  });

  it('serves index.html with no-cache and a strict CSP, for / and every client-side route', async () => {
    for (const path of ['/', '/repositories', '/repositories/team/live/-/v1', '/tokens?x=1']) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(await res.text()).toBe(INDEX);
    }
  });

  it('caches hashed assets for a year and other files not at all', async () => {
    const asset = await fetch(`${t.url}/assets/app-1a2b3c.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toBe('console.log(1)');
    const icon = await fetch(`${t.url}/favicon.svg`);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(icon.headers.get('cache-control')).toBe('no-cache');
    const head = await fetch(`${t.url}/assets/app-1a2b3c.js`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe('14');
  });

  it('answers a missing asset with a JSON 404, not the app', async () => {
    const res = await fetch(`${t.url}/assets/old-ffffff.js`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('never serves the app for server paths', async () => {
    for (const path of [
      '/api/nope',
      '/auth/nope',
      '/dl',
      '/v2/nope/x',
      '/metrics/x',
      '/logout/x',
    ]) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/);
      expect(await res.text(), path).not.toContain('<!doctype');
    }
    // /metrics and /readyz are the server's own, not the app's.
    expect((await fetch(`${t.url}/metrics`)).headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await (await fetch(`${t.url}/readyz`)).json()).toMatchObject({ status: 'ready' });
  });

  it('does not leave the web directory', async () => {
    const res = await new RawClient(t.url).fetch('/%2e%2e%2f%2e%2e%2fetc%2fpasswd');
    expect(await res.text()).not.toContain('root:');
  });

  it('reports version, storage and index on /api/version, and pushes per day', async () => {
    const admin = { Authorization: `Bearer ${await t.token()}` };
    const res = await fetch(`${t.url}/api/version`, { headers: admin });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ version: '0.1.0', storage: 'filesystem', index: 'sqlite' });
    await new RawClient(t.url, admin).pushImage('team/app', 'v1');
    const pushes = await fetch(`${t.url}/api/stats/pushes?days=7`, { headers: admin });
    const days = (await pushes.json()) as { day: string; count: number }[];
    expect(days).toHaveLength(7);
    expect(days[6]).toEqual({ day: new Date().toISOString().slice(0, 10), count: 1 });
    expect(days.slice(0, 6).every((d) => d.count === 0)).toBe(true);
    const bad = await fetch(`${t.url}/api/stats/pushes?days=0`, { headers: admin });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'BAD_DAYS' });
  });
});

describe('without a dashboard build', () => {
  it('answers / with a JSON 404 that says the dashboard is not built', async () => {
    const t = await startTestServer('filesystem', {
      EPOCH_WEB_DIR: join(tmpdir(), 'no-such-web-dir'),
    });
    try {
      const res = await fetch(`${t.url}/`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({
        code: 'NOT_FOUND',
        error: expect.stringContaining('not built'),
      });
    } finally {
      await t.stop();
    }
  });
});
