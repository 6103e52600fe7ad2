import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Registry } from '@epoch/registry';
import type { Store } from '@epoch/store';
import { type ServerType, serve } from '@hono/node-server';
import { createApp } from './app.js';
import { Authenticator } from './auth/authenticator.js';
import { Signer } from './auth/signer.js';
import { SsoProvider } from './auth/sso.js';
import { CatalogWriter } from './catalog.js';
import type { ServerConfig } from './config.js';
import { prepareDataDir } from './data-dir.js';
import { GarbageCollector } from './gc/service.js';
import { createLogger, type Logger } from './log.js';
import { readiness } from './ops/health.js';
import { Metrics } from './ops/metrics.js';
import { openIndex, Reconciler } from './reconcile.js';
import { logStorageCapabilities, openObjectStore } from './storage.js';
import { VERSION } from './version.js';

/** A running server. */
export interface RunningServer {
  /** The URL it listens on, e.g. `http://127.0.0.1:4300`. */
  url: string;
  port: number;
  registry: Registry;
  /** The SQL index. */
  index: Store;
  /** The Prometheus metrics this server exports at `/metrics`. */
  metrics: Metrics;
  /** The server's logger (for its embedder's own lines, e.g. which signal stopped it). */
  log: Logger;
  /** The underlying Node HTTP server, for embedding and tests. */
  httpServer: ServerType;
  /** Waits until a pending catalog.json rewrite (debounced after writes) is done. */
  flushCatalog(): Promise<void>;
  /** Stops accepting connections, lets in-flight requests finish (up to `graceMs`), then closes. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Requests Node's HTTP parser refuses (oversized headers: 431; malformed: 400) get an OCI JSON
 * error like every other client error, instead of Node's bare text.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: import('node:stream').Duplex): void {
  if (!socket.writable || ('_httpMessage' in socket && socket._httpMessage)) {
    socket.destroy();
    return;
  }
  const [status, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'SIZE_INVALID', 'request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ETIMEDOUT'
        ? [408, 'UNKNOWN', 'request timed out']
        : [400, 'UNSUPPORTED', 'malformed HTTP request'];
  const body = JSON.stringify({ errors: [{ code, message }] });
  const reason =
    status === 431
      ? 'Request Header Fields Too Large'
      : status === 408
        ? 'Request Timeout'
        : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Starts Epoch: opens storage, sweeps uploads abandoned by an earlier process, and serves HTTP.
 */
export async function startServer(
  config: ServerConfig,
  options: { env?: NodeJS.ProcessEnv; log?: Logger } = {},
): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  const metrics = new Metrics({ version: VERSION });
  await prepareDataDir(config.dataDir);
  const opened = await openObjectStore(config, options.env);
  logStorageCapabilities(opened, log);
  const store = metrics.instrument(opened);
  let index: Store;
  try {
    index = await openIndex(config, { onQuery: metrics.onQuery });
  } catch (err) {
    await store.close();
    throw err;
  }
  const registry = new Registry(store, {
    maxBlobSize: config.maxBlobBytes,
    idleTimeoutMs: config.uploadIdleTimeoutMs,
  });
  const swept = await registry.uploads.sweep();
  if (swept.removed > 0) log.info({ removed: swept.removed }, 'swept abandoned uploads');
  const sweeper = setInterval(
    () => {
      registry.uploads.sweep().catch((err: unknown) => log.warn({ err }, 'upload sweep failed'));
    },
    Math.max(60_000, config.uploadIdleTimeoutMs / 4),
  );
  sweeper.unref();

  // Every process signs with one secret: SSO_COOKIE_SECRET when SSO is on, else a random one
  // the first process stores in the index.
  const secret =
    config.sso?.cookieSecret ??
    (await index.settings.getOrCreate('auth.signing-secret', () =>
      randomBytes(32).toString('hex'),
    ));
  const auth = new Authenticator(
    index,
    {
      registryToken: config.registryToken,
      anonymousPull: config.anonymousPull,
      anonymousPush: config.anonymousPush,
      sso: config.sso,
    },
    new Signer(secret),
    log,
  );
  const catalog = new CatalogWriter(registry, index, log);
  const reconciler = new Reconciler(registry, index, log, () => catalog.schedule());
  const gc = new GarbageCollector({
    registry,
    index,
    delayMs: config.gcDelayMs,
    log,
    reconcile: () => reconciler.run(),
    onRun: (report, dryRun) => {
      metrics.gcRuns.inc({ result: report ? (dryRun ? 'dry-run' : 'ok') : 'failed' });
      if (report && !dryRun) metrics.gcReclaimedBytes.inc(report.bytesReclaimed);
    },
  });
  const app = createApp({
    registry,
    index,
    config,
    log,
    gc,
    reconcile: () => reconciler.run(),
    onWrite: () => catalog.schedule(),
    indexReady: () => reconciler.completed,
    auth,
    sso: config.sso ? new SsoProvider(config.sso) : undefined,
    metrics,
    readiness: readiness(index, store),
  });
  const server = serve({
    fetch: app.fetch,
    port: config.port,
    ...(config.host ? { hostname: config.host } : {}),
  });
  // Multi-GiB uploads take longer than Node's 5-minute request timeout; headers still must
  // arrive promptly, idle keep-alive connections are closed, and so is any connection that
  // stops moving bytes for the idle timeout (a slow-loris upload), however long it has run.
  if ('requestTimeout' in server) {
    server.requestTimeout = 0;
    server.headersTimeout = Math.min(60_000, config.idleTimeoutMs);
    server.keepAliveTimeout = 65_000;
    server.timeout = config.idleTimeoutMs;
    server.on('clientError', answerClientError);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (err) {
    // Nothing is served: release what was opened, so the caller's process can exit.
    clearInterval(sweeper);
    await index.close();
    await store.close();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '[::]' || host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`;
  log.info(
    { url, storage: store.kind, index: config.dsn ? 'mysql' : 'sqlite', dataDir: config.dataDir },
    'listening',
  );
  // After listening, so that a start-up that fails (address in use) says only why it failed.
  await warnAtStartup(log, config, store.kind, auth);

  // Start-up reconcile runs in the background, after listening: reading a large bucket takes
  // as long as the bucket is big, and serving meanwhile is safe (the reconcile never undoes a
  // push newer than its storage read; /v2/ reads go to storage). Periodic runs are opt-in.
  reconciler.runInBackground();
  const reconcileTimer =
    config.reconcileIntervalMs > 0
      ? setInterval(() => reconciler.runInBackground(), config.reconcileIntervalMs)
      : undefined;
  reconcileTimer?.unref();
  gc.schedule(config.gcIntervalMs);

  return {
    url,
    port: address.port,
    registry,
    index,
    metrics,
    httpServer: server,
    flushCatalog: () => catalog.flush(),
    log,
    async close(graceMs = 15_000) {
      clearInterval(sweeper);
      clearInterval(reconcileTimer);
      await gc.stop();
      await reconciler.stop();
      await catalog.flush();
      await closeHttp(server, graceMs);
      await index.close();
      await store.close();
      log.info('stopped');
    },
  };
}

/** The warnings a start-up may owe its operator: open writes, and Node 20 with the AWS SDK. */
async function warnAtStartup(
  log: Logger,
  config: ServerConfig,
  storage: string,
  auth: Authenticator,
): Promise<void> {
  if (storage === 's3' && Number(process.versions.node.split('.')[0]) < 22) {
    log.warn(
      { node: process.version },
      'Node 20 is supported, but AWS SDK releases after the first week of January 2027 need Node 22 or later: plan the upgrade (Node 22 and 24 are supported)',
    );
  }
  if (config.anonymousPush) {
    log.warn('EPOCH_ANONYMOUS_PUSH is on: anyone who can reach this server may push and delete');
  } else if (await auth.openWrites(true)) {
    log.warn(
      'no registry token and no API token exist yet: anonymous writes are accepted from loopback clients until one is created (epoch token create --scope admin)',
    );
  }
}

/**
 * Stops accepting connections and lets in-flight requests finish: connections are closed as they
 * go idle, and whatever still runs after `graceMs` is cut.
 */
function closeHttp(server: ServerType, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      if ('closeAllConnections' in server) server.closeAllConnections();
    }, graceMs);
    timer.unref();
    // Connections that finish their last request go idle; close them as they do.
    const reaper = setInterval(() => {
      if ('closeIdleConnections' in server) server.closeIdleConnections();
    }, 50);
    server.close(() => {
      clearTimeout(timer);
      clearInterval(reaper);
      resolve();
    });
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  });
}
