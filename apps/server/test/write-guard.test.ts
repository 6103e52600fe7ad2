import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { Env } from '../src/http/env.js';
import { toHttpError } from '../src/http/errors.js';
import { loopbackWritesOnly } from '../src/http/write-guard.js';

function app(anonymousPush: boolean) {
  const a = new Hono<Env>();
  a.use(loopbackWritesOnly(anonymousPush));
  a.all('*', (c) => c.text('ok'));
  a.onError((err, c) => {
    const mapped = toHttpError(err);
    return c.json(mapped.body, mapped.status as 403);
  });
  return a;
}

/** Node's request bindings as @hono/node-server passes them, with a chosen peer address. */
function from(remoteAddress: string) {
  return { incoming: { socket: { remoteAddress } }, outgoing: {} } as unknown as Env['Bindings'];
}

// The peer address cannot be anything but loopback in a test on this machine, so the guard is
// exercised with the bindings a remote client would produce.
describe('writes without credentials', () => {
  it('are accepted from loopback clients, IPv4 and IPv6', async () => {
    for (const addr of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.8.9.10']) {
      const res = await app(false).request('/v2/x/blobs/uploads/', { method: 'POST' }, from(addr));
      expect(res.status, addr).toBe(200);
    }
  });

  it('are refused from other hosts with 403 DENIED, while reads stay open', async () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const res = await app(false).request('/v2/x/manifests/v1', { method }, from('10.1.2.3'));
      expect(res.status, method).toBe(403);
      expect(((await res.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');
    }
    const read = await app(false).request(
      '/v2/x/manifests/v1',
      { method: 'GET' },
      from('10.1.2.3'),
    );
    expect(read.status).toBe(200);
    const spoof = await app(false).request('/v2/x', { method: 'PUT' }, from('127.0.0.1.evil'));
    expect(spoof.status).toBe(403);
  });

  it('are accepted from anywhere with EPOCH_ANONYMOUS_PUSH', async () => {
    const res = await app(true).request(
      '/v2/x/manifests/v1',
      { method: 'PUT' },
      from('203.0.113.9'),
    );
    expect(res.status).toBe(200);
  });
});
