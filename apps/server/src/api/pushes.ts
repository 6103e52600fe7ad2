import { visibleRepositories } from '../auth/policy.js';
import { ApiProblem } from './errors.js';
import type { ApiHandler, ApiServices } from './handler.js';

const DAY_MS = 86_400_000;

/**
 * `GET /api/stats/pushes?days=30`: manifest pushes per UTC day for the last `days` days (1-365),
 * today included, oldest first, every day present (zero when nothing was pushed) — the
 * dashboard's chart, without paging the audit log in the browser. Counts only pushes to
 * repositories the caller may see.
 */
export function pushesPerDay({ index }: ApiServices): ApiHandler {
  return async (c) => {
    const raw = c.req.query('days') ?? '30';
    const days = /^\d{1,3}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(days >= 1 && days <= 365)) {
      throw new ApiProblem(400, 'BAD_DAYS', 'days must be a whole number from 1 to 365');
    }
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const since = new Date(today - (days - 1) * DAY_MS);
    const filter = visibleRepositories(c.var.principal);
    const counts = new Map(
      (await index.reads.pushesPerDay(since, filter)).map((d) => [d.day, d.count]),
    );
    const out = [];
    for (let t = since.getTime(); t <= today; t += DAY_MS) {
      const day = new Date(t).toISOString().slice(0, 10);
      out.push({ day, count: counts.get(day) ?? 0 });
    }
    return c.json(out);
  };
}
