import * as retention from '../queries/retention.js';
import { toSqlTime } from '../sql-time.js';
import type { StoreAccess } from './access.js';

/** Retention policies and protected tags (`store.retention`). */
export interface StoreRetention {
  /** The retention policies, in match order. */
  listPolicies(): Promise<retention.RetentionPolicy[]>;
  /** Replaces every retention policy at once. */
  replacePolicies(policies: readonly retention.RetentionPolicy[], at?: Date): Promise<void>;
  /** The protected-tag glob `tag` matches in the repository's policy, or `undefined`. */
  protectedTagPattern(repository: string, tag: string): Promise<string | undefined>;
}

/** @internal The `store.retention` facet. */
export function storeRetention(s: StoreAccess): StoreRetention {
  return {
    listPolicies: () => retention.listPolicies(s.read),
    replacePolicies: (policies, at = new Date()) =>
      s.write((x) => retention.replacePolicies(x, policies, toSqlTime(at))),
    protectedTagPattern: (repository, tag) =>
      retention.protectedTagPattern(s.read, repository, tag),
  };
}
