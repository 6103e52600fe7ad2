import type { MiddlewareHandler } from 'hono';
import type { Env } from './env.js';
import { HttpProblem } from './errors.js';

const UPLOAD_ROUTE = /^\/v2\/.+\/blobs\/(uploads\/?[^/]*|sha[^/]+)$/;
const START_ROUTE = /^\/v2\/.+\/blobs\/uploads\/?$/;
const SESSION_ROUTE = /^\/v2\/.+\/blobs\/uploads\/([^/]+)$/;
const WRITES = new Set(['POST', 'PATCH', 'PUT']);

/** Limits on what one caller may hold open at once. */
export interface UploadLimits {
  /** Upload requests in flight (streaming a body, or starting a session). */
  maxInFlight: number;
  /** Upload sessions started and not yet finished, cancelled or idle past `idleMs`. */
  maxSessions: number;
  /** A session untouched this long no longer counts (the registry abandons it then). */
  idleMs: number;
}

/**
 * Caps what one caller can hold at once, answering 429 `TOOMANYREQUESTS` with `Retry-After`
 * past a cap: upload requests in flight (so a single client cannot take every socket, file
 * descriptor and disk stream of the process) and open upload sessions (each holds staged
 * storage until finished, cancelled or abandoned). A caller is its token, or its address when
 * anonymous. Counts are per process; each replica enforces its own.
 */
export function limitUploads(limits: UploadLimits): MiddlewareHandler<Env> {
  const inFlight = new Map<string, number>();
  /** Open sessions per caller: upload id → last activity (ms). */
  const sessions = new Map<string, Map<string, number>>();
  const tooMany = (what: string) =>
    new HttpProblem(
      429,
      'TOOMANYREQUESTS',
      `too many ${what} for this client; retry later`,
      undefined,
      {
        'Retry-After': '2',
      },
    );
  return async (c, next) => {
    if (!WRITES.has(c.req.method) && c.req.method !== 'DELETE') return next();
    if (!UPLOAD_ROUTE.test(c.req.path)) return next();
    const p = c.var.principal;
    const key =
      p.tokenId !== undefined
        ? `token:${p.tokenId}`
        : p.kind === 'anonymous'
          ? `addr:${c.env?.incoming?.socket?.remoteAddress ?? '?'}`
          : `${p.kind}:${p.name}`;
    const now = Date.now();
    const open = sessions.get(key) ?? new Map<string, number>();
    for (const [id, at] of open) if (now - at > limits.idleMs) open.delete(id);
    const starting = c.req.method === 'POST' && START_ROUTE.test(c.req.path);
    if (starting && open.size >= limits.maxSessions)
      throw tooMany(`open upload sessions (${limits.maxSessions})`);
    const n = inFlight.get(key) ?? 0;
    if (n >= limits.maxInFlight) throw tooMany(`uploads in flight (${limits.maxInFlight})`);
    inFlight.set(key, n + 1);
    try {
      await next();
    } finally {
      const left = (inFlight.get(key) ?? 1) - 1;
      if (left <= 0) inFlight.delete(key);
      else inFlight.set(key, left);
      const status = c.var.sentStatus ?? c.res.status;
      const session = SESSION_ROUTE.exec(c.req.path)?.[1];
      const started = starting && status === 202 ? c.res.headers.get('docker-upload-uuid') : null;
      if (started) open.set(started, Date.now());
      else if (session && open.has(session)) {
        // Finished, cancelled or unknown: no longer open. Anything else is activity.
        if (status === 201 || status === 204 || status === 404) open.delete(session);
        else open.set(session, Date.now());
      }
      if (open.size > 0) sessions.set(key, open);
      else sessions.delete(key);
    }
  };
}
