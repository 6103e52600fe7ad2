import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, MediaTypes } from '@epoch/oci';
import { openStore, type TokenScope } from '@epoch/store';
import { freshMysqlDatabase, MYSQL_URL } from '@epoch/test-support/mysql';
import { freePort, hasNginx, type RunningNginx, startNginx } from '@epoch/test-support/nginx';
import { RGW } from '@epoch/test-support/rgw';
import type { S3TestServer } from '@epoch/test-support/s3-server';
import { startBackendS3 } from '@epoch/test-support/test-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveProcess } from '../support/epoch-server.js';

/**
 * Three `epoch serve` processes on one MariaDB and one bucket (RGW when configured, else the
 * in-process S3 server) behind the shipped nginx vhost. Clients push, pull, list and delete
 * through nginx while one replica is killed -9 and restarted, GC runs on another and a token is
 * revoked on a third. A client may see a 503 with Retry-After (it retries) or a connection cut by
 * the kill (it retries); never a 500, another error, or a request that hangs.
 */

/** README › Authentication: a revoked token is refused by every process within 5 s. */
const REVOCATION_DELAY_MS = 5_000;
/** A request that takes longer than this under this test's small load counts as a hang. */
const HANG_MS = 30_000;
const backend = RGW ? 'rgw' : 's3';

interface Replica {
  addr: string;
  url: string;
  child: ChildProcess;
  dataDir: string;
}

/** What every client saw, for the final assertions. */
const seen = { retried503: 0, cut: 0, bad: [] as string[] };

/**
 * One request, retried while the answer is a 503 with Retry-After or the connection is cut (a
 * replica killed mid-request). Anything else is returned as is; a 503 without Retry-After, a
 * 500 or a request that takes longer than HANG_MS is recorded as bad.
 */
async function call(url: string, init: RequestInit = {}, what = ''): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const started = Date.now();
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: AbortSignal.timeout(HANG_MS) });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') {
        seen.bad.push(`${what} ${init.method ?? 'GET'} ${url}: no answer in ${HANG_MS} ms`);
        throw err;
      }
      // The replica serving it was killed: the connection is reset, nginx tells nothing.
      seen.cut++;
      if (attempt > 20) throw err;
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    if (res.status === 503) {
      await res.arrayBuffer();
      const after = res.headers.get('retry-after');
      if (!after || !/^\d+$/.test(after)) {
        seen.bad.push(`${what} ${init.method ?? 'GET'} ${url}: 503 without Retry-After`);
      }
      seen.retried503++;
      if (attempt > 20) throw new Error(`${url}: still 503 after ${attempt} tries`);
      // Retry-After is 5 s; a test client waits less (the replica comes back sooner).
      await new Promise((r) => setTimeout(r, 300));
      continue;
    }
    if (res.status >= 500) {
      seen.bad.push(`${what} ${init.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`);
    }
    if (Date.now() - started > HANG_MS) seen.bad.push(`${what} ${url}: slow`);
    return res;
  }
}

async function expectStatus(res: Response, ok: number[], what: string): Promise<Response> {
  if (!ok.includes(res.status)) {
    const text = await res.text();
    seen.bad.push(`${what}: ${res.status} ${text}`);
    throw new Error(`${what}: ${res.status} ${text}`);
  }
  return res;
}

/** Deterministic pseudo-random bytes (incompressible enough, reproducible for the check). */
function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = Number.parseInt(digestOf(seed).slice(7, 15), 16) || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, i);
  }
  return out;
}

interface Pushed {
  repo: string;
  tag: string;
  manifest: string;
  digest: string;
  layers: { digest: string; seed: string; size: number }[];
}

/** A client through one base URL (nginx, or one replica) with a bearer token. */
class Client {
  constructor(
    readonly base: string,
    readonly token: string,
  ) {}

  req(path: string, init: RequestInit = {}, what = path): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('Authorization', `Bearer ${this.token}`);
    return call(`${this.base}${path}`, { redirect: 'manual', ...init, headers }, what);
  }

  async blob(repo: string, content: Buffer): Promise<string> {
    const digest = digestOf(content);
    const res = await this.req(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: content,
    });
    await expectStatus(res, [201], `blob push ${repo}`);
    await res.arrayBuffer();
    return digest;
  }

  async push(repo: string, tag: string, seed: string): Promise<Pushed> {
    const layers = [];
    for (const [i, size] of [256 * 1024, 64 * 1024].entries()) {
      const layerSeed = `${seed}/${i}`;
      layers.push({ digest: await this.blob(repo, bytes(layerSeed, size)), seed: layerSeed, size });
    }
    const config = await this.blob(repo, Buffer.from(`{"seed":"${seed}"}`));
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: {
        mediaType: MediaTypes.ociConfig,
        digest: config,
        size: Buffer.byteLength(`{"seed":"${seed}"}`),
      },
      layers: layers.map((l) => ({
        mediaType: MediaTypes.ociLayerGzip,
        digest: l.digest,
        size: l.size,
      })),
    });
    const res = await this.req(`/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'Content-Type': MediaTypes.ociManifest },
      body: manifest,
    });
    await expectStatus(res, [201], `manifest push ${repo}:${tag}`);
    await res.arrayBuffer();
    return { repo, tag, manifest, digest: digestOf(manifest), layers };
  }

  /** Pulls a pushed image and compares every byte. */
  async verify(p: Pushed): Promise<void> {
    const res = await this.req(`/v2/${p.repo}/manifests/${p.tag}`, {
      headers: { Accept: MediaTypes.ociManifest },
    });
    await expectStatus(res, [200], `pull ${p.repo}:${p.tag}`);
    expect(await res.text(), `${p.repo}:${p.tag}`).toBe(p.manifest);
    for (const layer of p.layers) {
      // A pull cut mid-body by a kill is retried whole.
      for (let attempt = 0; ; attempt++) {
        const blob = await this.req(`/v2/${p.repo}/blobs/${layer.digest}`);
        await expectStatus(blob, [200], `blob pull ${p.repo}@${layer.digest}`);
        const body = await blob.arrayBuffer().catch(() => undefined);
        if (!body && attempt < 5) {
          seen.cut++;
          continue;
        }
        expect(body && Buffer.from(body).equals(bytes(layer.seed, layer.size))).toBe(true);
        break;
      }
    }
  }

  async tags(repo: string): Promise<string[]> {
    const res = await this.req(`/v2/${repo}/tags/list`);
    if (res.status === 404) return [];
    await expectStatus(res, [200], `tags ${repo}`);
    return ((await res.json()) as { tags: string[] | null }).tags ?? [];
  }

  async apiTags(repo: string): Promise<string[]> {
    const res = await this.req(`/api/repositories/${encodeURIComponent(repo)}/tags`);
    if (res.status === 404) return [];
    await expectStatus(res, [200], `api tags ${repo}`);
    return ((await res.json()) as { name: string }[]).map((t) => t.name);
  }

  /** Deletes by tag or by digest; a retry after a cut may find it gone already (404). */
  async remove(p: Pushed, reference: string): Promise<void> {
    const res = await this.req(`/v2/${p.repo}/manifests/${reference}`, { method: 'DELETE' });
    await expectStatus(res, [202, 404], `delete ${p.repo}/${reference}`);
    await res.arrayBuffer();
  }
}

// scripts/test.mjs reads one reason per skipped test: name the first one missing.
const needs = MYSQL_URL ? 'needs nginx' : 'needs EPOCH_TEST_MYSQL_URL';

describe.runIf(hasNginx && MYSQL_URL)(
  `three replicas behind nginx on ${backend} + MariaDB [${needs}]`,
  () => {
    let s3: S3TestServer;
    let db: { dsn: string; drop(): Promise<void> };
    let nginx: RunningNginx;
    const replicas: Replica[] = [];
    let env: Record<string, string>;
    let admin: string;
    let pusher: string;
    let victim: { id: string; plaintext: string };

    const start = async (addr: string, dataDir: string): Promise<Replica> => {
      const { child, url } = await serveProcess(
        {
          ...env,
          EPOCH_ADDR: addr,
          EPOCH_DATA_DIR: dataDir,
          EPOCH_S3_ENV_FILE: join(dataDir, 's3.env'),
        },
        { keepAddr: true },
      );
      return { addr, url, child, dataDir };
    };

    beforeAll(async () => {
      s3 = await startBackendS3(backend);
      db = await freshMysqlDatabase();
      env = {
        EPOCH_DSN: db.dsn,
        EPOCH_S3_ENDPOINT: s3.endpoint,
        EPOCH_S3_ACCESS_KEY: s3.accessKey,
        EPOCH_S3_SECRET_KEY: s3.secretKey,
        EPOCH_S3_BUCKET: s3.bucket,
        // GC may collect what was deleted during the run; nothing younger than this.
        EPOCH_GC_DELAY: '20s',
        // Reconciles run while pushes and deletes land (the race they must not lose).
        EPOCH_RECONCILE_INTERVAL: '3s',
      };
      // Tokens go straight into the shared index, before any replica starts.
      const index = await openStore({ dsn: db.dsn });
      try {
        const make = async (name: string, scopes: TokenScope[]) =>
          index.tokens.create({ name, createdBy: 'test', scopes, repoPattern: '*' });
        admin = (await make('admin', ['admin'])).plaintext;
        pusher = (await make('pusher', ['push', 'pull', 'delete'])).plaintext;
        const v = await make('victim', ['pull']);
        victim = { id: String(v.token.id), plaintext: v.plaintext };
      } finally {
        await index.close();
      }
      for (let i = 0; i < 3; i++) {
        const dataDir = await mkdtemp(join(tmpdir(), `epoch-replica-${i}-`));
        await writeFile(join(dataDir, 's3.env'), '');
        replicas.push(await start(`127.0.0.1:${await freePort()}`, dataDir));
      }
      nginx = await startNginx(
        replicas.map((r) => r.addr),
        { workers: 1 },
      );
    }, 120_000);

    afterAll(async () => {
      for (const r of replicas) {
        if (r.child.exitCode === null && r.child.signalCode === null) {
          r.child.kill('SIGTERM');
          await once(r.child, 'exit');
        }
        await rm(r.dataDir, { recursive: true, force: true });
      }
      await nginx?.stop();
      await s3?.close().catch(() => undefined);
      await db?.drop();
    }, 60_000);

    it('keeps every acknowledged push while a replica dies, GC runs and a token is revoked', async () => {
      const [a, b, c] = replicas as [Replica, Replica, Replica];
      const lb = new Client(nginx.url, pusher);
      const acknowledged = new Map<string, Pushed>();
      const deleted: Pushed[] = [];
      const key = (p: Pushed) => `${p.repo}:${p.tag}`;
      let stop = false;

      // Clients: push, pull back, list, and delete every third image, all through nginx.
      const worker = async (w: number) => {
        for (let i = 0; !stop || i < 6; i++) {
          const repo = `team/w${w}-r${i % 3}`;
          const pushed = await lb.push(repo, `t${i}`, `w${w}-i${i}-${Math.random()}`);
          acknowledged.set(key(pushed), pushed);
          await lb.verify(pushed);
          expect(await lb.tags(repo)).toContain(pushed.tag);
          if (i % 3 === 2) {
            await lb.remove(pushed, i % 2 === 0 ? pushed.tag : pushed.digest);
            acknowledged.delete(key(pushed));
            deleted.push(pushed);
          }
        }
      };

      // An upload begun on replica A (POST + PATCH straight to it) finishes on B after A is
      // killed -9, then A comes back on the same address.
      const crossReplica = async () => {
        const onA = new Client(a.url, pusher);
        const onB = new Client(b.url, pusher);
        const first = bytes('cross/1', 512 * 1024);
        // Big enough that S3 parts (5 MiB and up) are in flight or done when A dies mid-PATCH.
        const second = bytes('cross/2', 12 * 1024 * 1024);
        const whole = Buffer.concat([first, second]);
        const post = await expectStatus(
          await onA.req('/v2/team/cross/blobs/uploads/', { method: 'POST' }),
          [202],
          'start upload on A',
        );
        const location = post.headers.get('location') ?? '';
        const path = location.startsWith('http') ? new URL(location).pathname : location;
        const patch = await expectStatus(
          await onA.req(path.split('?')[0] + (path.includes('?') ? `?${path.split('?')[1]}` : ''), {
            method: 'PATCH',
            headers: {
              'Content-Type': 'application/octet-stream',
              'Content-Range': `0-${first.length - 1}`,
            },
            body: first,
          }),
          [202],
          'first chunk on A',
        );
        const next = patch.headers.get('location') ?? path;
        const nextPath = next.startsWith('http')
          ? new URL(next).pathname + new URL(next).search
          : next;

        // Let the clients get going, so the kill cuts their requests too.
        await new Promise((r) => setTimeout(r, 3000));
        // A second chunk is streaming into A when A is killed: the session stays usable on B.
        let feed: ReadableStreamDefaultController<Uint8Array> | undefined;
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            feed = controller;
          },
        });
        const cut = fetch(`${a.url}${nextPath}`, {
          method: 'PATCH',
          headers: {
            Authorization: `Bearer ${pusher}`,
            'Content-Type': 'application/octet-stream',
          },
          body: stream,
          duplex: 'half',
        } as RequestInit).catch((err: Error) => err);
        feed?.enqueue(second.subarray(0, 7 * 1024 * 1024));
        await new Promise((r) => setTimeout(r, 1500));
        a.child.kill('SIGKILL');
        await once(a.child, 'exit');
        expect(await cut).toBeInstanceOf(Error);
        const status = await expectStatus(await onB.req(nextPath), [204], 'status on B');
        expect(status.headers.get('range')).toBe(`0-${first.length - 1}`);
        const patched = await expectStatus(
          await onB.req(nextPath, {
            method: 'PATCH',
            headers: {
              'Content-Type': 'application/octet-stream',
              'Content-Range': `${first.length}-${whole.length - 1}`,
            },
            body: second,
          }),
          [202],
          'second chunk on B',
        );
        const last = patched.headers.get('location') ?? nextPath;
        const lastPath = last.startsWith('http')
          ? new URL(last).pathname + new URL(last).search
          : last;
        const digest = digestOf(whole);
        const sep = lastPath.includes('?') ? '&' : '?';
        await expectStatus(
          await onB.req(`${lastPath}${sep}digest=${digest}`, { method: 'PUT' }),
          [201],
          'finish on B',
        );
        await new Promise((r) => setTimeout(r, 1500));
        replicas[0] = await start(a.addr, a.dataDir);
        restarted();
        const got = await lb.req(`/v2/team/cross/blobs/${digest}`);
        await expectStatus(got, [200], 'pull the cross-replica blob');
        expect(Buffer.from(await got.arrayBuffer()).equals(whole)).toBe(true);
      };

      let restarted: () => void = () => {};
      const aIsBack = new Promise<void>((resolve) => {
        restarted = resolve;
      });

      // GC on replica B, several runs while the clients work (409 when one already runs).
      const gcOnB = async () => {
        const onB = new Client(b.url, admin);
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => setTimeout(r, 4000));
          const res = await onB.req('/api/gc', { method: 'POST' });
          await expectStatus(res, [200, 409], 'gc on B');
          await res.arrayBuffer();
        }
      };

      // A token used on every replica (A once it is back), revoked on C: refused everywhere
      // within the documented delay.
      const revokeOnC = async () => {
        await aIsBack;
        const urls = [...replicas.map((r) => r.url), nginx.url];
        for (const url of urls) {
          const ok = await new Client(url, victim.plaintext).req('/v2/team/cross/tags/list');
          expect([200, 404], url).toContain(ok.status);
          await ok.arrayBuffer();
        }
        const revoked = await new Client(c.url, admin).req(`/api/tokens/${victim.id}`, {
          method: 'DELETE',
        });
        await expectStatus(revoked, [200, 204], 'revoke on C');
        await revoked.arrayBuffer();
        const at = Date.now();
        const refusedAfter: Record<string, number> = {};
        await Promise.all(
          urls.map(async (url) => {
            for (;;) {
              const res = await new Client(url, victim.plaintext).req('/v2/team/cross/tags/list');
              await res.arrayBuffer();
              if (res.status === 401) {
                refusedAfter[url] = Date.now() - at;
                return;
              }
              if (Date.now() - at > REVOCATION_DELAY_MS * 2) {
                refusedAfter[url] = Date.now() - at;
                return;
              }
              await new Promise((r) => setTimeout(r, 100));
            }
          }),
        );
        console.log(`revocation seen after (ms): ${JSON.stringify(refusedAfter)}`);
        for (const [url, ms] of Object.entries(refusedAfter)) {
          expect(ms, `revocation seen at ${url} after ${ms} ms`).toBeLessThanOrEqual(
            REVOCATION_DELAY_MS,
          );
        }
      };

      const workers = Array.from({ length: 3 }, (_, w) => worker(w));
      await Promise.all([crossReplica(), gcOnB(), revokeOnC()]);
      stop = true;
      await Promise.all(workers);

      // After the storm: a restarted replica's reconcile has run at least once more.
      await new Promise((r) => setTimeout(r, 4000));
      expect(seen.bad).toEqual([]);
      const everywhere = [nginx.url, ...replicas.map((r) => r.url)].map(
        (u) => new Client(u, pusher),
      );
      for (const p of acknowledged.values()) {
        await lb.verify(p);
        for (const client of everywhere) expect(await client.tags(p.repo)).toContain(p.tag);
        expect(await lb.apiTags(p.repo)).toContain(p.tag);
      }
      for (const p of deleted) {
        for (const client of everywhere) {
          expect(await client.tags(p.repo), `${key(p)} deleted`).not.toContain(p.tag);
        }
        expect(await lb.apiTags(p.repo), `${key(p)} deleted`).not.toContain(p.tag);
        const gone = await lb.req(`/v2/${p.repo}/manifests/${p.tag}`);
        expect(gone.status, `${key(p)} deleted`).toBe(404);
      }
      expect(seen.bad).toEqual([]);
      expect(acknowledged.size).toBeGreaterThan(0);
      expect(deleted.length).toBeGreaterThan(0);
      console.log(
        `replicas: ${acknowledged.size} kept, ${deleted.length} deleted, ` +
          `${seen.retried503} 503s retried, ${seen.cut} cut connections retried`,
      );
    }, 300_000);
  },
);
