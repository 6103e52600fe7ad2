import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { digestOf } from '@epoch/oci';
import { errorCode, RawClient } from '@epoch/test-support/oci-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

describe('server behaviour', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('answers an early rejection of a large body instead of leaving the client hanging', async () => {
    t = await startTestServer('filesystem');
    const body = randomBytes(80 * 1024 * 1024);
    const res = await fetch(`${t.url}/v2/Not_Valid/blobs/uploads/?digest=${digestOf(body)}`, {
      method: 'POST',
      body,
      signal: AbortSignal.timeout(20_000),
    }).catch((err: unknown) => err);
    // Either the 400 arrives, or the server closed the socket after answering: never a hang.
    if (res instanceof Response) {
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe('NAME_INVALID');
    } else {
      expect(String((res as Error).cause ?? res)).not.toMatch(/timeout|aborted due to timeout/i);
    }
    // And the server still serves.
    expect((await fetch(`${t.url}/v2/`)).status).toBe(200);
  });

  it('does not cut long requests: Node request timeout is off, header timeout on', async () => {
    t = await startTestServer('filesystem');
    const server = t.server.httpServer as import('node:http').Server;
    expect(server.requestTimeout).toBe(0);
    expect(server.headersTimeout).toBeGreaterThan(0);
  });

  it('lets an in-flight upload finish when it shuts down gracefully', async () => {
    t = await startTestServer('filesystem');
    const api = new RawClient(t.url);
    const start = await api.fetch('/v2/grace/app/blobs/uploads/', { method: 'POST' });
    const location = start.headers.get('location') ?? '';
    const content = randomBytes(4 * 1024 * 1024);
    const url = new URL(location, t.url);
    // A chunk that is still streaming when shutdown begins.
    const pending = new Promise<number>((resolve, reject) => {
      const req = request(
        url,
        { method: 'PATCH', headers: { 'Content-Length': String(content.length) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(content.subarray(0, 1024 * 1024));
      setTimeout(() => req.end(content.subarray(1024 * 1024)), 300);
    });
    await new Promise((r) => setTimeout(r, 100));
    const closing = t.server.close(10_000);
    expect(await pending).toBe(202);
    await closing;
    // Refuses new connections afterwards.
    await expect(fetch(`${t.url}/v2/`)).rejects.toThrow();
    const stopped = t;
    t = undefined;
    await stopped.stop().catch(() => undefined);
  });
});

describe('S3 redirect', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.stop();
  });

  it('redirects blob GETs to a presigned URL that serves the bytes, when enabled', async () => {
    t = await startTestServer('s3', { EPOCH_S3_REDIRECT: 'true' });
    const api = new RawClient(t.url);
    const digest = await api.pushBlob('redir/app', 'redirected bytes');
    const res = await api.fetch(`/v2/redir/app/blobs/${digest}`);
    expect(res.status).toBe(307);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    const location = res.headers.get('location') ?? '';
    expect(location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.*X-Amz-Signature=/);
    expect(await (await fetch(location)).text()).toBe('redirected bytes');
    // HEAD is answered directly, and blobs of other repositories still are not reachable.
    expect((await api.fetch(`/v2/redir/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
    expect((await api.fetch(`/v2/redir/other/blobs/${digest}`)).status).toBe(404);
  });
});
