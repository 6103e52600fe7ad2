import { once } from 'node:events';
import { request } from 'node:http';
import { connect } from 'node:net';
import { RawClient } from '@epoch/test-support/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

/** Sends raw bytes and collects what comes back until the server closes the connection. */
async function raw(
  url: string,
  data: string | Buffer,
  waitMs = 5000,
): Promise<{ text: string; closedAfterMs: number }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  const started = Date.now();
  socket.write(data);
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString();
  });
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, waitMs))]);
  const closedAfterMs = socket.destroyed ? Date.now() - started : Number.POSITIVE_INFINITY;
  socket.destroy();
  return { text, closedAfterMs };
}

describe('limits on what a client controls', () => {
  let t: TestServer;
  let api: RawClient;
  beforeAll(async () => {
    t = await startTestServer('filesystem', {
      EPOCH_IDLE_TIMEOUT: '1s',
      EPOCH_MAX_CONCURRENT_UPLOADS: '2',
    });
    api = new RawClient(t.url);
  });
  afterAll(async () => {
    await t.stop();
  });

  it('answers oversized and malformed requests with OCI JSON errors', async () => {
    const big = await raw(
      t.url,
      `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(big.text).toMatch(/^HTTP\/1\.1 431 /);
    expect(big.text).toContain('Content-Type: application/json');
    expect(JSON.parse(big.text.slice(big.text.indexOf('\r\n\r\n') + 4))).toMatchObject({
      errors: [{ code: 'SIZE_INVALID' }],
    });
    const bad = await raw(t.url, 'NONSENSE\r\n\r\n');
    expect(bad.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(bad.text).toContain('"errors"');
  });

  it('closes an upload that stops sending (slow loris) but not one that keeps moving', async () => {
    const start = await api.fetch('/v2/slow/app/blobs/uploads/', { method: 'POST' });
    const location = start.headers.get('location') ?? '';
    const stalled = await raw(
      t.url,
      `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789`,
      6000,
    );
    expect(stalled.closedAfterMs).toBeLessThan(4000);

    // 4 s of trickling, one byte every 300 ms: longer than the idle timeout, never idle.
    const trickle = await api.fetch('/v2/slow/app/blobs/uploads/', { method: 'POST' });
    const path = trickle.headers.get('location') ?? '';
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${t.url}${path}`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '14' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      let sent = 0;
      const timer = setInterval(() => {
        req.write('x');
        if (++sent === 14) {
          clearInterval(timer);
          req.end();
        }
      }, 300);
    });
    expect(status).toBe(202);
  }, 20_000);

  it('refuses a third concurrent upload from one client with 429 and Retry-After', async () => {
    const open: ReturnType<typeof request>[] = [];
    const answers: Promise<number>[] = [];
    for (let i = 0; i < 2; i++) {
      const loc =
        (await api.fetch('/v2/many/app/blobs/uploads/', { method: 'POST' })).headers.get(
          'location',
        ) ?? '';
      const req = request(`${t.url}${loc}`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '4' },
      });
      answers.push(
        new Promise((resolve) =>
          req.on('response', (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }),
        ),
      );
      req.write('ab');
      open.push(req);
    }
    await new Promise((r) => setTimeout(r, 200));
    const third = await api.fetch('/v2/many/app/blobs/uploads/', { method: 'POST', body: 'x' });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('2');
    expect(await third.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS' }] });
    for (const req of open) req.end('cd');
    expect(await Promise.all(answers)).toEqual([202, 202]);
    // With the others finished, uploads are accepted again.
    expect((await api.fetch('/v2/many/app/blobs/uploads/', { method: 'POST' })).status).toBe(202);
  });
});

describe('open upload sessions per client', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('filesystem', { EPOCH_MAX_UPLOAD_SESSIONS: '3' });
  });
  afterAll(async () => {
    await t.stop();
  });

  it('refuses a fourth open session with 429, and frees a place on finish or cancel', async () => {
    const api = new RawClient(t.url);
    const start = () => api.fetch('/v2/sessions/app/blobs/uploads/', { method: 'POST' });
    const open: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await start();
      expect(res.status).toBe(202);
      open.push(res.headers.get('location') ?? '');
    }
    const fourth = await start();
    expect(fourth.status).toBe(429);
    expect(fourth.headers.get('retry-after')).toBe('2');
    expect(await fourth.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS' }] });

    expect((await api.fetch(open[0] ?? '', { method: 'DELETE' })).status).toBe(204);
    const again = await start();
    expect(again.status).toBe(202);
    expect((await start()).status).toBe(429);

    const content = 'finish me';
    const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(content).digest('hex')}`;
    const finished = await api.fetch(`${open[1]}?digest=${digest}`, {
      method: 'PUT',
      body: content,
    });
    expect(finished.status).toBe(201);
    expect((await start()).status).toBe(202);

    // Another caller (a token) has its own count.
    const other = new RawClient(t.url, { Authorization: `Bearer ${await t.token(['push'])}` });
    expect((await other.fetch('/v2/sessions/app/blobs/uploads/', { method: 'POST' })).status).toBe(
      202,
    );
  });
});
