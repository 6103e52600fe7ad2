import type { MiddlewareHandler } from 'hono';
import type { Env } from './env.js';
import { HttpProblem } from './errors.js';

const UPLOAD_ROUTE = /^\/v2\/.+\/blobs\/(uploads\/?[^/]*|sha[^/]+)$/;
const WRITES = new Set(['POST', 'PATCH', 'PUT']);

/**
 * Caps the upload requests one caller has in flight at once (429 `TOOMANYREQUESTS` with
 * `Retry-After` past the cap), so a single client cannot hold every socket, file descriptor
 * and disk stream of the process. A caller is its token, or its address when anonymous. The
 * count is per process; each replica enforces its own.
 */
export function limitConcurrentUploads(max: number): MiddlewareHandler<Env> {
  const inFlight = new Map<string, number>();
  return async (c, next) => {
    if (!WRITES.has(c.req.method) || !UPLOAD_ROUTE.test(c.req.path)) return next();
    const p = c.var.principal;
    const key =
      p.tokenId !== undefined
        ? `token:${p.tokenId}`
        : p.kind === 'anonymous'
          ? `addr:${c.env?.incoming?.socket?.remoteAddress ?? '?'}`
          : `${p.kind}:${p.name}`;
    const n = inFlight.get(key) ?? 0;
    if (n >= max) {
      throw new HttpProblem(
        429,
        'TOOMANYREQUESTS',
        `more than ${max} uploads in flight for this client; retry when one has finished`,
        undefined,
        { 'Retry-After': '2' },
      );
    }
    inFlight.set(key, n + 1);
    try {
      await next();
    } finally {
      const left = (inFlight.get(key) ?? 1) - 1;
      if (left <= 0) inFlight.delete(key);
      else inFlight.set(key, left);
    }
  };
}
