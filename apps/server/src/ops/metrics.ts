import type { ObjectStore } from '@epoch/registry';
import type { Context, MiddlewareHandler } from 'hono';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Env } from '../http/env.js';
import { routeTemplate } from '../routes/table.js';

/**
 * The server's Prometheus metrics, in one registry per server (so tests and embedders can run
 * several servers in a process). Route labels are templates (`/v2/<name>/blobs/<digest>`), never
 * raw paths, so label cardinality stays fixed whatever clients send.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'epoch_http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'epoch_http_request_duration_seconds',
    help: 'HTTP request latency by method and route template',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'epoch_http_received_bytes_total',
    help: 'Bytes received on the wire (requests, headers included) by route template',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: 'epoch_http_sent_bytes_total',
    help: 'Bytes sent on the wire (responses, headers included) by route template',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly uploadsInProgress = new Gauge({
    name: 'epoch_uploads_in_progress',
    help: 'Blob upload requests (POST/PATCH/PUT of uploads and blobs) being received now',
    registers: [this.registry],
  });
  readonly storeDuration = new Histogram({
    name: 'epoch_store_operation_duration_seconds',
    help: 'Object store operation latency (time to first byte for reads) by operation',
    labelNames: ['operation'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly storeErrors = new Counter({
    name: 'epoch_store_operation_errors_total',
    help: 'Object store operations that failed, by operation',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });
  readonly indexDuration = new Histogram({
    name: 'epoch_index_query_duration_seconds',
    help: 'SQL index query latency',
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly indexErrors = new Counter({
    name: 'epoch_index_query_errors_total',
    help: 'SQL index queries that failed',
    registers: [this.registry],
  });
  readonly gcRuns = new Counter({
    name: 'epoch_gc_runs_total',
    help: 'Garbage collection runs, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly gcReclaimedBytes = new Counter({
    name: 'epoch_gc_reclaimed_bytes_total',
    help: 'Bytes of blobs deleted by garbage collection',
    registers: [this.registry],
  });

  constructor(build: { version: string }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'epoch_' });
    new Gauge({
      name: 'epoch_build_info',
      help: 'Build information; the value is always 1',
      labelNames: ['version', 'node'] as const,
      registers: [this.registry],
    }).set({ version: build.version, node: process.version }, 1);
  }

  /** The `onQuery` hook for the index. */
  readonly onQuery = (durationMs: number, failed: boolean): void => {
    this.indexDuration.observe(durationMs / 1000);
    if (failed) this.indexErrors.inc();
  };

  /** Times every request and counts its bytes, by route template. */
  middleware(): MiddlewareHandler<Env> {
    return async (c, next) => {
      const route = routeTemplate(new URL(c.req.url).pathname);
      const socket = c.env?.incoming?.socket;
      const readBefore = socket?.bytesRead ?? 0;
      const writtenBefore = socket?.bytesWritten ?? 0;
      const upload = isUpload(c, route);
      if (upload) this.uploadsInProgress.inc();
      const end = this.duration.startTimer({ method: c.req.method, route });
      const finish = () => {
        end();
        if (upload) this.uploadsInProgress.dec();
        const status = String(c.var.sentStatus ?? c.res.status);
        this.requests.inc({ method: c.req.method, route, status });
        if (socket) {
          this.bytesIn.inc({ route }, Math.max(0, socket.bytesRead - readBefore));
          this.bytesOut.inc({ route }, Math.max(0, socket.bytesWritten - writtenBefore));
        }
      };
      try {
        await next();
      } finally {
        // A blob sent straight to the socket is still streaming here: count it when it is done.
        const outgoing = c.env?.outgoing;
        if (outgoing && c.var.sentStatus !== undefined && !outgoing.writableFinished) {
          outgoing.once('close', finish);
        } else {
          finish();
        }
      }
    };
  }

  /** `store` with every operation timed and its failures counted. */
  instrument(store: ObjectStore): ObjectStore {
    const metrics = this;
    return new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function' || typeof property !== 'string') return value;
        return (...args: unknown[]) => {
          const end = metrics.storeDuration.startTimer({ operation: property });
          let result: unknown;
          try {
            result = (value as (...a: unknown[]) => unknown).apply(target, args);
          } catch (err) {
            metrics.storeErrors.inc({ operation: property });
            throw err;
          }
          if (result instanceof Promise) {
            return result.then(
              (v: unknown) => {
                end();
                return v;
              },
              (err: unknown) => {
                end();
                metrics.storeErrors.inc({ operation: property });
                throw err;
              },
            );
          }
          end();
          return result;
        };
      },
    });
  }
}

function isUpload(c: Context<Env>, route: string): boolean {
  const method = c.req.method;
  if (route === '/v2/<name>/blobs/uploads/<uuid>') return method === 'PATCH' || method === 'PUT';
  if (route === '/v2/<name>/blobs/uploads/') return method === 'POST';
  return route === '/v2/<name>/blobs/<digest>' && method === 'PUT';
}
