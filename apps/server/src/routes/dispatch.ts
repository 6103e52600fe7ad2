import type { Context } from 'hono';
import { ApiProblem } from '../api/errors.js';
import { requireAccess } from '../auth/guard.js';
import { authorize } from '../auth/policy.js';
import type { Principal } from '../auth/principal.js';
import type { Env } from '../http/env.js';
import { HttpProblem } from '../http/errors.js';
import { type Method, matchRoute, ROUTES, type RouteSpec, type RouteTemplate } from './table.js';

/** A route's handler: the context and the route's decoded path parameters. */
export type RouteHandler = (
  c: Context<Env>,
  params: Readonly<Record<string, string>>,
) => Promise<Response>;

/** The handlers of some routes of the table, by template and method. */
export type HandlerMap = { [T in RouteTemplate]?: Partial<Record<Method, RouteHandler>> };

/**
 * Runs the request through the route table: the route its raw path matches, the handler of its
 * method (HEAD falls back to GET), every access the route needs (asked of the policy before the
 * handler runs), then the handler with its parameters percent-decoded once. A path no route
 * has goes to `fallback` (the dashboard); a method a route lacks is a 405 naming those it has.
 */
export function dispatch(
  handlers: HandlerMap,
  options: { publicUrl: string | undefined; fallback: (c: Context<Env>) => Promise<Response> },
) {
  return async (c: Context<Env>): Promise<Response> => {
    const path = new URL(c.req.url).pathname;
    const match = matchRoute(path);
    if (!match) return options.fallback(c);
    const { route } = match;
    const byMethod = handlers[route.template as RouteTemplate] ?? {};
    const requested = c.req.method as Method;
    const method = requested === 'HEAD' && !byMethod.HEAD ? 'GET' : requested;
    const handler = byMethod[method];
    if (!handler) throw methodNotAllowed(route, c.req.method);
    const params = decodeParams(route, match.rawParams);
    for (const access of route.access(method, params)) requireAccess(c, access, options);
    return handler(c, params);
  };
}

/**
 * Whether `principal` would be let through to `method` on `template` with these parameters:
 * the route's own access rule asked of the policy, as {@link dispatch} asks it, so an answer
 * that tells a client what it may do (the dashboard's controls) can never disagree with what the
 * server then allows.
 */
export function routeAllows(
  principal: Principal,
  template: RouteTemplate,
  method: Method,
  params: Readonly<Record<string, string>>,
): boolean {
  const route = ROUTES.find((r) => r.template === template) as RouteSpec | undefined;
  if (!route) return false;
  return route.access(method, params).every((access) => authorize(principal, access));
}

function methodNotAllowed(route: RouteSpec, method: string): Error {
  if (route.errors === 'api') {
    return new ApiProblem(405, 'METHOD_NOT_ALLOWED', 'method not allowed');
  }
  return new HttpProblem(405, 'UNSUPPORTED', `method ${method} not allowed here`, undefined, {
    Allow: route.methods.join(', '),
  });
}

/**
 * Path parameters, decoded once. Matching ran on the raw path, so a repository name may be sent
 * plain (`team/live`) or with its slashes encoded (`team%2Flive`), and an encoded slash stays
 * inside the parameter it belongs to.
 */
function decodeParams(route: RouteSpec, raw: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    try {
      params[key] = decodeURIComponent(value);
    } catch {
      throw route.errors === 'api'
        ? new ApiProblem(400, 'BAD_PATH', 'malformed percent-encoding in the path')
        : new HttpProblem(400, 'NAME_INVALID', 'malformed percent-encoding in the path');
    }
  }
  return params;
}
