import { digestOf, MediaTypes } from '@epoch/oci';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Every route × every kind of caller, against an expectation written out by hand (not derived
 * from the policy code). Denials must be 401 for callers without valid credentials (with a Bearer
 * challenge on /v2/) and 403 for valid credentials lacking the right.
 */

type Right =
  | 'registry'
  | 'catalog'
  | 'pull'
  | 'push'
  | 'delete'
  | 'api-read'
  | 'api-repo'
  | 'api-admin'
  /** `/api/` read rights and push rights on the repository (its settings). */
  | 'api-push'
  | 'public';
type Caller =
  | 'anonymous'
  | 'pull'
  | 'push-other'
  | 'push'
  | 'delete'
  | 'admin'
  | 'static'
  | 'expired'
  | 'revoked';

const STATIC_TOKEN = 'static-registry-token-0123456789';
const REPO = 'team/app';

/** What each caller may do on `team/app` (the hand-written truth table). */
const rights: Record<Caller, readonly Right[]> = {
  anonymous: ['public', 'catalog', 'pull', 'api-read', 'api-repo'],
  pull: ['public', 'registry', 'catalog', 'pull', 'api-read', 'api-repo'],
  'push-other': ['public', 'registry', 'catalog', 'api-read'],
  push: ['public', 'registry', 'catalog', 'pull', 'push', 'api-read', 'api-repo', 'api-push'],
  delete: ['public', 'registry', 'catalog', 'pull', 'delete', 'api-read', 'api-repo'],
  admin: [
    'public',
    'registry',
    'catalog',
    'pull',
    'push',
    'delete',
    'api-read',
    'api-repo',
    'api-admin',
    'api-push',
  ],
  static: ['public', 'registry', 'catalog', 'pull', 'push', 'delete'],
  expired: ['public'],
  revoked: ['public'],
};

interface RouteCase {
  name: string;
  right: Right;
  /** Builds the request; may create fixtures with the admin client first. */
  request: () => Promise<{
    method: string;
    path: string;
    body?: RequestInit['body'];
    headers?: Record<string, string>;
  }>;
}

describe('authorization matrix: every route × every caller', () => {
  let t: TestServer;
  let admin: RawClient;
  const secrets = {} as Record<Caller, string | undefined>;
  let image: { digest: string; bytes: string };
  let layer: string;
  let counter = 0;
  const fresh = () => `f${++counter}`;

  const startUpload = async () => {
    const res = await admin.fetch(`/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    expect(res.status).toBe(202);
    return res.headers.get('location') ?? '';
  };

  beforeAll(async () => {
    t = await startTestServer('filesystem', { EPOCH_REGISTRY_TOKEN: STATIC_TOKEN });
    const adminToken = await t.token(['admin']);
    admin = new RawClient(t.url, { Authorization: `Bearer ${adminToken}` });
    secrets.anonymous = undefined;
    secrets.admin = adminToken;
    secrets.pull = await t.token(['pull'], 'team/*');
    secrets['push-other'] = await t.token(['push'], 'other/*');
    secrets.push = await t.token(['push'], REPO);
    secrets.delete = await t.token(['delete'], 'team/*');
    secrets.static = STATIC_TOKEN;
    // A token can only be created with an expiry in the future: give it one second.
    const expiresAt = new Date(Date.now() + 1000);
    const expired = await t.server.index.tokens.create({
      name: 'expired',
      createdBy: 'test',
      scopes: ['admin'],
      expiresAt,
    });
    secrets.expired = expired.plaintext;
    const revoked = await t.server.index.tokens.create({
      name: 'revoked',
      createdBy: 'test',
      scopes: ['admin'],
    });
    await t.server.index.tokens.revoke(revoked.token.id, 'test');
    secrets.revoked = revoked.plaintext;
    image = await admin.pushImage(REPO, 'v1', { layers: ['matrix-layer'] });
    layer = digestOf('matrix-layer');
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, expiresAt.getTime() - Date.now() + 50)),
    );
  });
  afterAll(async () => {
    await t.stop();
  });

  let secretsPushed: Promise<void> | undefined;
  /** Repositories outside every limited caller's pattern, with activity to list and count. */
  const secretRepositories = () => {
    secretsPushed ??= (async () => {
      for (const name of ['secret/app', 'secret/zzz', 'other/app']) {
        await admin.pushImage(name, 'v1', { layers: [`layer of ${name}`] });
      }
      const created = await admin.fetch('/api/tokens', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'secret-ci', scopes: ['push'], repoPattern: 'secret/*' }),
      });
      expect(created.status).toBe(201);
    })();
    return secretsPushed;
  };

  const manifestFor = async () => {
    const config = await admin.pushBlob(REPO, '{}');
    return JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: config, size: 2 },
      layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: layer, size: 12 }],
    });
  };

  const routes: RouteCase[] = [
    { name: 'GET /v2/', right: 'registry', request: async () => ({ method: 'GET', path: '/v2/' }) },
    {
      name: 'GET /v2/_catalog',
      right: 'catalog',
      request: async () => ({ method: 'GET', path: '/v2/_catalog' }),
    },
    {
      name: 'GET tags/list',
      right: 'pull',
      request: async () => ({ method: 'GET', path: `/v2/${REPO}/tags/list` }),
    },
    {
      name: 'GET manifest',
      right: 'pull',
      request: async () => ({ method: 'GET', path: `/v2/${REPO}/manifests/v1` }),
    },
    {
      name: 'HEAD manifest',
      right: 'pull',
      request: async () => ({ method: 'HEAD', path: `/v2/${REPO}/manifests/v1` }),
    },
    {
      name: 'PUT manifest',
      right: 'push',
      request: async () => ({
        method: 'PUT',
        path: `/v2/${REPO}/manifests/${fresh()}`,
        body: await manifestFor(),
        headers: { 'Content-Type': MediaTypes.ociManifest },
      }),
    },
    {
      name: 'DELETE manifest',
      right: 'delete',
      request: async () => {
        const tag = fresh();
        await admin.pushImage(REPO, tag, { layers: ['matrix-layer'] });
        return { method: 'DELETE', path: `/v2/${REPO}/manifests/${tag}` };
      },
    },
    {
      name: 'GET blob',
      right: 'pull',
      request: async () => ({ method: 'GET', path: `/v2/${REPO}/blobs/${layer}` }),
    },
    {
      name: 'HEAD blob',
      right: 'pull',
      request: async () => ({ method: 'HEAD', path: `/v2/${REPO}/blobs/${layer}` }),
    },
    {
      name: 'DELETE blob',
      right: 'delete',
      request: async () => {
        const digest = await admin.pushBlob(REPO, `blob-${fresh()}`);
        return { method: 'DELETE', path: `/v2/${REPO}/blobs/${digest}` };
      },
    },
    {
      name: 'PUT blob (upstream)',
      right: 'push',
      request: async () => {
        const content = `direct-${fresh()}`;
        return { method: 'PUT', path: `/v2/${REPO}/blobs/${digestOf(content)}`, body: content };
      },
    },
    {
      name: 'POST upload',
      right: 'push',
      request: async () => ({ method: 'POST', path: `/v2/${REPO}/blobs/uploads/` }),
    },
    {
      name: 'PATCH upload',
      right: 'push',
      request: async () => ({ method: 'PATCH', path: await startUpload(), body: 'chunk' }),
    },
    {
      name: 'PUT upload',
      right: 'push',
      request: async () => {
        const content = `put-${fresh()}`;
        return {
          method: 'PUT',
          path: `${await startUpload()}?digest=${digestOf(content)}`,
          body: content,
        };
      },
    },
    {
      name: 'GET upload',
      right: 'push',
      request: async () => ({ method: 'GET', path: await startUpload() }),
    },
    {
      name: 'DELETE upload',
      right: 'push',
      request: async () => ({ method: 'DELETE', path: await startUpload() }),
    },
    {
      name: 'GET referrers',
      right: 'pull',
      request: async () => ({ method: 'GET', path: `/v2/${REPO}/referrers/${image.digest}` }),
    },
    {
      name: 'GET /api/stats',
      right: 'api-read',
      request: async () => ({ method: 'GET', path: '/api/stats' }),
    },
    {
      name: 'GET /api/events',
      right: 'api-read',
      request: async () => ({ method: 'GET', path: '/api/events' }),
    },
    {
      name: 'GET /api/stats/pushes',
      right: 'api-read',
      request: async () => ({ method: 'GET', path: '/api/stats/pushes?days=7' }),
    },
    {
      name: 'GET /api/gc',
      right: 'api-admin',
      request: async () => ({ method: 'GET', path: '/api/gc' }),
    },
    {
      name: 'GET /api/retention',
      right: 'api-admin',
      request: async () => ({ method: 'GET', path: '/api/retention' }),
    },
    {
      name: 'GET /api/repositories',
      right: 'api-read',
      request: async () => ({ method: 'GET', path: '/api/repositories' }),
    },
    {
      name: 'GET /api/repositories/<name>',
      right: 'api-repo',
      request: async () => ({ method: 'GET', path: `/api/repositories/${REPO}` }),
    },
    {
      name: 'GET /api/…/tags',
      right: 'api-repo',
      request: async () => ({ method: 'GET', path: `/api/repositories/${REPO}/tags` }),
    },
    {
      name: 'GET /api/…/tags/<tag>',
      right: 'api-repo',
      request: async () => ({ method: 'GET', path: `/api/repositories/${REPO}/tags/v1` }),
    },
    {
      name: 'DELETE /api/…/tags/<tag>',
      right: 'api-admin',
      request: async () => {
        const tag = fresh();
        await admin.pushImage(REPO, tag, { layers: ['matrix-layer'] });
        return { method: 'DELETE', path: `/api/repositories/${REPO}/tags/${tag}` };
      },
    },
    {
      name: 'GET /api/repository-settings/<name>',
      right: 'api-repo',
      request: async () => ({ method: 'GET', path: `/api/repository-settings/${REPO}` }),
    },
    {
      name: 'PUT /api/repository-settings/<name>',
      right: 'api-push',
      request: async () => ({
        method: 'PUT',
        path: `/api/repository-settings/${REPO}`,
        body: JSON.stringify({ defaultFormat: 'incremental' }),
        headers: { 'Content-Type': 'application/json' },
      }),
    },
    {
      name: 'POST /api/catalog/sync',
      right: 'api-admin',
      request: async () => ({ method: 'POST', path: '/api/catalog/sync' }),
    },
    {
      name: 'GET /api/tokens',
      right: 'api-admin',
      request: async () => ({ method: 'GET', path: '/api/tokens' }),
    },
    {
      name: 'POST /api/tokens',
      right: 'api-admin',
      request: async () => ({
        method: 'POST',
        path: '/api/tokens',
        body: JSON.stringify({ name: fresh() }),
        headers: { 'Content-Type': 'application/json' },
      }),
    },
    {
      name: 'DELETE /api/tokens/<id>',
      right: 'api-admin',
      request: async () => {
        const { token } = await t.server.index.tokens.create({
          name: fresh(),
          createdBy: 'test',
          scopes: ['pull'],
        });
        return { method: 'DELETE', path: `/api/tokens/${token.id}` };
      },
    },
    {
      name: 'GET /dl/<name>',
      right: 'pull',
      request: async () => ({ method: 'GET', path: `/dl/${REPO}:v1` }),
    },
    {
      name: 'HEAD /dl/<name>',
      right: 'pull',
      request: async () => ({ method: 'HEAD', path: `/dl/${REPO}:v1` }),
    },
    {
      name: 'GET /healthz',
      right: 'public',
      request: async () => ({ method: 'GET', path: '/healthz' }),
    },
  ];
  const callers = Object.keys(rights) as Caller[];

  it.each(routes.flatMap((route) => callers.map((caller) => ({ route, caller }))))(
    '$route.name as $caller',
    async ({ route, caller }) => {
      const secret = secrets[caller];
      const client = new RawClient(t.url, secret ? { Authorization: `Bearer ${secret}` } : {});
      const { method, path, body, headers } = await route.request();
      const res = await client.fetch(path, {
        method,
        ...(body ? { body } : {}),
        ...(headers ? { headers } : {}),
      });
      await res.arrayBuffer();
      const allowed = rights[caller].includes(route.right);
      if (allowed) {
        expect(res.status, `${caller} should be allowed ${route.name}`).not.toBe(401);
        expect(res.status, `${caller} should be allowed ${route.name}`).not.toBe(403);
        expect(res.status).toBeLessThan(500);
        return;
      }
      const unauthenticated =
        caller === 'anonymous' || caller === 'expired' || caller === 'revoked';
      expect(res.status, `${caller} must be refused ${route.name}`).toBe(
        unauthenticated ? 401 : 403,
      );
      if (unauthenticated && path.startsWith('/v2/')) {
        expect(res.headers.get('www-authenticate')).toMatch(
          new RegExp(`^Bearer realm="${t.url}/v2/token",service="epoch"`),
        );
      }
    },
  );

  it('mounts only from a repository the caller may pull, else falls back to an upload', async () => {
    const mount = `/v2/other/app/blobs/uploads/?mount=${layer}&from=${REPO}`;
    const other = new RawClient(t.url, { Authorization: `Bearer ${secrets['push-other']}` });
    expect((await other.fetch(mount, { method: 'POST' })).status).toBe(202);
    expect((await other.fetch(`/v2/other/app/blobs/${layer}`, { method: 'HEAD' })).status).toBe(
      404,
    );
    const both = await t.token(['push'], '*');
    const wide = new RawClient(t.url, { Authorization: `Bearer ${both}` });
    expect((await wide.fetch(mount, { method: 'POST' })).status).toBe(201);
    expect((await wide.fetch(`/v2/other/app/blobs/${layer}`, { method: 'HEAD' })).status).toBe(200);
  });

  // Every listing, count and feed, paged one entry at a time, for callers limited to some
  // repositories: no body, `Link` or cursor may carry (or count) anything outside their pattern.
  const listings = [
    '/v2/_catalog?n=1',
    '/api/repositories?limit=1',
    '/api/repositories?limit=1&sort=size',
    '/api/repositories?limit=1&sort=updated',
    '/api/repositories?limit=1&sort=tags',
    '/api/repositories?search=app',
    '/api/events?limit=1',
    '/api/stats',
    '/api/stats/pushes?days=2',
  ];
  const limited: Caller[] = ['pull', 'push', 'delete', 'push-other'];
  it.each(limited.flatMap((caller) => listings.map((path) => ({ caller, path }))))(
    'lists nothing outside its pattern: $path as $caller',
    async ({ caller, path }) => {
      await secretRepositories();
      const client = new RawClient(t.url, { Authorization: `Bearer ${secrets[caller]}` });
      let next: string | undefined = path;
      for (let pages = 0; next && pages < 100; pages++) {
        const res: Response = await client.fetch(next);
        const text = await res.text();
        if (res.status === 403) break; // no /api/ read right at all: nothing listed
        expect(res.status).toBe(200);
        const cursor = res.headers.get('x-next-cursor');
        const link = res.headers.get('link');
        const seen = [
          text,
          decodeURIComponent(link ?? ''),
          cursor ? Buffer.from(cursor, 'base64url').toString() : '',
        ].join(' ');
        // A page is cut from what the caller may see: never short before the last one (an
        // empty page would tell that something hidden was skipped).
        const body = JSON.parse(text) as unknown;
        const items = Array.isArray(body)
          ? body
          : ((body as { repositories?: unknown[] }).repositories ?? undefined);
        if (link && items) expect(items.length).toBe(1);
        expect(seen).not.toMatch(/secret\//);
        if (caller !== 'push-other') expect(seen).not.toMatch(/other\//);
        if (path.startsWith('/api/events')) expect(seen).not.toMatch(/token\./);
        next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
      }
    },
  );

  it('counts only what a limited caller may see', async () => {
    await secretRepositories();
    const pull = new RawClient(t.url, { Authorization: `Bearer ${secrets.pull}` });
    const mine = (await (await pull.fetch('/api/stats')).json()) as Record<string, number>;
    const all = (await (await admin.fetch('/api/stats')).json()) as Record<string, number>;
    const repos = (await (await pull.fetch('/api/repositories')).json()) as { name: string }[];
    expect(repos.map((r) => r.name)).toEqual([REPO]);
    expect(mine.repositoryCount).toBe(1);
    expect(all.repositoryCount).toBeGreaterThan(1);
    const everything = (await (await admin.fetch('/v2/_catalog')).json()) as {
      repositories: string[];
    };
    expect(everything.repositories).toContain('secret/app');
    const total = async (client: RawClient) =>
      ((await (await client.fetch('/api/stats/pushes?days=2')).json()) as { count: number }[])
        .map((d) => d.count)
        .reduce((a, b) => a + b, 0);
    const events = (await (await admin.fetch('/api/events?limit=1000')).json()) as {
      action: string;
      repository?: string;
    }[];
    const repoPushes = events.filter((e) => e.action === 'push' && e.repository === REPO).length;
    expect(await total(pull)).toBe(repoPushes);
    expect(await total(admin)).toBeGreaterThan(repoPushes);
  });

  it('records refused uses of known tokens and the writes of others in the audit log', async () => {
    const events = (await (await admin.fetch('/api/events?limit=500')).json()) as {
      action: string;
      actor: string;
    }[];
    expect(events.some((e) => e.action === 'token.denied' && e.actor === 'revoked')).toBe(true);
    expect(events.some((e) => e.action === 'token.denied' && e.actor === 'expired')).toBe(true);
    expect(events.some((e) => e.action === 'push')).toBe(true);
    expect(events.some((e) => e.action === 'delete')).toBe(true);
    expect(events.some((e) => e.action === 'mount')).toBe(true);
    expect(events.some((e) => e.action === 'token.create')).toBe(true);
    expect(events.some((e) => e.action === 'token.revoke')).toBe(true);
  });
});
