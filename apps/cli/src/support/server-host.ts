import type { ObjectStore } from '@epoch/registry';
import type { Logger, ServerConfig } from '@epoch/server';
import type { Store } from '@epoch/store';

/** Flags of the commands that work on the server host's storage and index directly. */
export interface HostOptions {
  dataDir?: string;
  dsn?: string;
}

/** What such a command gets: the server's module, its settings, and what it opened. */
export interface HostContext<S extends boolean> {
  server: typeof import('@epoch/server');
  config: ServerConfig;
  /** Logs to stderr (warn and up unless EPOCH_LOG_LEVEL says otherwise), so stdout stays data. */
  log: Logger;
  index: Store;
  /** Opened only when asked for (`storage: true`). */
  store: S extends true ? ObjectStore : undefined;
}

/**
 * Runs `fn` against the storage and index `epoch serve` would use (same flags and env), then
 * closes them. A wrong setting is reported as `epoch <command>: …` with exit code 1. The
 * server's modules are loaded only here: client commands start faster without them.
 */
export async function onServerHost<S extends boolean>(
  command: string,
  opts: HostOptions,
  options: { storage: S },
  fn: (ctx: HostContext<S>) => Promise<void>,
): Promise<void> {
  const server = await import('@epoch/server');
  try {
    const config = server.loadConfig(process.env, {
      ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
      ...(opts.dsn !== undefined ? { dsn: opts.dsn } : {}),
    });
    const log = server.createLogger(process.env.EPOCH_LOG_LEVEL ? config.logLevel : 'warn', 2);
    const store = options.storage ? await server.openObjectStore(config) : undefined;
    try {
      const index = await server.openIndex(config);
      try {
        await fn({ server, config, log, index, store: store as HostContext<S>['store'] });
      } finally {
        await index.close();
      }
    } finally {
      await store?.close();
    }
  } catch (err) {
    // A wrong setting, found while reading it or while opening storage or the index.
    if (!(err instanceof server.ConfigError)) throw err;
    process.stderr.write(`epoch ${command}: ${err.message}\n`);
    process.exitCode = 1;
  }
}
