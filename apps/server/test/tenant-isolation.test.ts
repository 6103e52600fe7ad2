import { join } from 'node:path';
import { CocoonMediaTypes, digestOf, MediaTypes } from '@epoch/oci';
import { Layout } from '@epoch/registry';
import { errorCode, RawClient } from '@epoch/test-support/oci-client';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server.js';
import { type Backend, backends, startTestServer, type TestServer } from './support/server.js';

/**
 * Regression tests for the defects an outside attack found (tenants are repository patterns),
 * each against the request that showed it, on every storage backend. Each case was failing
 * before its fix.
 */

const STATIC_TOKEN = 'static-registry-token-0123456789';
const basic = (secret: string) => `Basic ${Buffer.from(`_token:${secret}`).toString('base64')}`;
const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });

function imageManifest(
  config: { digest: string; size: number; mediaType?: string; urls?: string[] },
  layers: { digest: string; size: number; mediaType?: string; urls?: string[] }[],
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, ...config },
    layers: layers.map((l) => ({ mediaType: MediaTypes.ociLayerGzip, ...l })),
    ...extra,
  });
}

const EMPTY = { digest: digestOf('{}'), size: 2, mediaType: MediaTypes.ociEmpty };
const OS_IMAGE = { artifactType: CocoonMediaTypes.osImageArtifact };
const SECRET_LAYER = 'the private bytes of team-b';
const SECRET_CONFIG = JSON.stringify({
  schemaVersion: 'v1',
  snapshotId: 'sid',
  files: {},
  env: 'PASSWORD=hunter2',
});

describe.each(backends)('tenant isolation (%s)', (backend: Backend) => {
  let t: TestServer;
  let admin: RawClient;
  let teamA: RawClient; // push on team-a/*
  let teamAPull: RawClient; // pull on team-a/*
  let victimLayer: string;
  let victimConfig: string;

  const put = (client: RawClient, path: string, body: string) =>
    client.fetch(path, {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      body,
    });

  beforeAll(async () => {
    t = await startTestServer(backend);
    admin = new RawClient(t.url, bearer(await t.token(['admin'])));
    teamA = new RawClient(t.url, bearer(await t.token(['push'], 'team-a/*')));
    teamAPull = new RawClient(t.url, bearer(await t.token(['pull'], 'team-a/*')));
    victimLayer = await admin.pushBlob('team-b/app', SECRET_LAYER);
    victimConfig = await admin.pushBlob('team-b/app', SECRET_CONFIG);
    // The empty config, pushed where the attack's manifests go: only the layer is foreign.
    for (const repo of ['team-a/app', 'team-a/leak']) await teamA.pushBlob(repo, '{}');
  });
  afterAll(async () => {
    await t?.stop();
  });

  describe('D1: a manifest may name only blobs its repository can read', () => {
    it('refuses a foreign layer (urls) naming another repository’s blob, and stores nothing', async () => {
      const before = await t.keys();
      const res = await put(
        teamA,
        '/v2/team-a/leak/manifests/v1',
        imageManifest(
          EMPTY,
          [
            {
              digest: victimLayer,
              size: SECRET_LAYER.length,
              mediaType: 'application/vnd.cocoonstack.disk.raw',
              urls: ['https://example.invalid/x'],
            },
          ],
          OS_IMAGE,
        ),
      );
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe('MANIFEST_BLOB_UNKNOWN');
      expect(await t.keys()).toEqual(before);
      expect((await teamA.fetch('/dl/team-a/leak:v1')).status).toBe(404);
    });

    it('refuses a config descriptor with urls naming another repository’s config', async () => {
      const res = await put(
        teamA,
        '/v2/team-a/snapleak/manifests/v1',
        imageManifest(
          {
            digest: victimConfig,
            size: SECRET_CONFIG.length,
            mediaType: CocoonMediaTypes.snapshotConfig,
            urls: ['https://example.invalid/c'],
          },
          [],
          { artifactType: CocoonMediaTypes.snapshotArtifact },
        ),
      );
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe('MANIFEST_BLOB_UNKNOWN');
      expect((await teamA.fetch('/api/repositories/team-a/snapleak/tags/v1')).status).toBe(404);
    });

    it('refuses a descriptor whose declared size is not its blob’s', async () => {
      const own = await teamA.pushBlob('team-a/app', 'twelve bytes');
      const res = await put(
        teamA,
        '/v2/team-a/app/manifests/big',
        imageManifest(EMPTY, [{ digest: own, size: 4096 }]),
      );
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        errors: [
          {
            code: 'MANIFEST_INVALID',
            detail: { sizes: [{ digest: own, declared: 4096, actual: 12 }] },
          },
        ],
      });
    });

    it('never serves an unlinked blob through /dl/ or /api/, even when storage names it', async () => {
      // What the attack left in a bucket before the fix: manifests naming another repository's
      // blobs with urls. Storage is the truth, so a reconcile indexes them; no route may serve
      // the bytes they name.
      const layer = imageManifest(
        EMPTY,
        [
          {
            digest: victimLayer,
            size: SECRET_LAYER.length,
            mediaType: CocoonMediaTypes.diskRaw,
            urls: ['https://example.invalid/x'],
          },
        ],
        OS_IMAGE,
      );
      const snap = imageManifest(
        {
          digest: victimConfig,
          size: SECRET_CONFIG.length,
          mediaType: CocoonMediaTypes.snapshotConfig,
          urls: ['https://example.invalid/c'],
        },
        [],
        { artifactType: CocoonMediaTypes.snapshotArtifact },
      );
      for (const [repo, bytes] of [
        ['team-a/planted', layer],
        ['team-a/plantedsnap', snap],
      ] as const) {
        await t.store.put(Layout.manifestByDigest(repo, digestOf(bytes)), bytes);
        await t.store.put(Layout.tag(repo, 'v1'), bytes);
      }
      const sync = await admin.fetch('/api/catalog/sync', { method: 'POST' });
      expect(sync.status).toBe(200);

      const dl = await teamAPull.fetch('/dl/team-a/planted:v1');
      expect(dl.status).toBe(404);
      expect(await dl.text()).not.toContain(SECRET_LAYER);
      const ranged = await teamAPull.fetch('/dl/team-a/planted:v1', {
        headers: { Range: 'bytes=0-5' },
      });
      expect(ranged.status).toBe(404);
      const detail = await teamAPull.fetch('/api/repositories/team-a/plantedsnap/tags/v1');
      expect(detail.status).toBe(200);
      const body = (await detail.json()) as Record<string, unknown>;
      expect(body.snapshotConfig).toBeUndefined();
      expect(JSON.stringify(body)).not.toContain('hunter2');
      expect((await teamAPull.fetch(`/v2/team-a/planted/blobs/${victimLayer}`)).status).toBe(404);
    });

    it('serves an upstream bucket’s blobs to the repository whose manifests name them', async () => {
      // Upstream epoch wrote no link markers: a reconcile adopts each manifest's own blobs.
      const content = 'upstream layer';
      const digest = digestOf(content);
      await t.store.put(Layout.blob(digest), content);
      const bytes = imageManifest(
        EMPTY,
        [{ digest, size: content.length, mediaType: CocoonMediaTypes.diskRaw }],
        OS_IMAGE,
      );
      await t.store.put(Layout.blob(EMPTY.digest), '{}');
      await t.store.put(Layout.tag('upstream/img', 'v1'), bytes);
      expect((await admin.fetch(`/v2/upstream/img/blobs/${digest}`)).status).toBe(404);
      expect((await admin.fetch('/api/catalog/sync', { method: 'POST' })).status).toBe(200);
      const blob = await admin.fetch(`/v2/upstream/img/blobs/${digest}`);
      expect(blob.status).toBe(200);
      expect(await blob.text()).toBe(content);
      expect((await admin.fetch(`/v2/other/img/blobs/${digest}`)).status).toBe(404);
      const dl = await admin.fetch('/dl/upstream/img:v1');
      expect(dl.status).toBe(200);
      expect(await dl.text()).toBe(content);
    });
  });

  describe('D4: a repository-limited token sees only its repositories', () => {
    beforeAll(async () => {
      await admin.pushImage('private/x', 'v1', { layers: ['private layer'] });
      await admin.pushImage('private/y', 'v1', { layers: ['another private layer'] });
      await teamA.pushImage('team-a/app', 'v1', { layers: ['team-a layer'] });
      await admin.pushImage('team-a/app', 'v2', { layers: ['team-a layer 2'] });
      // A mount into team-a from a repository team-a cannot see, by someone who can see both.
      const mount = `/v2/team-a/mounted/blobs/uploads/?mount=${digestOf('private layer')}&from=private/x`;
      expect((await admin.fetch(mount, { method: 'POST' })).status).toBe(201);
      const created = await admin.fetch('/api/tokens', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'ci-private', scopes: ['push'], repoPattern: 'private/*' }),
      });
      expect(created.status).toBe(201);
    });

    const allNames = (value: unknown): string => JSON.stringify(value);

    it('pages the catalog from its own repositories: no other name in a page or a Link', async () => {
      const names: string[] = [];
      let path: string | undefined = '/v2/_catalog?n=1';
      while (path) {
        const res: Response = await teamAPull.fetch(path);
        expect(res.status).toBe(200);
        const body = (await res.json()) as { repositories: string[] };
        names.push(...body.repositories);
        const link: string | null = res.headers.get('link');
        expect(link ?? '').not.toMatch(/private|team-b|upstream/);
        path = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
      }
      expect(names.length).toBeGreaterThan(0);
      expect(names.every((n) => n.startsWith('team-a/'))).toBe(true);
    });

    it('pages /api/repositories from its own repositories: cursors carry no other name', async () => {
      for (const sort of ['name', 'updated', 'size', 'tags']) {
        let cursor: string | null = null;
        const seen: string[] = [];
        do {
          const res: Response = await teamAPull.fetch(
            `/api/repositories?limit=1&sort=${sort}${cursor ? `&cursor=${cursor}` : ''}`,
          );
          expect(res.status).toBe(200);
          seen.push(...((await res.json()) as { name: string }[]).map((r) => r.name));
          cursor = res.headers.get('x-next-cursor');
          if (cursor) {
            expect(Buffer.from(cursor, 'base64url').toString()).not.toMatch(/private|team-b/);
          }
        } while (cursor);
        expect(seen.length).toBeGreaterThan(0);
        expect(seen.every((n) => n.startsWith('team-a/'))).toBe(true);
      }
    });

    it('finds by search only its own repositories', async () => {
      const search = async (client: RawClient, needle: string) =>
        (
          (await (await client.fetch(`/api/repositories?limit=100&search=${needle}`)).json()) as {
            name: string;
          }[]
        ).map((r) => r.name);
      // What the tenant finds is exactly what an admin finds under team-a/, for needles that
      // match only others, both, or (shorter than a trigram) nearly everything.
      for (const needle of ['private', 'app', 'p', 'a/']) {
        const everyone = await search(admin, needle);
        const mine = await search(teamAPull, needle);
        expect(mine).toEqual(everyone.filter((n) => n.startsWith('team-a/')));
      }
      expect(await search(teamAPull, 'private')).toEqual([]);
      expect(await search(admin, 'private')).toEqual(['private/x', 'private/y']);
      expect(await search(teamAPull, 'app')).toContain('team-a/app');
      expect((await search(admin, 'p')).some((n) => !n.startsWith('team-a/'))).toBe(true);
    });

    it('counts only its own repositories in stats and pushes per day', async () => {
      const mine = (await (await teamAPull.fetch('/api/stats')).json()) as Record<string, number>;
      const all = (await (await admin.fetch('/api/stats')).json()) as Record<string, number>;
      const repos = (await (await teamAPull.fetch('/api/repositories')).json()) as unknown[];
      expect(mine.repositoryCount).toBe(repos.length);
      expect(mine.repositoryCount).toBeLessThan(all.repositoryCount ?? 0);
      expect(mine.tagCount).toBeLessThan(all.tagCount ?? 0);
      expect(mine.blobCount).toBeLessThan(all.blobCount ?? 0);
      const days = (r: Response) => r.json() as Promise<{ count: number }[]>;
      const total = (list: { count: number }[]) => list.reduce((s, d) => s + d.count, 0);
      const minePushes = total(await days(await teamAPull.fetch('/api/stats/pushes?days=1')));
      const allPushes = total(await days(await admin.fetch('/api/stats/pushes?days=1')));
      expect(minePushes).toBe(2);
      expect(allPushes).toBeGreaterThan(minePushes);
    });

    it('reads only events about its repositories: no tokens, no others, no hidden mount source', async () => {
      const res = await teamAPull.fetch('/api/events?limit=1000');
      expect(res.status).toBe(200);
      const events = (await res.json()) as { action: string; repository?: string }[];
      expect(events.length).toBeGreaterThan(0);
      expect(events.every((e) => e.repository?.startsWith('team-a/'))).toBe(true);
      expect(allNames(events)).not.toMatch(/private|team-b|token\.create/);
      expect(events.some((e) => e.action === 'mount')).toBe(true);
      // Paged one at a time, no cursor reveals anything either.
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Response = await teamAPull.fetch(
          `/api/events?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(allNames(await page.json())).not.toMatch(/private|team-b|token/);
        cursor = page.headers.get('x-next-cursor');
        pages++;
      } while (cursor && pages < 50);
      const everything = (await (await admin.fetch('/api/events?limit=1000')).json()) as {
        action: string;
      }[];
      expect(everything.some((e) => e.action === 'token.create')).toBe(true);
    });

    it('may not read GC reports or retention policies (they span tenants)', async () => {
      for (const path of ['/api/gc', '/api/retention']) {
        expect((await teamAPull.fetch(path)).status).toBe(403);
        expect((await admin.fetch(path)).status).not.toBe(403);
      }
    });
  });

  describe('D5: a tag and a child repository of the same name', () => {
    it.each([
      ['the child repository first', ['team-a/sq/latest.json:v1', 'team-a/sq:latest']],
      ['the tag first', ['team-a/sq2:latest', 'team-a/sq2/latest.json:v1']],
    ])('both push and pull back, %s', async (_, order) => {
      const pushed = new Map<string, string>();
      for (const ref of order as string[]) {
        const [name = '', tag = ''] = ref.split(':');
        const { digest } = await teamA.pushImage(name, tag, { layers: [`layer of ${ref}`] });
        pushed.set(ref, digest);
      }
      for (const [ref, digest] of pushed) {
        const [name = '', tag = ''] = ref.split(':');
        const res = await teamA.fetch(`/v2/${name}/manifests/${tag}`);
        expect(res.status, ref).toBe(200);
        expect(res.headers.get('docker-content-digest')).toBe(digest);
        const tags = (await (await teamA.fetch(`/v2/${name}/tags/list`)).json()) as {
          tags: string[];
        };
        expect(tags.tags).toContain(tag);
      }
    });
  });

  describe('D6: bounded manifests', () => {
    let small: TestServer;
    let client: RawClient;
    beforeAll(async () => {
      small = await startTestServer(backend, { EPOCH_MAX_MANIFEST_REFERENCES: '50' });
      client = new RawClient(small.url, bearer(await small.token(['admin'])));
      await client.pushBlob('big/app', '{}');
    });
    afterAll(async () => {
      await small?.stop();
    });

    /** The digests pushes announced to the collector (`gc_recent`), read from the SQLite file. */
    const announced = (digests: readonly string[]): string[] => {
      const db = new BetterSqlite3(join(small.dataDir, 'epoch.db'), { readonly: true });
      try {
        const rows = db.prepare('select digest from gc_recent').all() as { digest: string }[];
        return rows.map((r) => r.digest).filter((d) => digests.includes(d));
      } finally {
        db.close();
      }
    };

    it('refuses more descriptors than EPOCH_MAX_MANIFEST_REFERENCES before writing anything', async () => {
      const layers: { digest: string; size: number }[] = [];
      for (let i = 0; i < 50; i++) {
        const content = `layer ${i}`;
        layers.push({ digest: await client.pushBlob('big/app', content), size: content.length });
      }
      const before = await small.keys();
      const res = await put(client, '/v2/big/app/manifests/too-many', imageManifest(EMPTY, layers));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        errors: [{ code: 'MANIFEST_INVALID', detail: { descriptors: 51, limit: 50 } }],
      });
      expect(await small.keys()).toEqual(before);
      const ok = await put(
        client,
        '/v2/big/app/manifests/at-limit',
        imageManifest(EMPTY, layers.slice(0, 49)),
      );
      expect(ok.status).toBe(201);
    });

    it('refuses missing layers without writing storage or announcing them to GC', async () => {
      const missing = Array.from({ length: 40 }, (_, i) => ({
        digest: digestOf(`never pushed ${i}`),
        size: 10,
      }));
      const before = await small.keys();
      const res = await put(client, '/v2/big/app/manifests/missing', imageManifest(EMPTY, missing));
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe('MANIFEST_BLOB_UNKNOWN');
      expect(await small.keys()).toEqual(before);
      expect(announced(missing.map((m) => m.digest))).toEqual([]);
    });

    it('indexes a stored manifest with 24,000 references, and a reconcile never repeats an error', async () => {
      const layers = Array.from({ length: 24_000 }, (_, i) => ({
        digest: digestOf(`foreign ${i}`),
        size: 100,
        urls: [`https://example.invalid/${i}`],
      }));
      const bytes = imageManifest(EMPTY, layers);
      await small.store.put(Layout.manifestByDigest('huge/app', digestOf(bytes)), bytes);
      await small.store.put(Layout.tag('huge/app', 'v1'), bytes);
      for (let run = 0; run < 2; run++) {
        const res = await client.fetch('/api/catalog/sync', { method: 'POST' });
        expect(res.status).toBe(200);
        const report = (await res.json()) as { errors: unknown[] };
        expect(report.errors).toEqual([]);
      }
      const tags = (await (await client.fetch('/v2/huge/app/tags/list')).json()) as {
        tags: string[];
      };
      expect(tags.tags).toEqual(['v1']);
      const tag = await client.fetch('/api/repositories/huge/app/tags/v1');
      expect(((await tag.json()) as { layerCount: number }).layerCount).toBe(24_000);
    });
  });
});

describe('credentials die with what issued them', () => {
  let t: TestServer;
  let restarted: RunningServer | undefined;
  afterAll(async () => {
    await restarted?.close(1000);
    await t?.stop();
  });

  const tokenFor = async (url: string, query: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}/v2/token?service=epoch&${query}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };
  const refresh = (url: string, refreshToken: string, scope: string) =>
    fetch(`${url}/v2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        service: 'epoch',
        scope,
      }).toString(),
    });

  it('D2: a refresh token and a JWT of the static token die when the static token changes', async () => {
    t = await startTestServer('filesystem', { EPOCH_REGISTRY_TOKEN: STATIC_TOKEN });
    const scope = 'repository:team/app:pull,push,delete';
    const { body } = await tokenFor(t.url, `scope=${scope}&offline_token=true`, {
      Authorization: basic(STATIC_TOKEN),
    });
    expect(body.refresh_token).toBeTruthy();
    const jwt = body.token ?? '';
    const before = new RawClient(t.url, bearer(jwt));
    await before.pushImage('team/app', 'v1');
    expect((await refresh(t.url, body.refresh_token ?? '', scope)).status).toBe(200);

    await t.halt();
    restarted = await startServer(
      loadConfig({ ...t.env, EPOCH_REGISTRY_TOKEN: 'a-new-static-token-9876543210' }),
      { env: t.env },
    );
    const url = restarted.url;
    const old = new RawClient(url, { Authorization: basic(STATIC_TOKEN) });
    expect((await old.fetch('/v2/team/app/manifests/v1')).status).toBe(401);
    const grant = await refresh(url, body.refresh_token ?? '', scope);
    expect(grant.status).toBe(401);
    const withJwt = new RawClient(url, bearer(jwt));
    expect((await withJwt.fetch('/v2/team/app/manifests/v1')).status).toBe(401);
    expect((await withJwt.fetch('/v2/team/app/manifests/v1', { method: 'DELETE' })).status).toBe(
      401,
    );
    expect((await withJwt.fetch('/v2/team/app/blobs/uploads/', { method: 'POST' })).status).toBe(
      401,
    );
    // The new static token works, and so do refresh tokens minted with it.
    const fresh = await tokenFor(url, `scope=${scope}&offline_token=true`, {
      Authorization: basic('a-new-static-token-9876543210'),
    });
    expect(fresh.status).toBe(200);
    expect((await refresh(url, fresh.body.refresh_token ?? '', scope)).status).toBe(200);
  });
});

describe('D3: anonymous JWTs carry only what the anonymous policy grants now', () => {
  it('a JWT issued while loopback writes were open stops pushing once a token exists', async () => {
    const t = await startTestServer('filesystem');
    try {
      const res = await fetch(
        `${t.url}/v2/token?service=epoch&scope=repository:open/app:pull,push`,
      );
      const { token } = (await res.json()) as { token: string };
      const anon = new RawClient(t.url, bearer(token));
      await anon.pushImage('open/app', 'v1');
      await t.token(['admin']);
      // Token existence is cached for up to 2 s per process.
      await new Promise((r) => setTimeout(r, 2100));
      const upload = await anon.fetch('/v2/open/app/blobs/uploads/', { method: 'POST' });
      expect(upload.status).toBe(401);
      expect((await anon.fetch('/v2/open/app/manifests/v1')).status).toBe(200);
    } finally {
      await t.stop();
    }
  });

  it('a pull JWT issued under EPOCH_ANONYMOUS_PULL=true stops pulling after a restart with false', async () => {
    const t = await startTestServer('filesystem', { EPOCH_REGISTRY_TOKEN: STATIC_TOKEN });
    let restarted: RunningServer | undefined;
    try {
      await new RawClient(t.url, bearer(STATIC_TOKEN)).pushImage('open/app', 'v1');
      const res = await fetch(`${t.url}/v2/token?service=epoch&scope=repository:open/app:pull`);
      const { token } = (await res.json()) as { token: string };
      expect(
        (await new RawClient(t.url, bearer(token)).fetch('/v2/open/app/manifests/v1')).status,
      ).toBe(200);
      await t.halt();
      restarted = await startServer(loadConfig({ ...t.env, EPOCH_ANONYMOUS_PULL: 'false' }), {
        env: t.env,
      });
      const after = new RawClient(restarted.url, bearer(token));
      expect((await after.fetch('/v2/open/app/manifests/v1')).status).toBe(401);
    } finally {
      await restarted?.close(1000);
      await t.stop();
    }
  });
});
