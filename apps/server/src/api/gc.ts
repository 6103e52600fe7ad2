import type { RetentionPolicy } from '@epoch/store';
import type { Context } from 'hono';
import { parseDuration } from '../config.js';
import { GcBusyError } from '../gc/collector.js';
import type { Env } from '../http/env.js';
import { readSmallBody } from '../http/request.js';
import type { HandlerMap } from '../routes/dispatch.js';
import { ApiProblem } from './errors.js';
import { type ApiServices, type ApiHandler as Handler, untilDone } from './handler.js';

const MAX_POLICIES = 100;
const MAX_PATTERNS = 100;

/**
 * `POST /api/gc[?dryRun=true]` runs a collection and answers its report (409 `GC_RUNNING` when
 * another run holds the lock); `GET /api/gc` is the last run's record, `{"lastRun": null}`
 * before any. `GET /api/retention` lists the policies; `PUT /api/retention` with
 * `{"policies": [...]}` replaces them all.
 */
export function gcHandlers(services: ApiServices) {
  return {
    '/api/gc': { GET: lastRun(services), POST: runGc(services) },
    '/api/retention': { GET: getRetention(services), PUT: putRetention(services) },
  } satisfies HandlerMap;
}

function collector(services: ApiServices) {
  if (!services.gc) throw new ApiProblem(404, 'NOT_FOUND', 'garbage collection is not enabled');
  return services.gc;
}

function runGc(services: ApiServices): Handler {
  return async (c) => {
    untilDone(c);
    const dry = c.req.query('dryRun') ?? c.req.query('dry-run');
    try {
      const report = await collector(services).run({
        dryRun: dry === 'true' || dry === '1',
        actor: 'gc:api',
      });
      return c.json(report);
    } catch (err) {
      if (err instanceof GcBusyError) throw new ApiProblem(409, 'GC_RUNNING', err.message);
      throw err;
    }
  };
}

function lastRun(services: ApiServices): Handler {
  return async (c) => c.json({ lastRun: (await collector(services).last()) ?? null });
}

function getRetention({ index }: ApiServices): Handler {
  return async (c) => c.json({ policies: await index.retention.listPolicies() });
}

function putRetention({ index }: ApiServices): Handler {
  return async (c: Context<Env>) => {
    const bytes = await readSmallBody(c, 1 << 20, 'retention policies');
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new ApiProblem(400, 'BAD_REQUEST', 'body must be JSON: {"policies": [...]}');
    }
    const policies = parsePolicies(body);
    await index.retention.replacePolicies(policies);
    return c.json({ policies: await index.retention.listPolicies() });
  };
}

function bad(message: string): never {
  throw new ApiProblem(400, 'BAD_POLICY', message);
}

function count(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 1e9) {
    bad(`${field} must be a non-negative integer`);
  }
  return value;
}

function patterns(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (
    !Array.isArray(value) ||
    value.length > MAX_PATTERNS ||
    !value.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 255)
  ) {
    bad(`${field} must be an array of at most ${MAX_PATTERNS} non-empty glob strings`);
  }
  return value as string[];
}

/** Validates `{"policies": [...]}`; durations may be given as `untaggedExpiry: "7d"`. */
export function parsePolicies(body: unknown): RetentionPolicy[] {
  const list = (body as { policies?: unknown } | null)?.policies;
  if (!Array.isArray(list) || list.length > MAX_POLICIES) {
    bad(`body must be {"policies": [...]} with at most ${MAX_POLICIES} policies`);
  }
  return list.map((raw, i) => {
    if (typeof raw !== 'object' || raw === null) bad(`policies[${i}] must be an object`);
    const p = raw as Record<string, unknown>;
    const field = (name: string) => `policies[${i}].${name}`;
    const pattern = p.repositoryPattern;
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 255) {
      bad(`${field('repositoryPattern')} must be a non-empty glob string`);
    }
    const policy: RetentionPolicy = { repositoryPattern: pattern };
    const keepLast = count(p.keepLast, field('keepLast'));
    if (keepLast !== undefined) policy.keepLast = keepLast;
    const maxAgeDays = count(p.maxAgeDays, field('maxAgeDays'));
    if (maxAgeDays !== undefined) policy.maxAgeDays = maxAgeDays;
    const keepTags = patterns(p.keepTags, field('keepTags'));
    if (keepTags) policy.keepTags = keepTags;
    const protectedTags = patterns(p.protectedTags, field('protectedTags'));
    if (protectedTags) policy.protectedTags = protectedTags;
    let expiry = count(p.untaggedExpiryMs, field('untaggedExpiryMs'));
    if (typeof p.untaggedExpiry === 'string') {
      try {
        expiry = parseDuration(field('untaggedExpiry'), p.untaggedExpiry, 0);
      } catch (err) {
        bad((err as Error).message);
      }
    }
    if (expiry !== undefined) policy.untaggedExpiryMs = expiry;
    return policy;
  });
}
