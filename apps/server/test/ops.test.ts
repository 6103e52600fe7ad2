import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeTemplate } from '../src/routes/table.js';
import { writeImageLayout } from './support/oci-layout.js';
import { startTestServer, type TestServer } from './support/server.js';

const exec = promisify(execFile);

/** The value of one sample line of the Prometheus text, or undefined. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
}

describe('metrics and health', () => {
  let t: TestServer;
  let work: string;
  beforeAll(async () => {
    t = await startTestServer('filesystem');
    work = await mkdtemp(join(tmpdir(), 'epoch-ops-'));
  });
  afterAll(async () => {
    await t.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('answers /healthz and /readyz when the index and storage are reachable', async () => {
    expect(await (await fetch(`${t.url}/healthz`)).text()).toBe('ok');
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { index: 'ok', storage: 'ok' } });
  });

  it('counts requests, bytes, uploads, store and index operations after a skopeo push', async () => {
    await writeImageLayout(join(work, 'src'), 'v1', 2 * 1024 * 1024);
    const host = new URL(t.url).host;
    await exec('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      `oci:${join(work, 'src')}:v1`,
      `docker://${host}/ops/app:v1`,
    ]);
    const res = await fetch(`${t.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(
      sample(text, 'epoch_http_requests_total', {
        method: 'PUT',
        route: '/v2/<name>/manifests/<reference>',
        status: '201',
      }),
    ).toBe(1);
    // The 2 MiB layer came in through an upload route.
    const uploaded =
      (sample(text, 'epoch_http_received_bytes_total', {
        route: '/v2/<name>/blobs/uploads/<uuid>',
      }) ?? 0) +
      (sample(text, 'epoch_http_received_bytes_total', { route: '/v2/<name>/blobs/uploads/' }) ??
        0);
    expect(uploaded).toBeGreaterThan(2 * 1024 * 1024);
    expect(sample(text, 'epoch_uploads_in_progress')).toBe(0);
    expect(
      sample(text, 'epoch_http_request_duration_seconds_count', {
        route: '/v2/<name>/blobs/<digest>',
      }),
    ).toBeGreaterThan(0);
    expect(
      sample(text, 'epoch_store_operation_duration_seconds_count', { operation: 'put' }),
    ).toBeGreaterThan(0);
    expect(sample(text, 'epoch_index_query_duration_seconds_count')).toBeGreaterThan(0);
    expect(text).toContain('epoch_build_info{version="');
    expect(text).toContain('epoch_process_resident_memory_bytes');
    // No repository name ever becomes a label.
    expect(text).not.toContain('ops/app');
  });

  it('labels routes by template, never by raw path', () => {
    expect(routeTemplate('/v2/a/b/c/manifests/latest')).toBe('/v2/<name>/manifests/<reference>');
    expect(routeTemplate('/v2/a/blobs/uploads/')).toBe('/v2/<name>/blobs/uploads/');
    expect(routeTemplate('/api/repositories/a/b/tags/v1')).toBe(
      '/api/repositories/<name>/tags/<tag>',
    );
    // The metrics once had a list of their own, which lacked this route.
    expect(routeTemplate('/api/stats/pushes')).toBe('/api/stats/pushes');
    expect(routeTemplate('/dl/team/vm:v1')).toBe('/dl/<target>');
    expect(routeTemplate('/api/anything-at-all')).toBe('other');
    expect(routeTemplate('/random/path')).toBe('other');
  });

  it('says not ready, with the reason, when the index lacks a migration', async () => {
    const db = new BetterSqlite3(join(t.dataDir, 'epoch.db'));
    db.prepare("delete from kysely_migration where name = '0003-settings'").run();
    db.close();
    const res = await fetch(`${t.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'unavailable',
      checks: { index: 'migrations not applied: 0003-settings', storage: 'ok' },
    });
  });
});

describe('readiness on S3', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('s3');
  });
  afterAll(async () => {
    await t.stop();
  });

  it('says not ready when the object store is unreachable', async () => {
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    await t.stopStorage();
    const res = await fetch(`${t.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { checks: { index: string; storage: string } };
    expect(body.checks.index).toBe('ok');
    expect(body.checks.storage).not.toBe('ok');
  });
});
