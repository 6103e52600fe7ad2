import type { HttpBindings } from '@hono/node-server';
import type { Logger } from 'pino';
import type { RequestAuth } from '../auth/guard.js';
import type { Principal } from '../auth/principal.js';

/** Hono environment of the Epoch app: Node's request/response and per-request variables. */
export interface Env {
  Bindings: HttpBindings;
  Variables: {
    requestId: string;
    log: Logger;
    /** Status of a response written directly to Node's `outgoing` (bypassing Hono). */
    sentStatus?: number;
    /** Who is calling (anonymous when no credentials were sent). */
    principal: Principal;
    /** How the caller authenticated (bad credentials, session CSRF value). */
    auth: RequestAuth;
  };
}
