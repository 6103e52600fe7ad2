import type { Context } from 'hono';
import type { Env } from './env.js';
import { HttpProblem } from './errors.js';

/**
 * URL parsing resolves `..` and `%2e%2e` before routing, which would quietly turn `a/../b` into
 * `b`. A path that had dot segments as sent is refused instead, so a name is exactly what the
 * client wrote.
 */
export function rejectDotSegments(c: Context<Env>): void {
  const raw = c.env?.incoming?.url ?? '';
  const path = raw.split('?')[0] ?? '';
  for (const segment of path.split('/')) {
    const lowered = segment.toLowerCase().replaceAll('%2e', '.');
    if (lowered === '.' || lowered === '..') {
      throw new HttpProblem(400, 'NAME_INVALID', 'dot segments are not allowed in paths');
    }
  }
}
