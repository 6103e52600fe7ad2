import type { Context } from 'hono';
import type { Env } from '../http/env.js';

/** A `/v2/` route handler: the Hono context and the named parts of the path. */
export type V2Handler = (c: Context<Env>, params: Record<string, string>) => Promise<Response>;
