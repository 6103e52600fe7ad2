import type { MiddlewareHandler } from 'hono';
import type { Env } from './env.js';
import { HttpProblem } from './errors.js';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;

/**
 * Until authentication exists, writes are accepted only from loopback clients (a laptop's
 * `epoch serve` then `skopeo copy … localhost:4300/…` just works), unless `anonymousPush` opts
 * into upstream's open writes. Reads are not affected.
 */
export function loopbackWritesOnly(anonymousPush: boolean): MiddlewareHandler<Env> {
  return async (c, next) => {
    if (!anonymousPush && WRITE_METHODS.has(c.req.method)) {
      const remote = c.env?.incoming?.socket?.remoteAddress ?? '';
      if (!LOOPBACK.test(remote)) {
        throw new HttpProblem(
          403,
          'DENIED',
          'writes from other hosts need credentials, which this server does not issue yet; set EPOCH_ANONYMOUS_PUSH=true to accept anonymous writes',
        );
      }
    }
    await next();
  };
}
