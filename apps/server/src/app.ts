import { randomUUID } from 'node:crypto';
import type { Registry } from '@epoch/registry';
import type { ReconcileReport, Store } from '@epoch/store';
import { type Context, Hono } from 'hono';
import { apiHandlers } from './api/routes.js';
import { auditTrail } from './audit.js';
import type { Authenticator } from './auth/authenticator.js';
import { authenticate } from './auth/guard.js';
import { authHandlers } from './auth/routes.js';
import type { SsoProvider } from './auth/sso.js';
import { tokenEndpoint } from './auth/token-endpoint.js';
import type { ServerConfig } from './config.js';
import { downloadRoute } from './dl/download.js';
import type { GarbageCollector } from './gc/service.js';
import { rejectDotSegments } from './http/dot-segments.js';
import type { Env } from './http/env.js';
import { HttpProblem, toHttpError } from './http/errors.js';
import { limitUploads } from './http/upload-limit.js';
import type { Logger } from './log.js';
import type { Metrics } from './ops/metrics.js';
import { dispatch, type HandlerMap } from './routes/dispatch.js';
import { errorFormat, isServerPath } from './routes/table.js';
import { v2Handlers } from './v2/routes.js';
import { dashboardRoute, defaultWebDir } from './web/static.js';

/** Health, readiness and metrics scrapes: logged at debug unless they fail. */
const PROBE_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export interface AppDeps {
  registry: Registry;
  index: Store;
  /** Reconciles the index with storage (one run at a time) and reports what changed. */
  reconcile: () => Promise<ReconcileReport>;
  /** Called after every successful write request (the server then rewrites catalog.json). */
  onWrite?: () => void;
  /** Whether the index is complete enough to serve listings (see `V2Services.indexReady`). */
  indexReady: () => boolean;
  config: ServerConfig;
  log: Logger;
  /** Resolves every request's credentials. */
  auth: Authenticator;
  /** Dashboard SSO, when configured. */
  sso?: SsoProvider | undefined;
  /** Prometheus metrics, served at `/metrics`. */
  metrics: Metrics;
  /** The `/readyz` handler (index and storage checks). */
  readiness: (c: Context<Env>) => Promise<Response>;
  /** Garbage collection for `/api/gc` (absent: those routes answer 404). */
  gc?: GarbageCollector;
}

/**
 * Builds the Hono application: request ids and access logs, the `/v2/` API, health, and one error
 * handler that turns every thrown error into a JSON response.
 */
export function createApp({
  registry,
  index,
  reconcile,
  indexReady,
  onWrite,
  config,
  log,
  auth,
  sso,
  metrics,
  readiness,
  gc,
}: AppDeps): Hono<Env> {
  const onError = (err: unknown, c: Context<Env>): Response => {
    const mapped = toHttpError(err, errorFormat(c.req.path) === 'api');
    if (mapped.internal) c.var.log?.error({ err }, 'request failed');
    for (const [k, v] of Object.entries(mapped.headers ?? {})) c.header(k, v);
    return c.json(mapped.body, mapped.status as 400);
  };

  const app = new Hono<Env>();

  // Outermost, so it sees the final status of every request, errors included.
  app.use(metrics.middleware());

  app.use(async (c, next) => {
    const requestId = c.req.header('x-request-id')?.slice(0, 64) || randomUUID();
    const child = log.child({ requestId });
    c.set('requestId', requestId);
    c.set('log', child);
    c.header('X-Request-Id', requestId);
    const started = performance.now();
    try {
      rejectDotSegments(c);
      await next();
    } catch (err) {
      // Errors thrown here (before routing) still get the JSON mapping.
      c.res = onError(err, c);
    }
    const status = c.var.sentStatus ?? c.res.status;
    // Probes come every few seconds from load balancers and kubelets: at info they would drown
    // the requests people read logs for. A failing probe is still logged at info.
    const level = PROBE_PATHS.has(c.req.path) && status < 400 ? 'debug' : 'info';
    child[level](
      {
        method: c.req.method,
        path: c.req.path,
        status,
        ms: Math.round(performance.now() - started),
      },
      'request',
    );
  });

  if (onWrite) {
    app.use(async (c, next) => {
      await next();
      const status = c.var.sentStatus ?? c.res.status;
      if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && status < 300) onWrite();
    });
  }

  app.use(authenticate(auth));
  app.use(auditTrail(index));
  app.use(
    '/v2/*',
    limitUploads({
      maxInFlight: config.maxConcurrentUploads,
      maxSessions: config.maxUploadSessions,
      idleMs: config.uploadIdleTimeoutMs,
    }),
  );

  const handlers: HandlerMap = {
    '/v2/token': { GET: tokenEndpoint(auth), POST: tokenEndpoint(auth) },
    ...v2Handlers({ registry, index, indexReady, config }),
    ...apiHandlers({
      registry,
      index,
      reconcile,
      onTokensChanged: () => auth.forget(),
      ...(gc ? { gc } : {}),
    }),
    '/dl/<target>': { GET: downloadRoute(registry) },
    ...authHandlers({ auth, index, sso, publicUrl: config.publicUrl }),
    '/healthz': { GET: async (c) => c.text('ok') },
    '/readyz': { GET: readiness },
    '/metrics': {
      GET: async (c) => {
        c.header('Content-Type', metrics.registry.contentType);
        return c.body(await metrics.registry.metrics());
      },
    },
  };
  const dashboard = dashboardRoute(config.webDir ?? defaultWebDir());
  app.all(
    '*',
    dispatch(handlers, {
      publicUrl: config.publicUrl,
      fallback: async (c) => {
        if ((c.req.method === 'GET' || c.req.method === 'HEAD') && !isServerPath(c.req.path)) {
          return dashboard(c);
        }
        throw new HttpProblem(404, 'NOT_FOUND', `no such endpoint: ${c.req.method} ${c.req.path}`);
      },
    }),
  );

  app.onError(onError);

  return app;
}
