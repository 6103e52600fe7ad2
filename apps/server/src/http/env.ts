import type { HttpBindings } from '@hono/node-server';
import type { Logger } from 'pino';

/** Hono environment of the Epoch app: Node's request/response and per-request variables. */
export interface Env {
  Bindings: HttpBindings;
  Variables: {
    requestId: string;
    log: Logger;
    /** Status of a response written directly to Node's `outgoing` (bypassing Hono). */
    sentStatus?: number;
  };
}
