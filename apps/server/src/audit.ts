import type { NewAuditEvent, Store } from '@epoch/store';
import type { Context } from 'hono';
import type { Env } from './http/env.js';

/**
 * Appends an audit event for the request's principal. The action it records has already
 * happened, so a failing audit write is logged loudly rather than failing the request.
 */
export async function audit(
  c: Context<Env>,
  index: Store,
  event: Omit<NewAuditEvent, 'actor'> & { actor?: string },
): Promise<void> {
  const actor = event.actor ?? c.var.principal?.name ?? 'anonymous';
  try {
    await index.audit.append({
      ...event,
      actor,
      detail: { ...event.detail, requestId: c.var.requestId },
    });
  } catch (err) {
    c.var.log.error({ err, event: event.action }, 'audit event could not be written');
  }
}

const DENIALS_EVERY_MS = 60_000;

/**
 * Records what `/v2/` writes did (pushes, deletes, mounts) and refusals of a known token, once the
 * response is known. Denials are recorded at most once a minute per token and process, so a
 * misconfigured client retrying in a loop cannot flood the log.
 */
export function auditTrail(index: Store) {
  const lastDenial = new Map<string, number>();
  return async (c: Context<Env>, next: () => Promise<void>): Promise<void> => {
    await next();
    const status = c.var.sentStatus ?? c.res.status;
    const principal = c.var.principal;
    if (status === 401 || status === 403) {
      const token =
        c.var.auth?.refusedToken ?? (principal?.tokenId !== undefined ? principal.name : undefined);
      if (!token) return;
      const now = Date.now();
      if (now - (lastDenial.get(token) ?? 0) < DENIALS_EVERY_MS) return;
      if (lastDenial.size > 10_000) lastDenial.clear();
      lastDenial.set(token, now);
      await audit(c, index, {
        actor: token,
        action: 'token.denied',
        detail: { method: c.req.method, path: c.req.path.slice(0, 300), status },
      });
      return;
    }
    if (status >= 300 || c.req.method === 'GET' || c.req.method === 'HEAD') return;
    const event = v2WriteEvent(c.req.method, c.req.path, status, new URL(c.req.url).searchParams);
    if (event) {
      const digest = c.res.headers.get('docker-content-digest') ?? undefined;
      await audit(c, index, { ...event, ...(digest ? { digest } : {}) });
    }
  };
}

function v2WriteEvent(
  method: string,
  path: string,
  status: number,
  query: URLSearchParams,
): Omit<NewAuditEvent, 'actor'> | undefined {
  const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (manifest) {
    const [, repository = '', reference = ''] = manifest;
    if (method === 'PUT') return { action: 'push', repository, reference };
    if (method === 'DELETE') return { action: 'delete', repository, reference };
  }
  const blob = /^\/v2\/(.+)\/blobs\/(sha[^/]+)$/.exec(path);
  if (blob && method === 'DELETE') {
    return { action: 'blob.delete', repository: blob[1] ?? '', reference: blob[2] ?? '' };
  }
  const upload = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(path);
  if (upload && method === 'POST' && status === 201 && query.get('mount')) {
    return {
      action: 'mount',
      repository: upload[1] ?? '',
      reference: query.get('mount') ?? '',
      detail: { from: query.get('from') ?? '' },
    };
  }
  return undefined;
}
