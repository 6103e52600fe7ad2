import type { Registry } from '@epoch/registry';
import type { ReconcileReport, Store } from '@epoch/store';
import type { Context } from 'hono';
import type { GarbageCollector } from '../gc/service.js';
import type { Env } from '../http/env.js';
import { readSmallBody } from '../http/request.js';
import type { RouteHandler } from '../routes/dispatch.js';
import { ApiProblem } from './errors.js';

/** What the `/api/` handlers are built from. */
export interface ApiServices {
  registry: Registry;
  index: Store;
  reconcile: () => Promise<ReconcileReport>;
  /** Forgets this process's cached token state (after a revoke). */
  onTokensChanged: () => void;
  /** Garbage collection and retention (`/api/gc`, `/api/retention`). */
  gc?: GarbageCollector;
}

/** An `/api/` handler: the context and the route's decoded path parameters. */
export type ApiHandler = RouteHandler;

/**
 * Exempts a request that answers only when its work is done (a GC run, a reconcile of a big
 * bucket) from the connection idle timeout meant for stalled clients.
 */
export function untilDone(c: Context<Env>): void {
  c.env?.incoming?.socket?.setTimeout(0);
}

const MAX_JSON_BODY = 64 * 1024;

/** A small JSON object body; anything else is a 400 with upstream's `{error}` shape. */
export async function readJsonObject(c: Context<Env>): Promise<Record<string, unknown>> {
  const bytes = await readSmallBody(c, MAX_JSON_BODY, 'request body');
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ApiProblem(400, 'BAD_JSON', 'the body must be a JSON object');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiProblem(400, 'BAD_JSON', 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}
