import type { Context } from 'hono';
import { requireAccess } from '../auth/guard.js';
import type { Access } from '../auth/policy.js';
import type { Env } from '../http/env.js';
import { HttpProblem } from '../http/errors.js';
import type { V2Handler } from './handler.js';

/** One entry of the `/v2/` route table. */
interface Route {
  pattern: RegExp;
  methods: Partial<Record<string, V2Handler>>;
  /** What a request needs to be allowed to do, from its method and path parameters. */
  access: (method: string, params: Record<string, string>) => Access;
}

/**
 * Matches a request against the table and runs its handler. Repository names contain slashes, so
 * routes are anchored at their fixed suffix (`/manifests/<ref>`, `/blobs/uploads/<id>`, …) and the
 * name is everything before it. A path that matches no route, or a method a route does not
 * have, gets an OCI JSON error rather than a framework page. Each route names the access it
 * needs, and the policy is asked before the handler runs.
 */
export function dispatch(routes: readonly Route[], options: { publicUrl: string | undefined }) {
  return async (c: Context<Env>): Promise<Response> => {
    const path = c.req.path;
    for (const route of routes) {
      const match = route.pattern.exec(path);
      if (!match) continue;
      const method = c.req.method === 'HEAD' && !route.methods.HEAD ? 'GET' : c.req.method;
      const handler = route.methods[method];
      if (!handler) {
        throw new HttpProblem(
          405,
          'UNSUPPORTED',
          `method ${c.req.method} not allowed here`,
          undefined,
          {
            Allow: Object.keys(route.methods).join(', '),
          },
        );
      }
      const params = decodeParams(match.groups ?? {});
      requireAccess(c, route.access(method, params), options);
      return handler(c, params);
    }
    throw new HttpProblem(404, 'NOT_FOUND', `no such endpoint: ${c.req.method} ${path}`);
  };
}

function decodeParams(groups: Record<string, string | undefined>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(groups)) {
    if (value === undefined) continue;
    try {
      params[key] = decodeURIComponent(value);
    } catch {
      throw new HttpProblem(400, 'NAME_INVALID', 'malformed percent-encoding in the path');
    }
  }
  return params;
}

export type { Route };
