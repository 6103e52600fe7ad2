import { matchesPattern, type Token, type TokenScope } from '@epoch/store';

/** What a caller may do to a repository's content. */
export type RepositoryAction = 'pull' | 'push' | 'delete';

/** The rights of a caller on the repositories matching `pattern`. */
export interface Grant {
  pattern: string;
  actions: readonly RepositoryAction[];
}

/** `/api/` rights: nothing, read-only, or everything (tokens, deletes, GC). */
export type ApiLevel = 'none' | 'read' | 'admin';

/**
 * Who is calling and what they may do, resolved once per request from their credentials. The
 * policy (`authorize`) reads only this object.
 */
export interface Principal {
  /** For logs and audit events: a token's name, an e-mail, `anonymous`, `registry-token`. */
  name: string;
  kind: 'anonymous' | 'static-token' | 'token' | 'session';
  grants: readonly Grant[];
  api: ApiLevel;
  /** The database token behind this principal (directly, or through a JWT or a session). */
  tokenId?: number;
  /** SSO e-mail of a session principal. */
  email?: string;
  /**
   * True when the rights came from a short-lived registry JWT, which carries only the scopes it
   * was issued for: a client that lacks one should be sent back to the token endpoint.
   */
  scoped?: boolean;
}

const ALL_REPOSITORY_ACTIONS: readonly RepositoryAction[] = ['pull', 'push', 'delete'];

/**
 * The anonymous caller: pull everywhere when `pull`, every `/v2/` write too when `write`, and
 * `/api/` administration when `admin` (the out-of-the-box mode, for local clients only).
 */
export function anonymousPrincipal(options: {
  pull: boolean;
  write: boolean;
  admin?: boolean;
}): Principal {
  const actions: RepositoryAction[] = options.write
    ? [...ALL_REPOSITORY_ACTIONS]
    : options.pull
      ? ['pull']
      : [];
  return {
    name: 'anonymous',
    kind: 'anonymous',
    grants: actions.length > 0 ? [{ pattern: '*', actions }] : [],
    api: options.admin ? 'admin' : options.pull ? 'read' : 'none',
  };
}

/** The static `EPOCH_REGISTRY_TOKEN`: upstream's meaning, every `/v2/` right and no `/api/`. */
export function staticTokenPrincipal(): Principal {
  return {
    name: 'registry-token',
    kind: 'static-token',
    grants: [{ pattern: '*', actions: ALL_REPOSITORY_ACTIONS }],
    api: 'none',
  };
}

/**
 * A database token's rights. `push` and `delete` include `pull` (a client reads what it writes;
 * registries check existence with HEAD before a push). `admin` is every repository right on the
 * pattern, and `/api/` admin only when the pattern is `*`: a token limited to some repositories
 * must not be able to mint itself a wider one.
 */
export function tokenPrincipal(token: Token): Principal {
  const scopes = new Set<TokenScope>(token.scopes);
  const actions = new Set<RepositoryAction>();
  if (scopes.size > 0) actions.add('pull');
  if (scopes.has('push') || scopes.has('admin')) actions.add('push');
  if (scopes.has('delete') || scopes.has('admin')) actions.add('delete');
  return {
    name: token.name,
    kind: 'token',
    tokenId: token.id,
    grants: actions.size > 0 ? [{ pattern: token.repoPattern, actions: [...actions] }] : [],
    api: scopes.has('admin') && token.repoPattern === '*' ? 'admin' : 'read',
  };
}

/** An SSO user: admins get everything, everyone else reads. */
export function ssoPrincipal(email: string, admin: boolean): Principal {
  return {
    name: email,
    kind: 'session',
    email,
    grants: [{ pattern: '*', actions: admin ? ALL_REPOSITORY_ACTIONS : ['pull'] }],
    api: admin ? 'admin' : 'read',
  };
}

/** The actions of `principal` on repository `name`. */
export function allowedActions(principal: Principal, name: string): Set<RepositoryAction> {
  const allowed = new Set<RepositoryAction>();
  for (const grant of principal.grants) {
    if (matchesPattern(grant.pattern, name)) for (const a of grant.actions) allowed.add(a);
  }
  return allowed;
}
