import type { RouteHandler } from '../routes/dispatch.js';

/** A `/v2/` route handler: the Hono context and the decoded named parts of the path. */
export type V2Handler = RouteHandler;
