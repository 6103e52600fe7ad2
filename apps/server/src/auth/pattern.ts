/**
 * Repository patterns of tokens: globs over repository names where `*` matches any run of
 * characters, slashes included (`team-a/*` covers `team-a/x` and `team-a/x/y`), and `?` one
 * character. `*` alone covers every repository. Patterns use the repository-name alphabet only.
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
