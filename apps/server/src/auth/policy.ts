import type { RepositoryFilter } from '@epoch/store';
import { allowedActions, type Principal, type RepositoryAction } from './principal.js';

/** Something a request needs to be allowed to do. */
export type Access =
  /** Content of one repository under `/v2/`, `/api/` or `/dl/`. */
  | { kind: 'repository'; name: string; action: RepositoryAction }
  /** `GET /v2/`: the API version check, which clients use to learn how to authenticate. */
  | { kind: 'registry' }
  /** `GET /v2/_catalog`: the listing itself (entries are filtered to what the caller may pull). */
  | { kind: 'catalog' }
  /** The control API. */
  | { kind: 'api'; level: 'read' | 'admin' }
  /** Open to everyone (health, the token endpoint, sign-in). */
  | { kind: 'public' };

/**
 * The one authorization decision of the server. Every route declares the `Access` it needs and
 * this function alone says whether `principal` has it.
 */
export function authorize(principal: Principal, access: Access): boolean {
  switch (access.kind) {
    case 'public':
      return true;
    case 'repository':
      return allowedActions(principal, access.name).has(access.action);
    case 'registry':
      // Anonymous callers are challenged unless they may write (the out-of-the-box laptop
      // mode), so clients holding credentials learn where to log in; they then pull with an
      // anonymous or a real token.
      return (
        principal.kind !== 'anonymous' || principal.grants.some((g) => g.actions.includes('push'))
      );
    case 'catalog':
      return principal.kind !== 'anonymous' || principal.grants.length > 0;
    case 'api':
      return access.level === 'read' ? principal.api !== 'none' : principal.api === 'admin';
  }
}

/** Whether `principal` may pull `name` (filters listings). */
export function canPull(principal: Principal, name: string): boolean {
  return authorize(principal, { kind: 'repository', name, action: 'pull' });
}

/**
 * The repositories `principal` may see in listings, counts and the activity feed: those it may
 * pull. `undefined` means every repository. The index applies it before paging, so neither a
 * page nor its cursor or `Link` carries a name outside it.
 */
export function visibleRepositories(principal: Principal): RepositoryFilter | undefined {
  const patterns = principal.grants.filter((g) => g.actions.includes('pull')).map((g) => g.pattern);
  return patterns.includes('*') ? undefined : { patterns };
}

/**
 * Which audit events `principal` may read: every event for an administrator; for anyone else
 * only events about a repository it may see (never tokens, sign-ins or registry-wide GC).
 */
export function visibleEvents(principal: Principal): RepositoryFilter | undefined {
  if (principal.api === 'admin') return undefined;
  return visibleRepositories(principal) ?? { patterns: ['*'] };
}
