import type { Executor } from '../dialect.js';
import type { SqlTime } from '../schema.js';
import { fromSqlTime } from '../sql-time.js';

/**
 * What to keep in the repositories whose name matches `repositoryPattern`. The first policy
 * (in list order) whose pattern matches a repository applies to it; a repository no policy
 * matches keeps every tag, and its untagged manifests expire after the GC grace period.
 */
export interface RetentionPolicy {
  /** Glob over repository names: `*` stays inside one `/` segment, `**` crosses them. */
  repositoryPattern: string;
  /**
   * Keep the N most recently pushed tags (older ones are deleted), and keep the repository's N
   * most recently pushed top-level manifests even when untagged: a tag's previous versions,
   * for rollback by digest. Unset: no count limit.
   */
  keepLast?: number;
  /** Delete tags pushed more than D days ago. Unset: no age limit. */
  maxAgeDays?: number;
  /** Tag globs retention never deletes (they still count toward `keepLast`). */
  keepTags?: string[];
  /** Tag globs that are immutable: a push may create them but never move or delete them. */
  protectedTags?: string[];
  /**
   * How long an untagged manifest (not a child, not a live referrer) survives; default, and
   * never less than, the GC grace period.
   */
  untaggedExpiryMs?: number;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

/** A glob as a whole-string RegExp: `**` any characters, `*` any but `/`, `?` one but `/`. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] ?? '';
    if (ch === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else out += escapeRegExp(ch);
  }
  return new RegExp(`^${out}$`);
}

/** Whether `name` matches any of the globs. */
export function matchesAny(name: string, globs: readonly string[] | undefined): boolean {
  return (globs ?? []).some((g) => globToRegExp(g).test(name));
}

/** The policy for a repository: the first whose pattern matches, or `undefined`. */
export function policyFor(
  policies: readonly RetentionPolicy[],
  repository: string,
): RetentionPolicy | undefined {
  return policies.find((p) => globToRegExp(p.repositoryPattern).test(repository));
}

/** Every retention policy, in the order they are matched. */
export async function listPolicies(x: Executor): Promise<RetentionPolicy[]> {
  const rows = await x.db
    .selectFrom('retention_policies')
    .selectAll()
    .orderBy('position')
    .orderBy('id')
    .execute();
  return rows.map((row) => {
    const policy: RetentionPolicy = { repositoryPattern: row.repository_pattern };
    if (row.keep_last !== null) policy.keepLast = Number(row.keep_last);
    if (row.max_age_days !== null) policy.maxAgeDays = Number(row.max_age_days);
    const keep = JSON.parse(row.keep_tags) as string[];
    if (keep.length > 0) policy.keepTags = keep;
    const protectedTags = JSON.parse(row.protected_tags) as string[];
    if (protectedTags.length > 0) policy.protectedTags = protectedTags;
    if (row.untagged_expiry_ms !== null) policy.untaggedExpiryMs = Number(row.untagged_expiry_ms);
    return policy;
  });
}

/** Replaces the whole list of policies (one transaction, so readers see the old or new list). */
export async function replacePolicies(
  x: Executor,
  policies: readonly RetentionPolicy[],
  at: SqlTime,
): Promise<void> {
  await x.db.deleteFrom('retention_policies').execute();
  if (policies.length === 0) return;
  await x.db
    .insertInto('retention_policies')
    .values(
      policies.map((p, position) => ({
        position,
        repository_pattern: p.repositoryPattern,
        keep_last: p.keepLast ?? null,
        max_age_days: p.maxAgeDays ?? null,
        keep_tags: JSON.stringify(p.keepTags ?? []),
        protected_tags: JSON.stringify(p.protectedTags ?? []),
        untagged_expiry_ms: p.untaggedExpiryMs ?? null,
        updated_at: at,
      })),
    )
    .execute();
}

/** The protected-tag glob of the repository's policy that `tag` matches, or `undefined`. */
export async function protectedTagPattern(
  x: Executor,
  repository: string,
  tag: string,
): Promise<string | undefined> {
  const policy = policyFor(await listPolicies(x), repository);
  return policy?.protectedTags?.find((g) => globToRegExp(g).test(tag));
}

/** A tag as retention sees it. */
export interface RetentionTag {
  name: string;
  pushedAt: SqlTime;
}

/**
 * The tags a policy deletes: ranked by push time (newest first, then by name), a tag goes when
 * its rank is `keepLast` or more, or it is older than `maxAgeDays`, unless a keep or protected
 * glob matches it.
 */
export function tagsToDelete<T extends RetentionTag>(
  policy: RetentionPolicy | undefined,
  tags: readonly T[],
  now: Date,
): T[] {
  if (!policy || (policy.keepLast === undefined && policy.maxAgeDays === undefined)) return [];
  const ranked = [...tags].sort((a, b) =>
    a.pushedAt === b.pushedAt ? (a.name < b.name ? -1 : 1) : a.pushedAt < b.pushedAt ? 1 : -1,
  );
  const oldest =
    policy.maxAgeDays === undefined ? undefined : now.getTime() - policy.maxAgeDays * 86_400_000;
  return ranked.filter((tag, rank) => {
    if (matchesAny(tag.name, policy.keepTags) || matchesAny(tag.name, policy.protectedTags)) {
      return false;
    }
    if (policy.keepLast !== undefined && rank >= policy.keepLast) return true;
    return oldest !== undefined && fromSqlTime(tag.pushedAt).getTime() < oldest;
  });
}
