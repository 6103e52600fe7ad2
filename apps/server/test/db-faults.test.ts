import { createHash } from 'node:crypto';
import { digestOf, MediaTypes } from '@epoch/oci';
import { freshMysqlDatabase, MYSQL_URL } from '@epoch/test-support/mysql';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { reconcileIndex } from '../src/reconcile.js';
import { startTestServer, type TestServer } from './support/server.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/** Every request gets this long: a hung request fails the test instead of stalling it. */
const REQUEST_MS = 15_000;

type Outcome = { status: number; body: string; retryAfter: string | null };

async function call(base: string, path: string, init: RequestInit = {}): Promise<Outcome> {
  const res = await fetch(`${base}${path}`, {
    ...init,
    redirect: 'manual',
    signal: AbortSignal.timeout(REQUEST_MS),
  });
  return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
}

/** A failure must be a 503 with Retry-After and a JSON error naming the cause; never a 500. */
function expectUnavailable(o: Outcome, path: string): void {
  expect(o.status, `${path}: ${o.body}`).toBe(503);
  expect(o.retryAfter).toBe('5');
  const parsed = JSON.parse(o.body) as { errors?: { code: string }[]; code?: string };
  expect(parsed.errors?.[0]?.code ?? parsed.code).toBe('UNAVAILABLE');
}

/** Pushes a small image (two blobs and a tagged manifest); the first failure is returned. */
async function pushImage(base: string, repo: string, tag: string): Promise<Outcome> {
  const layer = `layer ${repo}:${tag} ${Math.random()}`;
  const blobs = ['{}', layer];
  for (const content of blobs) {
    const path = `/v2/${repo}/blobs/uploads/?digest=${digestOf(content)}`;
    const o = await call(base, path, { method: 'POST', body: content });
    if (o.status !== 201) return o;
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: digestOf('{}'), size: 2 },
    layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: digestOf(layer), size: layer.length }],
  });
  return call(base, `/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': MediaTypes.ociManifest },
    body: manifest,
  });
}

/** Retries a push until it lands: what a client does with a 503. */
async function pushUntilStored(base: string, repo: string, tag: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const o = await pushImage(base, repo, tag);
    if (o.status === 201) return;
    expectUnavailable(o, `${repo}:${tag}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`push of ${repo}:${tag} never succeeded`);
}

/**
 * Every tag listed by /v2/ and by /api/ resolves to a manifest whose bytes match its digest,
 * and reconcile finds nothing in the index that storage contradicts.
 */
async function expectConsistent(t: TestServer, repos: string[]): Promise<void> {
  for (const repo of repos) {
    const list = await call(t.url, `/v2/${repo}/tags/list`);
    expect(list.status, list.body).toBe(200);
    const v2Tags = (JSON.parse(list.body) as { tags: string[] }).tags;
    const api = await call(t.url, `/api/repositories/${repo}/tags`);
    expect(api.status, api.body).toBe(200);
    const apiTags = (JSON.parse(api.body) as { name: string }[]).map((x) => x.name);
    expect([...apiTags].sort()).toEqual([...v2Tags].sort());
    for (const tag of v2Tags) {
      const res = await fetch(`${t.url}/v2/${repo}/manifests/${tag}`, {
        headers: { Accept: MediaTypes.ociManifest },
        signal: AbortSignal.timeout(REQUEST_MS),
      });
      expect(res.status, `${repo}:${tag}`).toBe(200);
      const bytes = Buffer.from(await res.arrayBuffer());
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      expect(res.headers.get('docker-content-digest')).toBe(digest);
    }
  }
  const report = await reconcileIndex(t.server.registry, t.server.index, createLogger('silent'));
  expect(report.errors).toEqual([]);
  // Nothing in the index that storage does not hold, and no tag on the wrong manifest. Rows
  // added are the known gap (bytes stored, then the index write failed and was not retried).
  expect(report.tags.removed + report.tags.updated).toBe(0);
  expect(report.manifests.removed + report.manifests.updated).toBe(0);
  expect(report.repositories.removed).toBe(0);
}

// SQLite is a file in this process: there is no connection to kill and no network to cut.
describe.skipIf(!MYSQL_URL)('index database faults (MariaDB) [needs EPOCH_TEST_MYSQL_URL]', () => {
  let db: Awaited<ReturnType<typeof freshMysqlDatabase>>;
  let proxy: TcpProxy;
  let t: TestServer;
  let dbName: string;

  beforeAll(async () => {
    db = await freshMysqlDatabase();
    const url = new URL(db.dsn);
    dbName = url.pathname.slice(1);
    proxy = await startTcpProxy(url.hostname, Number(url.port || 3306));
    url.host = proxy.host;
    t = await startTestServer('filesystem', { EPOCH_DSN: url.toString() });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await proxy?.close();
    await db?.drop();
  });

  it('answers 503 for connections killed mid-transaction, then recovers on its own', async () => {
    const killer = await createConnection({ uri: MYSQL_URL ?? '' });
    let killing = true;
    let kills = 0;
    const loop = (async () => {
      while (killing) {
        const [rows] = await killer.query(
          'SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()',
          [dbName],
        );
        for (const { id } of rows as { id: number }[]) {
          await killer.query(`KILL ${Number(id)}`).then(
            () => kills++,
            () => undefined, // gone already
          );
        }
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      }
    })();
    const outcomes: Outcome[] = [];
    try {
      await Promise.all(
        [0, 1, 2, 3].map(async (client) => {
          for (let i = 0; i < 10; i++)
            outcomes.push(await pushImage(t.url, 'killed', `c${client}-${i}`));
        }),
      );
    } finally {
      killing = false;
      await loop;
      await killer.end();
    }
    expect(kills).toBeGreaterThan(0);
    for (const o of outcomes) if (o.status !== 201) expectUnavailable(o, 'push under KILL');
    expect(outcomes.filter((o) => o.status === 503).length).toBeGreaterThan(0);

    // No restart: the pool replaces the killed connections and every push goes through.
    for (let client = 0; client < 4; client++)
      for (let i = 0; i < 10; i++) await pushUntilStored(t.url, 'killed', `c${client}-${i}`);
    await expectConsistent(t, ['killed']);
  }, 180_000);

  it('answers 503 fast while the database is unreachable, then recovers on its own', async () => {
    await pushUntilStored(t.url, 'cut', 'before');
    await proxy.stop();
    try {
      const push = await pushImage(t.url, 'cut', 'during');
      expectUnavailable(push, 'push while the database is down');
      // Reads that storage can answer (the catalog file, manifests) may still succeed.
      for (const path of ['/v2/_catalog', '/v2/cut/tags/list', '/api/repositories']) {
        const o = await call(t.url, path);
        if (o.status !== 200) expectUnavailable(o, path);
      }
      expectUnavailable(await call(t.url, '/api/repositories'), '/api/repositories');
    } finally {
      await proxy.start();
    }
    // The first requests after the cut may still meet pooled connections that died with it.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const o = await pushImage(t.url, 'cut', 'after');
      if (o.status === 201) break;
      expectUnavailable(o, 'push after the database came back');
      if (Date.now() > deadline) throw new Error('the server did not recover');
      await new Promise((r) => setTimeout(r, 200));
    }
    await pushUntilStored(t.url, 'cut', 'during');
    await expectConsistent(t, ['cut', 'killed']);
  }, 180_000);
});
