import { REPOSITORY_SETTINGS_ROUTE } from '@epoch/registry';
import type { Access } from '../auth/policy.js';
import type { RepositoryAction } from '../auth/principal.js';

/** HTTP methods a route may declare (HEAD falls back to GET where a route has no HEAD). */
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * How a route's errors are written: `oci` is the distribution spec's `{"errors": [...]}`, `api`
 * the control API's `{"error", "code"}` (upstream's shape), used by every non-`/v2/` route that
 * a person or the dashboard calls.
 */
export type ErrorFormat = 'oci' | 'api';

/** What a request must be allowed to do, from its method and decoded path parameters. */
export type AccessRule = (method: Method, params: Readonly<Record<string, string>>) => Access[];

/** One route of the server. */
export interface RouteSpec {
  /** The path with `<param>` placeholders; also the `route` label of every metric. */
  readonly template: string;
  readonly methods: readonly Method[];
  readonly errors: ErrorFormat;
  /** Every access listed must be granted before the handler runs. */
  readonly access: AccessRule;
}

const open: AccessRule = () => [{ kind: 'public' }];

/** Reads pull, writes push, deletes delete. */
function byMethod(method: Method): RepositoryAction {
  if (method === 'DELETE') return 'delete';
  return method === 'GET' || method === 'HEAD' ? 'pull' : 'push';
}

function repository(action: (method: Method) => RepositoryAction): AccessRule {
  return (method, params) => [
    { kind: 'repository', name: params.name ?? '', action: action(method) },
  ];
}

/**
 * The control API: reading needs `/api/` read rights (`admin` for the listed reads that show
 * every tenant's names and people), every write is an administrator's; a route about one
 * repository also needs pull rights on it.
 */
function api(options: { read?: 'read' | 'admin'; repository?: boolean } = {}): AccessRule {
  return (method, params) => {
    const reading = method === 'GET' || method === 'HEAD';
    const level = reading ? (options.read ?? 'read') : 'admin';
    const needs: Access[] = [{ kind: 'api', level }];
    if (options.repository && reading) {
      needs.push({ kind: 'repository', name: params.name ?? '', action: 'pull' });
    }
    return needs;
  };
}

/**
 * A repository's settings (`/api/repository-settings/<name>`): reading them needs pull rights on
 * the repository, changing them push rights, since whoever may push a repository decides how
 * its snapshots are pushed (a tenant's push token configures its own repositories, and nothing
 * outside its pattern: those are refused before the handler looks anything up, so a name that
 * exists and one that does not get the same answer). Both also need `/api/` read rights, like
 * every control API call: the static registry token (`/v2/` only) has none, and an `api` access
 * is what makes the local open mode's CSRF check apply to the change.
 */
function repositorySettings(): AccessRule {
  return (method, params) => {
    const reading = method === 'GET' || method === 'HEAD';
    return [
      { kind: 'api', level: 'read' },
      { kind: 'repository', name: params.name ?? '', action: reading ? 'pull' : 'push' },
    ];
  };
}

/** `/dl/<name>[:tag|@digest]`: pull rights on the repository before the reference. */
function download(): AccessRule {
  return (_method, params) => [
    { kind: 'repository', name: downloadTarget(params.target ?? '').name, action: 'pull' },
  ];
}

/**
 * Every route the server answers, once. Routing, the access each route needs, the format of
 * its errors and the route label of its metrics all come from here. Order matters where
 * templates overlap: the first match wins (`…/tags/<tag>` before `<name>`).
 */
export const ROUTES = [
  // The OCI Distribution API. `<name>` runs up to the route's fixed suffix.
  { template: '/v2/', methods: ['GET'], errors: 'oci', access: () => [{ kind: 'registry' }] },
  { template: '/v2/token', methods: ['GET', 'POST'], errors: 'oci', access: open },
  {
    template: '/v2/_catalog',
    methods: ['GET'],
    errors: 'oci',
    access: () => [{ kind: 'catalog' }],
  },
  {
    template: '/v2/<name>/tags/list',
    methods: ['GET'],
    errors: 'oci',
    access: repository(() => 'pull'),
  },
  {
    template: '/v2/<name>/manifests/<reference>',
    methods: ['GET', 'PUT', 'DELETE'],
    errors: 'oci',
    access: repository(byMethod),
  },
  {
    template: '/v2/<name>/blobs/uploads/',
    methods: ['POST'],
    errors: 'oci',
    access: repository(() => 'push'),
  },
  {
    template: '/v2/<name>/blobs/uploads/<uuid>',
    methods: ['GET', 'PATCH', 'PUT', 'DELETE'],
    errors: 'oci',
    // Every step of an upload, cancelling included, is part of a push.
    access: repository(() => 'push'),
  },
  {
    template: '/v2/<name>/blobs/<digest>',
    methods: ['GET', 'PUT', 'DELETE'],
    errors: 'oci',
    access: repository(byMethod),
  },
  {
    template: '/v2/<name>/referrers/<digest>',
    methods: ['GET'],
    errors: 'oci',
    access: repository(() => 'pull'),
  },

  // The control API.
  { template: '/api/stats', methods: ['GET'], errors: 'api', access: api() },
  { template: '/api/stats/pushes', methods: ['GET'], errors: 'api', access: api() },
  { template: '/api/version', methods: ['GET'], errors: 'api', access: api() },
  { template: '/api/events', methods: ['GET'], errors: 'api', access: api() },
  { template: '/api/catalog/sync', methods: ['POST'], errors: 'api', access: api() },
  {
    template: '/api/tokens',
    methods: ['GET', 'POST'],
    errors: 'api',
    access: api({ read: 'admin' }),
  },
  { template: '/api/tokens/<id>', methods: ['DELETE'], errors: 'api', access: api() },
  { template: '/api/gc', methods: ['GET', 'POST'], errors: 'api', access: api({ read: 'admin' }) },
  {
    template: '/api/retention',
    methods: ['GET', 'PUT'],
    errors: 'api',
    access: api({ read: 'admin' }),
  },
  { template: '/api/repositories', methods: ['GET'], errors: 'api', access: api() },
  {
    template: '/api/repositories/<name>/tags/<tag>',
    methods: ['GET', 'DELETE'],
    errors: 'api',
    access: api({ repository: true }),
  },
  {
    template: '/api/repositories/<name>/tags',
    methods: ['GET'],
    errors: 'api',
    access: api({ repository: true }),
  },
  {
    template: '/api/repositories/<name>',
    methods: ['GET'],
    errors: 'api',
    access: api({ repository: true }),
  },
  // `/api/repository-settings/<name>`, whose URL the registry client builds from the same
  // constant. Kept by repository name apart from `/api/repositories/<name>`: settings exist
  // before the first push and outlive the repository's contents, and a `…/<name>/settings`
  // suffix would hide a repository whose name ends in `/settings` from the dashboard's
  // plain-slash paths.
  {
    template: REPOSITORY_SETTINGS_ROUTE,
    methods: ['GET', 'PUT'],
    errors: 'api',
    access: repositorySettings(),
  },

  // Downloads as plain files or tar streams.
  { template: '/dl/<target>', methods: ['GET'], errors: 'api', access: download() },

  // Dashboard sign-in and sign-out (each checks its own credentials).
  { template: '/auth/config', methods: ['GET'], errors: 'api', access: open },
  { template: '/auth/me', methods: ['GET'], errors: 'api', access: open },
  { template: '/auth/token', methods: ['POST'], errors: 'api', access: open },
  { template: '/login', methods: ['GET'], errors: 'api', access: open },
  { template: '/login/callback', methods: ['GET'], errors: 'api', access: open },
  { template: '/logout', methods: ['GET', 'POST'], errors: 'api', access: open },

  // Operations.
  { template: '/healthz', methods: ['GET'], errors: 'oci', access: open },
  { template: '/readyz', methods: ['GET'], errors: 'oci', access: open },
  { template: '/metrics', methods: ['GET'], errors: 'oci', access: open },
] as const satisfies readonly RouteSpec[];

/** The template of one of {@link ROUTES}. */
export type RouteTemplate = (typeof ROUTES)[number]['template'];

/** A route that matched a path, with its parameters still percent-encoded. */
export interface RouteMatch {
  route: RouteSpec;
  rawParams: Record<string, string>;
}

const compiled = ROUTES.map((route) => ({
  route: route as RouteSpec,
  pattern: compile(route.template),
}));

/**
 * A template as an anchored regular expression. `<name>` (a repository name, slashes included)
 * and `<target>` take everything up to the fixed suffix after them; other parameters are one
 * path segment. A template ending in `/` matches with or without it.
 */
function compile(template: string): RegExp {
  const optionalSlash = template.endsWith('/') && template.length > 1;
  const body = optionalSlash ? template.slice(0, -1) : template;
  const source = body
    .split(/(<[a-z]+>)/)
    .map((part) => {
      const param = /^<([a-z]+)>$/.exec(part)?.[1];
      if (!param) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return param === 'name' || param === 'target' ? `(?<${param}>.+?)` : `(?<${param}>[^/]+)`;
    })
    .join('');
  return new RegExp(`^${source}${optionalSlash ? '/?' : ''}$`);
}

/** The route a raw (still percent-encoded) path belongs to, or `undefined`. */
export function matchRoute(path: string): RouteMatch | undefined {
  for (const { route, pattern } of compiled) {
    const match = pattern.exec(path);
    if (match) return { route, rawParams: { ...match.groups } };
  }
  return undefined;
}

/** The route template of a path, for metric labels; `other` for a path no route has. */
export function routeTemplate(path: string): string {
  return matchRoute(path)?.route.template ?? 'other';
}

const SERVER_PREFIXES = new Set(ROUTES.map((r) => r.template.split('/')[1]));

/** Whether a path is in the server's part of the URL space (the dashboard never answers there). */
export function isServerPath(path: string): boolean {
  return SERVER_PREFIXES.has(path.split('/')[1]);
}

/** How errors are written for a path: the route's format, or by its first segment if none. */
export function errorFormat(path: string): ErrorFormat {
  const match = matchRoute(path);
  if (match) return match.route.errors;
  const first = path.split('/')[1];
  return ROUTES.some((r) => r.errors === 'api' && r.template.split('/')[1] === first)
    ? 'api'
    : 'oci';
}

/**
 * `/dl/` targets: `name`, `name:tag` or `name@digest` (a colon after the last slash starts the
 * tag; `latest` when none is given).
 */
export function downloadTarget(target: string): { name: string; reference: string } {
  const at = target.indexOf('@');
  if (at >= 0) return { name: target.slice(0, at), reference: target.slice(at + 1) };
  const colon = target.lastIndexOf(':');
  if (colon > target.lastIndexOf('/')) {
    return { name: target.slice(0, colon), reference: target.slice(colon + 1) };
  }
  return { name: target, reference: 'latest' };
}
