import { type ExpressionBuilder, type ExpressionWrapper, type SqlBool, sql } from 'kysely';

/**
 * Repository patterns: what a token (and so a tenant) may see and do is the repositories its
 * pattern matches. A pattern is a glob over repository names where `*` matches any run of
 * characters, slashes included (`team-a/*` covers `team-a/x` and `team-a/x/y`), and `?` one
 * character; `*` alone covers every repository. Patterns use the repository-name alphabet only.
 *
 * This module is the one definition of that rule: the server matches names against patterns in
 * memory with {@link matchesPattern}, and the index filters listings with the same rule in SQL
 * ({@link nameMatches}), so a listing never computes a page, a count or a cursor from a name the
 * caller may not see.
 */
const PATTERN = /^[a-z0-9._\-/*?]{1,255}$/;

/** Whether `pattern` is a well-formed repository pattern. */
export function isRepositoryPattern(pattern: string): boolean {
  return PATTERN.test(pattern);
}

const compiled = new Map<string, RegExp>();

/** Whether repository `name` matches `pattern`. */
export function matchesPattern(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  let re = compiled.get(pattern);
  if (!re) {
    const source = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${source}$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(name);
}

/**
 * Which repositories a listing may show: those matching any of `patterns` (`['*']` is every
 * repository; `[]` is none). Absent means no filter at all.
 */
export interface RepositoryFilter {
  patterns: readonly string[];
}

/** `!` never occurs in a pattern or a name, so it can escape LIKE's own wildcards. */
const ESCAPE = '!';

/** The pattern as a LIKE pattern with `ESCAPE '!'`: `*` → `%`, `?` → `_`, literal `_`/`%` escaped. */
function likePattern(pattern: string): string {
  let out = '';
  for (const ch of pattern) {
    if (ch === '*') out += '%';
    else if (ch === '?') out += '_';
    else if (ch === '_' || ch === '%' || ch === ESCAPE) out += ESCAPE + ch;
    else out += ch;
  }
  return out;
}

/**
 * A SQL condition true where `column` (a repository name) matches one of the filter's
 * patterns. Both dialects compare case-sensitively here: names and patterns are lower-case
 * ASCII only, where SQLite's case-insensitive LIKE cannot differ.
 */
export function nameMatches<DB, TB extends keyof DB>(
  eb: ExpressionBuilder<DB, TB>,
  column: string,
  filter: RepositoryFilter,
): ExpressionWrapper<DB, TB, SqlBool> {
  const ref = sql.ref(column);
  if (filter.patterns.includes('*')) return eb.and([sql<SqlBool>`${ref} is not null`]);
  if (filter.patterns.length === 0) return eb.and([sql<SqlBool>`1 = 0`]);
  return eb.or(
    filter.patterns.map(
      (p) => sql<SqlBool>`${ref} like ${likePattern(p)} escape ${sql.lit(ESCAPE)}`,
    ),
  );
}
