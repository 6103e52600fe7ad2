import { type ChildProcess, execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { digestOf, MediaTypes } from '@epoch/oci';
import { createS3ObjectStore } from '@epoch/registry';
import { RGW, startRgwBucket } from '@epoch/test-support/rgw';
import {
  type S3TestServer,
  s3ConfigFor,
  s3EnvFor,
  startS3Server,
} from '@epoch/test-support/s3-server';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, serveProcess } from '../support/epoch-server.js';

const exec = promisify(execFile);

interface Acked {
  repo: string;
  tag: string;
  digest: string;
  blobs: string[];
}

/**
 * `kill -9` of the server at random moments while five clients push (monolithic and chunked) and
 * pull, then a restart, three times over. Afterwards: every push that got its 201 is intact
 * and listed, nothing half-written is visible, abandoned uploads are swept, and the index
 * agrees with storage (a reindex after the first finds nothing left to fix). On the filesystem,
 * the in-process S3 server (fauxqs, in a child process of its own, which outlives every kill of
 * the registry) and Ceph RGW when it is configured (CI always).
 */
const storages: ('filesystem' | 's3' | 'rgw')[] = [
  'filesystem',
  's3',
  ...(RGW ? (['rgw'] as const) : []),
];

describe.each(storages)('crashes under load on %s', (storage) => {
  let dir: string;
  let child: ChildProcess | undefined;
  let bucket: S3TestServer | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await bucket?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged push intact across kill -9 and restarts', async () => {
    dir = await mkdtemp(join(tmpdir(), 'epoch-crash-'));
    await writeFile(join(dir, 's3.env'), '');
    bucket =
      storage === 'rgw'
        ? await startRgwBucket()
        : storage === 's3'
          ? await startS3Server({ childProcess: true })
          : undefined;
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const base = `http://127.0.0.1:${port}`;
    const env = {
      EPOCH_ADDR: `127.0.0.1:${port}`,
      EPOCH_DATA_DIR: dir,
      EPOCH_S3_ENV_FILE: join(dir, 's3.env'),
      // Uploads a crash interrupted count as abandoned quickly, so the restart sweeps them.
      EPOCH_UPLOAD_IDLE_TIMEOUT: '1s',
      ...(bucket ? s3EnvFor(bucket, 'epoch/') : {}),
    };
    const start = async () => {
      child = (await serveProcess(env, { keepAddr: true })).child;
    };
    await start();

    const acked: Acked[] = [];
    let stop = false;
    const timeout = () => AbortSignal.timeout(10_000);
    const pushBlob = async (repo: string, bytes: Buffer, chunked: boolean): Promise<string> => {
      const digest = digestOf(bytes);
      if (!chunked) {
        const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
          method: 'POST',
          body: bytes,
          signal: timeout(),
        });
        if (res.status !== 201) throw new Error(`monolithic ${res.status}`);
        return digest;
      }
      let location = (
        await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', signal: timeout() })
      ).headers.get('location');
      for (let offset = 0; offset < bytes.length; offset += 256 * 1024) {
        const part = bytes.subarray(offset, offset + 256 * 1024);
        const res = await fetch(`${base}${location}`, {
          method: 'PATCH',
          body: part,
          headers: {
            'Content-Range': `${offset}-${offset + part.length - 1}`,
            'Content-Type': 'application/octet-stream',
          },
          signal: timeout(),
        });
        if (res.status !== 202) throw new Error(`patch ${res.status}`);
        location = res.headers.get('location');
      }
      const sep = location?.includes('?') ? '&' : '?';
      const res = await fetch(`${base}${location}${sep}digest=${digest}`, {
        method: 'PUT',
        signal: timeout(),
      });
      if (res.status !== 201) throw new Error(`finish ${res.status}`);
      return digest;
    };
    const client = async (n: number) => {
      for (let i = 0; !stop; i++) {
        const repo = `crash/c${n}`;
        const tag = `t${i}`;
        try {
          const layer = randomBytes(256 * 1024 + Math.floor(Math.random() * 1024 * 1024));
          const blobs = [
            await pushBlob(repo, layer, (i + n) % 2 === 0),
            await pushBlob(repo, Buffer.from(`{"i":${i}}`), false),
          ];
          const manifest = JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaTypes.ociManifest,
            config: {
              mediaType: MediaTypes.ociConfig,
              digest: blobs[1],
              size: Buffer.byteLength(`{"i":${i}}`),
            },
            layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: blobs[0], size: layer.length }],
          });
          const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
            method: 'PUT',
            body: manifest,
            headers: { 'Content-Type': MediaTypes.ociManifest },
            signal: timeout(),
          });
          if (res.status === 201)
            acked.push({ repo, tag, digest: digestOf(manifest), blobs: blobs as string[] });
          // Pull back something acknowledged earlier, checking its bytes.
          const old = acked[Math.floor(Math.random() * acked.length)];
          if (old) {
            const blob = await fetch(`${base}/v2/${old.repo}/blobs/${old.blobs[0]}`, {
              signal: timeout(),
            });
            if (blob.status === 200) {
              const got = `sha256:${createHash('sha256')
                .update(Buffer.from(await blob.arrayBuffer()))
                .digest('hex')}`;
              expect(got).toBe(old.blobs[0]);
            }
          }
        } catch (err) {
          // Refused or cut by a crash: only what got its 201 counts.
          if ((err as Error).name === 'AssertionError') throw err;
          if (process.env.EPOCH_CRASH_DEBUG)
            console.log('client error', (err as Error).message, String((err as Error).cause));
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const clients = [0, 1, 2, 3, 4].map(client);
    // A push costs more round trips to S3 (each ~10–50 ms on RGW here) than to the disk: longer
    // runs between crashes there, so that as many pushes are acknowledged and then checked. On a
    // loaded machine a run also lasts until it has acknowledged at least two pushes (up to a
    // minute), so that every crash lands among pushes that are then checked.
    const runMs = storage === 'filesystem' ? 1500 : 4000;
    for (let crash = 0; crash < 3; crash++) {
      const before = acked.length;
      await new Promise((r) => setTimeout(r, runMs + Math.random() * runMs));
      const deadline = Date.now() + 60_000;
      while (acked.length < before + 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      child?.kill('SIGKILL');
      if (child) await once(child, 'exit');
      await new Promise((r) => setTimeout(r, 300));
      await start();
    }
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(clients);
    expect(acked.length).toBeGreaterThan(5);
    console.log(`crash test: ${acked.length} pushes acknowledged across 3 kill -9 restarts`);

    // Let interrupted uploads age past the idle timeout, then restart: the start-up sweep runs.
    child?.kill('SIGKILL');
    if (child) await once(child, 'exit');
    await new Promise((r) => setTimeout(r, 1500));
    await start();

    for (const a of acked) {
      const res = await fetch(`${base}/v2/${a.repo}/manifests/${a.tag}`, {
        headers: { Accept: MediaTypes.ociManifest },
      });
      expect(res.status, `${a.repo}:${a.tag}`).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(a.digest);
      for (const d of a.blobs) {
        const blob = Buffer.from(
          await (await fetch(`${base}/v2/${a.repo}/blobs/${d}`)).arrayBuffer(),
        );
        expect(`sha256:${createHash('sha256').update(blob).digest('hex')}`).toBe(d);
      }
      const tags = (await (await fetch(`${base}/v2/${a.repo}/tags/list`)).json()) as {
        tags: string[];
      };
      expect(tags.tags).toContain(a.tag);
    }
    if (bucket) {
      // No upload object and no multipart upload survives the sweep, anywhere in the bucket.
      const store = await createS3ObjectStore(s3ConfigFor(bucket, 'epoch/'));
      try {
        expect((await store.list('_uploads/')).objects.map((o) => o.key)).toEqual([]);
      } finally {
        await store.close();
      }
      expect(await bucket.uploads('')).toEqual([]);
    } else {
      // No upload object survives the sweep. (A crash between creating an upload's directory and
      // its first file can leave the empty directory: it holds no object and is not listed.)
      const leftover = await readdir(join(dir, 'objects', '_uploads'), {
        recursive: true,
        withFileTypes: true,
      }).catch(() => []);
      expect(leftover.filter((e) => e.isFile()).map((e) => e.name)).toEqual([]);
      expect(await readdir(join(dir, 'objects', '.tmp')).catch(() => [])).toEqual([]);
    }

    child?.kill('SIGTERM');
    if (child) await once(child, 'exit');
    const reindex = async () =>
      JSON.parse(
        (
          await exec(process.execPath, [cli, 'reindex', '--json'], {
            env: { ...process.env, ...env },
          })
        ).stdout,
      ) as {
        errors: unknown[];
        tags: { added: number; updated: number; removed: number };
        manifests: { added: number; updated: number; removed: number };
      };
    const first = await reindex();
    expect(first.errors).toEqual([]);
    const second = await reindex();
    expect(second.errors).toEqual([]);
    expect(second.tags).toMatchObject({ added: 0, updated: 0, removed: 0 });
    expect(second.manifests).toMatchObject({ added: 0, updated: 0, removed: 0 });
  }, 360_000);
});
