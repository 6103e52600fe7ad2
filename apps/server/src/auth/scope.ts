import { isValidRepositoryName } from '@epoch/oci';
import type { RepositoryAction } from './principal.js';

/** One requested scope of the token specification: `repository:<name>:<actions>`. */
export interface RepositoryScope {
  type: 'repository';
  name: string;
  actions: RepositoryAction[];
}

const ACTIONS: ReadonlySet<string> = new Set(['pull', 'push', 'delete']);
/** Clients ask for a handful of scopes; a request naming more is refused, not processed. */
export const MAX_SCOPES = 32;

/**
 * Parses `scope` parameters (each may hold several space-separated scopes). `*` as an action
 * means every action. Unknown resource types (`registry:catalog:*`) and unknown actions are
 * dropped: a token only ever carries what this server understands. Throws on a malformed entry.
 */
export function parseScopes(values: readonly string[]): RepositoryScope[] {
  const scopes: RepositoryScope[] = [];
  for (const value of values) {
    for (const item of value.split(' ')) {
      if (item === '') continue;
      const first = item.indexOf(':');
      const last = item.lastIndexOf(':');
      if (first < 0 || last === first) throw new Error(`malformed scope ${JSON.stringify(item)}`);
      const type = item.slice(0, first);
      const name = item.slice(first + 1, last);
      const actions = item.slice(last + 1).split(',');
      if (type !== 'repository') continue;
      if (!isValidRepositoryName(name))
        throw new Error(`invalid repository name in scope ${JSON.stringify(item)}`);
      const wanted = actions.includes('*')
        ? (['pull', 'push', 'delete'] as RepositoryAction[])
        : (actions.filter((a) => ACTIONS.has(a)) as RepositoryAction[]);
      const existing = scopes.find((s) => s.name === name);
      if (existing) {
        for (const a of wanted) if (!existing.actions.includes(a)) existing.actions.push(a);
      } else {
        scopes.push({ type: 'repository', name, actions: [...new Set(wanted)] });
      }
      if (scopes.length > MAX_SCOPES) throw new Error(`more than ${MAX_SCOPES} scopes requested`);
    }
  }
  return scopes;
}

/** The scope string of a challenge, e.g. `repository:team/app:pull,push`. */
export function formatScope(name: string, actions: readonly RepositoryAction[]): string {
  return `repository:${name}:${actions.join(',')}`;
}
